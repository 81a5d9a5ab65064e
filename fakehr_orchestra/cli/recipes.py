"""`fakehr-orchestra recipes ls|show|cp`: the shipped recipes, fully resolved, or copied to start your own."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import yaml

from ..script_text import script_text
from .common import fail, friendly_errors, load, recipe_arguments


def _first_comment_line(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


@click.group()
def recipes() -> None:
    """The shipped recipes (recipes/*.yaml) and profiles (recipes/profiles/*.yaml)."""


@recipes.command("ls")
def ls() -> None:
    """List shipped recipes and profiles."""
    from ..resources import profile_files, recipe_files
    for path in recipe_files():
        click.echo(f"{path.stem:<14} {path}  {_first_comment_line(path)}")
    for path in profile_files():
        click.echo(f"profile {path.stem:<6} {path}  {_first_comment_line(path)}")


@recipes.command("show")
@recipe_arguments
@click.option("--explain", is_flag=True, help="Print what each schema field means (its description) instead.")
@friendly_errors
def show(recipe: str, overrides: tuple[str, ...], profile: str | None, explain: bool) -> None:
    """Print RECIPE fully resolved (extends, profile, overrides and ${...} references applied)."""
    resolved = load(_find(recipe), overrides, profile)
    if explain:
        for line in _explain(type(resolved.model), resolved.model.model_dump(mode="json")):
            click.echo(line)
        return
    data = resolved.model.model_dump(mode="json")
    click.echo("# " + script_text(f"resolved from {resolved.path}" + (f" with profile {profile}" if profile else "")
                                  + (f" and overrides {' '.join(overrides)}" if overrides else "")))
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), nl=False)


def _explain(model: type, data: dict, prefix: str = "") -> list[str]:
    """`key = value  # description`, section by section, in schema order (a section's docstring heads it)."""
    from ..recipe.schema.base import Strict
    out: list[str] = []
    for name, field in model.model_fields.items():
        key, value = prefix + name, data.get(name)
        inner = [field.annotation, *getattr(field.annotation, "__args__", ())]
        section = next((c for c in inner if isinstance(c, type) and issubclass(c, Strict)), None)
        note = field.description or (section.__doc__ or "").strip().split("\n")[0] if section else field.description
        if section is not None and isinstance(value, dict):
            out.append(f"{key}:" + (f"  # {note}" if note else ""))
            out.extend(_explain(section, value, key + "."))
        else:
            out.append(f"{key} = {value!r}" + (f"  # {note}" if note else ""))
    return out


@recipes.command("cp")
@click.argument("name")
@click.argument("dest", type=click.Path())
def cp(name: str, dest: str) -> None:
    """Copy shipped recipe or profile NAME (e.g. fake_hr1, smoke) to DEST (a file, or a folder) to edit it.

    A recipe's relative `extends:` bases are copied beside it (`${shipped:...}` ones are found from anywhere), so the
    copy loads on its own; a profile named by
    `--profile NAME` is looked for in profiles/ beside the recipe first, then among the shipped ones."""
    from ..resources import profile_files, recipe_files
    recipes_by_name = {p.stem: p for p in recipe_files()}
    profiles_by_name = {p.stem: p for p in profile_files()}
    src = recipes_by_name.get(name) or profiles_by_name.get(name)
    if src is None:
        fail(f"error: no shipped recipe or profile '{name}' (recipes: {', '.join(recipes_by_name)}; "
             f"profiles: {', '.join(profiles_by_name)})")
    target = Path(dest)
    if target.is_dir() or dest.endswith(("/", "\\")):
        target = target / src.name
    copies = [(src, target)] + [(base, target.parent / base.relative_to(src.parent)) for base in _bases(src)]
    existing = [str(t) for _, t in copies if t.exists()]
    if existing:
        fail(f"error: {', '.join(existing)} exist{'s' if len(existing) == 1 else ''}; not overwriting")
    for s, t in copies:
        t.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, t)
        click.echo(f"copied {s} -> {t}")


def _bases(path: Path) -> list[Path]:
    """The files a shipped recipe extends (relative `extends:` paths), nearest first."""
    from ..recipe.yaml_source import read_yaml
    out: list[Path] = []
    while True:
        data, _ = read_yaml(path)
        parent = data.get("extends") if isinstance(data, dict) else None
        if not isinstance(parent, str) or Path(parent).is_absolute() or "${" in parent:  # ${shipped:...}: found anyway
            return out
        path = (path.parent / parent).resolve()
        out.append(path)


def _find(name: str) -> str:
    """A path as given, or the name of a shipped recipe."""
    from ..resources import recipe_files
    if Path(name).exists() or name.endswith((".yaml", ".yml")):
        return name
    shipped = {p.stem: p for p in recipe_files()}
    if name in shipped:
        return str(shipped[name])
    fail(f"error: no recipe '{name}' (shipped: {', '.join(shipped)})")
    return name
