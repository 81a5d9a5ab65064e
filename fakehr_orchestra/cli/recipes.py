"""`fakehr-orchestra recipes ls|show|cp`: the shipped recipes, fully resolved, or copied to start your own."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import yaml

from .common import fail, friendly_errors, load, recipe_arguments

SHIPPED = Path(__file__).resolve().parents[2] / "recipes"


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
    for path in sorted(SHIPPED.glob("*.yaml")):
        click.echo(f"{path.stem:<14} {path}  {_first_comment_line(path)}")
    for path in sorted((SHIPPED / "profiles").glob("*.yaml")):
        click.echo(f"profile {path.stem:<6} {path}  {_first_comment_line(path)}")


@recipes.command("show")
@recipe_arguments
@friendly_errors
def show(recipe: str, overrides: tuple[str, ...], profile: str | None) -> None:
    """Print RECIPE fully resolved (extends, profile, overrides and ${...} references applied)."""
    resolved = load(_find(recipe), overrides, profile)
    data = resolved.model.model_dump(mode="json")
    click.echo(f"# resolved from {resolved.path}" + (f" with profile {profile}" if profile else "")
               + (f" and overrides {' '.join(overrides)}" if overrides else ""))
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), nl=False)


@recipes.command("cp")
@click.argument("name")
@click.argument("dest", type=click.Path(dir_okay=False))
def cp(name: str, dest: str) -> None:
    """Copy shipped recipe NAME (e.g. fake_hr1) to DEST to edit it."""
    src = _find(name)
    target = Path(dest)
    if target.exists():
        fail(f"error: {target} exists; not overwriting it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    click.echo(f"copied {src} -> {target}")


def _find(name: str) -> str:
    """A path as given, or the name of a shipped recipe."""
    if Path(name).exists() or name.endswith((".yaml", ".yml")):
        return name
    candidate = SHIPPED / f"{name}.yaml"
    if candidate.exists():
        return str(candidate)
    known = ", ".join(p.stem for p in sorted(SHIPPED.glob("*.yaml")))
    fail(f"error: no recipe '{name}' (shipped: {known})")
    return name
