"""The data stage of a recipe: import every source -> split -> validate -> export, into one folder.

Two passes over the records, whatever their number: the import writes the imported manifest and fills the record
index (index.py) as the image checks come back; splitting and duplicate/leak flags are then SQL over that index;
one final read of the imported manifest writes the final manifest, the validation report and every export.

`prepare(model, out_dir)` writes manifest.jsonl, validation.json, sft.jsonl, grpo.jsonl, grpo.parquet,
grpo_val.parquet (the test split, verl's validation set), eval.jsonl,
and last `artifacts.json` ({name: absolute path}); artifacts.json is removed first and written atomically at the
end, so its presence means the stage completed. Intermediate manifests live in a temp folder inside out_dir that
is removed whatever happens; a killed run cannot remove it (nor the `.<name>.*.tmp` files of atomic writes cut
short), so the next run does (`clean_leftovers`): a `.data-stage-*` folder records its owner's host and pid, and
is left alone while that process lives (then the temp files may be its own, and stay too).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..io import atomic_open, write_json_atomic
from ..outputs import OutputPathError, is_our_temp, owns_folder, refuse_input_as_output
from . import DataError
from .checks import Validation, summary_table
from .export import ExportSettings, settings_from_recipe
from .export.writer import FILES, Exporter, log_result
from .images import default_workers
from .importer import _abs, import_sources
from .index import RecordIndex, apply_decisions, read_decisions
from .manifest import chunked, iter_manifest, line_bytes

ARTIFACTS = "artifacts.json"
DATA_LOCK = "data.lock"  # one data stage per workdir at a time (pipeline/lock.py's flock)
STAGE_PREFIX = ".data-stage-"
OWNER = "owner"


def _owner_alive(folder: Path) -> bool:
    """Whether the process that made this temp folder may still be running (another host's: assume so)."""
    try:
        host, pid = (folder / OWNER).read_text().split()
        if host != socket.gethostname():
            return True
        os.kill(int(pid), 0)
    except PermissionError:  # someone else's live process
        return True
    except (OSError, ValueError):  # an unreadable or bad owner file, or a dead owner
        return False
    return True


OUTPUT_NAMES = ("manifest.jsonl", "validation.json", ARTIFACTS, *FILES.values())


def clean_leftovers(out: Path) -> int:
    """Remove what killed data stages left in `out`; returns how many entries were removed. Only what a data stage
    made: a `.data-stage-*` folder with its owner file, and the temp files of our own outputs' atomic writes (a
    user's `notes.tmp` or `.data-stage-x/` of their own stays)."""
    removed = 0
    live = False
    for folder in out.glob(STAGE_PREFIX + "*"):
        if not owns_folder(folder, OWNER):
            continue
        if _owner_alive(folder):
            live = True
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    if not live:  # no data stage is writing here: every atomic-write temp file is a leftover
        for tmp in out.glob(".*.tmp"):
            if is_our_temp(tmp, OUTPUT_NAMES):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


def prepare(model: Any, out_dir: str | Path, *, strict: Optional[bool] = None, workers: Optional[int] = None,
            show_progress: bool = False, log: Callable[[str], None] = lambda _: None,
            limit: Optional[int] = None) -> dict[str, str]:
    """Run the whole data stage as `model.data` says; return {name: absolute path} (also in artifacts.json).

    Raises DataError when a source is unreadable, the prompts disagree, there is nothing to train on, or (strict)
    any record is missing/corrupt/mislabelled/duplicated/leaked; the validation report is written in every case
    where validation ran, and artifacts.json never is. `limit` reads only the first records of each source (the
    rehearsal's sample of what the stage would write).
    """
    data = model.data
    if not data.sources:
        raise DataError("data.sources is empty: list at least one source (kind, path, label_convention)")
    strict = data.strict if strict is None else strict
    settings = settings_from_recipe(model)  # fail on prompt problems before any heavy work
    out = Path(out_dir).absolute()
    base = Path(model.workdir).absolute()
    try:
        refuse_input_as_output({name: out / name for name in OUTPUT_NAMES},
                               {f"data.sources[{i}] ({src.name})": _abs(src.path, base)
                                for i, src in enumerate(data.sources)})
    except OutputPathError as exc:
        raise DataError(f"{exc} (the data stage writes {', '.join(OUTPUT_NAMES)} into {out})") from None
    from ..pipeline.lock import locked
    from ..pipeline.rundir import RunDirError

    try:
        with locked(out, DATA_LOCK):
            return _prepare_locked(model, data, strict, settings, out, base, workers, show_progress, log, limit)
    except RunDirError as exc:  # another data stage writes this folder (or it cannot be written at all)
        raise DataError(str(exc).replace("run dir", "data workdir")) from None


def _prepare_locked(model: Any, data: Any, strict: bool, settings: ExportSettings, out: Path, base: Path,
                    workers: Optional[int], show_progress: bool, log: Callable[[str], None],
                    limit: Optional[int]) -> dict[str, str]:
    (out / ARTIFACTS).unlink(missing_ok=True)
    removed = clean_leftovers(out)
    if removed:
        log(f"removed {removed} leftover temp file(s)/folder(s) of an interrupted data stage in {out}")
    work = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=out))
    (work / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    paths = {"manifest": str(out / "manifest.jsonl"), "validation": str(out / "validation.json")}
    n_workers = workers or data.workers or default_workers()
    try:
        imported = work / "imported.jsonl"
        with RecordIndex(work, data.split.seed) as index, _export_process(n_workers) as child:
            counts = import_sources(data.sources, imported, base=base, workers=n_workers,
                                    check=data.check, chunk_size=data.chunk_size, show_progress=show_progress,
                                    limit=limit, max_loss=data.max_loss,
                                    max_image_bytes=int(data.max_image_mb * 2**20), index=index)
            log("import: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            splits = index.assign_splits(data.split.test_fraction)
            log("split: " + ", ".join(f"{k}={v}" for k, v in sorted(splits.items())))
            copies = index.flag_copies()
            problems = sum(n for status, n in counts.items() if status != "ok") + sum(copies.values())
            # strict with problems: the manifest and report are written (to say what is wrong), no export is
            report, exported = _final_pass(imported, index, paths, None if strict and problems else settings, out,
                                           child)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(summary_table(report))
    if exported is None:
        raise DataError(f"strict: {report['problems']} of {report['total']} records have problems "
                        f"(see {paths['validation']}); fix them or set data.strict=false to skip them")
    log_result(exported, log)
    if not exported["counts"].get("sft") or not exported["counts"].get("grpo"):
        for path in exported["paths"].values():
            Path(path).unlink(missing_ok=True)
        raise DataError(f"no usable training records (sft rows: {exported['counts'].get('sft', 0)}, grpo rows: "
                        f"{exported['counts'].get('grpo', 0)}); see {paths['validation']}")
    if not exported["counts"].get("eval"):
        log("warning: the test split is empty (eval.jsonl has no rows): set data.split.test_fraction or a "
            "test source")
    paths.update(exported["paths"])
    write_json_atomic(out / ARTIFACTS, paths)
    return paths


@contextlib.contextmanager
def _export_process(workers: int) -> Iterator[Optional[Any]]:
    """With more than one worker, a child process that writes the exports while this one writes the manifest and
    report: the final pass is the stage's one serial part. It starts (spawn, pyarrow imported) during the import,
    so its start-up is hidden there."""
    if workers <= 1:
        yield None
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        pool.submit(_warm_up)
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class _NoPandas:
    """A meta-path finder that refuses pandas. pyarrow imports pandas the first time it converts Python objects,
    only to ask whether they are pandas objects; the export child never hands it any, and the import costs
    ~0.35 s of CPU that the image workers need (the stage is CPU-bound on every core). pyarrow treats the
    ImportError as "pandas not installed" (its pandas shim catches it)."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("the data stage's export process does not use pandas")
        return None


def _warm_up() -> None:
    """In the export child (its own process, nothing else runs there): refuse pandas, then import what the exports
    need (pyarrow) while the import runs, so the final pass does not wait for it."""
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())  # type: ignore[arg-type]
    import pyarrow as pa
    import pyarrow.parquet  # noqa: F401
    pa.array([0])


def _export_side(imported: str, index_path: str, out: str, settings: ExportSettings) -> dict[str, Any]:
    with Exporter(out, settings) as exporter:
        for records in chunked(apply_decisions(iter_manifest(imported), read_decisions(index_path)),
                               settings.chunk_size):
            exporter.add(records)
    return exporter.result()


def _final_pass(imported: Path, index: RecordIndex, paths: dict[str, str], settings: Optional[ExportSettings],
                out: Path, child: Optional[Any]) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
    """The one read of the imported manifest: each record gets its split and duplicate/leaked status from the
    index, then goes to the final manifest, the validation report and (with `settings`) every export. With a
    `child` (an executor) the exports are written there, from the same manifest and index, at the same time."""
    validation = Validation()
    chunk_size = settings.chunk_size if settings is not None else 1024
    future = None
    if child is not None and settings is not None:
        future = child.submit(_export_side, str(imported), index.path, str(out), settings)
    try:
        with contextlib.ExitStack() as stack:
            handle = stack.enter_context(atomic_open(paths["manifest"], "wb"))
            exporter = stack.enter_context(Exporter(out, settings)) if settings is not None and future is None \
                else None
            for records in chunked(apply_decisions(iter_manifest(imported), index.decisions()), chunk_size):
                for rec in records:
                    validation.add(rec)
                handle.write(b"".join([line_bytes(rec.__dict__) for rec in records]))
                if exporter is not None:
                    exporter.add(records)
    except BaseException:
        if future is not None:  # the stage failed: the exports written beside it go too (no artifacts.json)
            with contextlib.suppress(BaseException):
                for path in future.result()["paths"].values():
                    Path(path).unlink(missing_ok=True)
        raise
    report = validation.report()
    write_json_atomic(paths["validation"], report)
    if future is not None:
        return report, future.result()
    return report, exporter.result() if exporter is not None else None


def load_artifacts(out_dir: str | Path) -> dict[str, str] | None:
    """The stage's outputs if it completed in out_dir, else None."""
    import json

    path = Path(out_dir) / ARTIFACTS
    return json.loads(path.read_text()) if path.exists() else None
