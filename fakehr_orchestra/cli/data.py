"""`fakehr-orchestra data`: import / split / validate / export / prepare (all of them, as a recipe says).

Heavy imports (PIL, pyarrow, tqdm) happen inside the commands so `--help` stays light.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click

from ..numbers import FRACTION, Rule, click_number
from .common import fail, friendly_errors, load, recipe_arguments


def _data_errors(func: Any) -> Any:
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..data import DataError
        try:
            return func(*args, **kwargs)
        except DataError as exc:  # the data, not the command line, is wrong: exit 1 like a failed validation
            fail(f"error: {exc}", code=1)
    return wrapper


def _echo(text: str) -> None:
    click.echo(text, err=True)


@click.group("data")
def data() -> None:
    """Import, validate, split and export data sets (FakeClue, GenImage, jsonl) for ms-swift and verl."""


def _outputs_apart(outputs: dict[str, Any], inputs: dict[str, Any]) -> None:
    """Exit 2 when an output path is an input (it would be replaced while, or before, it is read)."""
    from ..outputs import OutputPathError, refuse_input_as_output
    try:
        refuse_input_as_output(outputs, inputs)
        if len({str(v) for v in outputs.values()}) < len(outputs):
            raise OutputPathError(f"two outputs are the same file: {', '.join(map(str, outputs.values()))}")
    except OutputPathError as exc:
        fail(f"error: {exc}")


@data.command("import")
@click.option("--kind", type=click.Choice(["fakeclue", "genimage", "jsonl", "folders"]), required=True)
@click.option("--path", "path", required=True, help="FakeClue json / GenImage root / jsonl file / label-named set "
              "folder (<set>/<generator>/<label folder>/*).")
@click.option("--label-convention", required=True,
              type=click.Choice(["fakeclue", "genimage", "text", "one_is_fake", "one_is_real", "bool_is_fake",
                                 "folders"]),
              help="How the source writes labels (never guessed): fakeclue 0=fake, genimage ai/nature, folders: "
              "the --label-folder map, ...")
@click.option("--label-folder", "label_folders", multiple=True, metavar="NAME=real|fake",
              help="kind folders: which folder name means which label (repeat: --label-folder 0_real=real "
              "--label-folder 1_fake=fake).")
@click.option("--generator", "generators", multiple=True, help="genimage / folders: read only this generator "
              "(repeat for several).")
@click.option("--exclude-generator", "exclude_generators", multiple=True,
              help="genimage / folders: leave this generator out (repeat for several).")
@click.option("--name", default=None, help="Source name recorded in the manifest (default: the kind).")
@click.option("--image-root", default=None, help="Where relative image paths resolve (default: as released: "
              "FakeClue data_json/<split>.json -> FakeClue/<split>/; otherwise the file's folder).")
@click.option("--max-loss", type=click_number(FRACTION), default=0.01, show_default=True,
              help="Fail when more than this share of the records has a missing or corrupt image.")
@click.option("--split", type=click.Choice(["train", "test", "val"]), default=None, help="Force a split.")
@click.option("--check", type=click.Choice(["header", "full"]), default="header", show_default=True)
@click.option("--workers", type=int, default=None, help="Image-check processes (default: every core).")
@click.option("--chunk-size", type=int, default=1024, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Manifest (jsonl) to write.")
@_data_errors
def import_cmd(kind: str, path: str, label_convention: str, label_folders: tuple[str, ...],
               generators: tuple[str, ...], exclude_generators: tuple[str, ...], name: Optional[str],
               image_root: Optional[str], max_loss: float, split: Optional[str], check: str, workers: Optional[int],
               chunk_size: int, out: str) -> None:
    """Import one source into a canonical manifest, checking every image."""
    from pydantic import ValidationError

    from ..data.importer import import_sources
    from ..recipe.schema.data import SourceSection
    _outputs_apart({"--out": out}, {"--path": path})

    folders = {}
    for spec in label_folders:
        folder, sep, label = spec.rpartition("=")
        if not sep or not folder or label not in ("real", "fake"):
            raise click.BadParameter(f"{spec!r}: write NAME=real or NAME=fake", param_hint="--label-folder")
        folders[folder] = label
    try:
        src = SourceSection(name=name or kind, kind=kind, path=path, image_root=image_root,  # type: ignore[arg-type]
                            label_convention=label_convention, split=split,  # type: ignore[arg-type]
                            label_folders=folders or None, generators=list(generators) or None,
                            exclude_generators=list(exclude_generators) or None)
    except ValidationError as exc:
        raise click.UsageError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()))
    counts = import_sources([src], out, workers=workers, check=check, chunk_size=chunk_size,
                            show_progress=sys.stderr.isatty(), max_loss=max_loss)
    _echo(f"{out}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


@data.command("split")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--test-fraction", type=click_number(Rule(low=0, high=1, high_open=True)), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def split_cmd(manifest: str, test_fraction: float, seed: int, out: str) -> None:
    """Assign train/test to records without a split, stratified by (source, label), deterministic."""
    from ..data.split import split_manifest
    _outputs_apart({"--out": out}, {"MANIFEST": manifest})
    counts = split_manifest(manifest, out, test_fraction, seed)
    _echo(f"{out}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


@data.command("validate")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Manifest with final statuses.")
@click.option("--report", required=True, type=click.Path(dir_okay=False), help="Machine-readable report (json).")
@click.option("--strict", is_flag=True, help="Exit 1 when any record has a problem.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as json instead of the table.")
def validate_cmd(manifest: str, out: str, report: str, strict: bool, as_json: bool) -> None:
    """Duplicates, train/test leakage, label balance, plus the missing/corrupt images import found."""
    from ..data.checks import summary_table, validate_manifest
    _outputs_apart({"--out": out, "--report": report}, {"MANIFEST": manifest})
    result = validate_manifest(manifest, out, report)
    click.echo(json.dumps(result, indent=2) if as_json else summary_table(result))
    if strict and result["problems"]:
        fail(f"strict: {result['problems']} records have problems (see {report})", code=1)


@data.command("export")
@recipe_arguments
@click.option("--manifest", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the exports.")
@click.option("--only", default=None, help="Comma-separated subset of sft,grpo,parquet,val_parquet,eval.")
@friendly_errors
@_data_errors
def export_cmd(recipe: str, overrides: tuple[str, ...], profile: Optional[str], manifest: str, out: str,
               only: Optional[str]) -> None:
    """Write the ms-swift / verl / eval files of a validated manifest with the recipe's prompts and method."""
    from ..data.export import export_manifest, settings_from_recipe
    from ..data.export.writer import FILES
    _outputs_apart({f"--out/{name}": f"{out}/{name}" for name in FILES.values()}, {"--manifest": manifest})
    settings = settings_from_recipe(load(recipe, overrides, profile).model)
    names = [n.strip() for n in only.split(",")] if only else None
    try:
        result = export_manifest(manifest, out, settings, only=names, log=_echo)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--only") from None
    click.echo(json.dumps(result["paths"], indent=2))


@data.command("prepare")
@recipe_arguments
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output folder (default: the recipe's data.workdir).")
@click.option("--strict", is_flag=True, default=None, help="Fail on any problem record (default: data.strict).")
@click.option("--workers", type=int, default=None, help="Image-check processes (default: data.workers / all cores).")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal).")
@friendly_errors
@_data_errors
def prepare_cmd(recipe: str, overrides: tuple[str, ...], profile: Optional[str], out: Optional[str],
                strict: Optional[bool], workers: Optional[int], progress: Optional[bool]) -> None:
    """Import, split, validate and export as the recipe's `data:` says; prints artifacts.json's content."""
    from ..data.stage import prepare
    model = load(recipe, overrides, profile).model
    paths = prepare(model, out or model.data.workdir, strict=strict, workers=workers,
                    show_progress=sys.stderr.isatty() if progress is None else progress, log=_echo)
    click.echo(json.dumps(paths, indent=2))
