"""Options and error handling shared by the verbs: a recipe problem is one clear message and exit code 2."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

EXIT_USAGE = 2


def recipe_arguments(func: Callable[..., Any]) -> Callable[..., Any]:
    """RECIPE [OVERRIDES...] --profile P: how every verb that reads a recipe takes it."""
    func = click.option("--profile", "-p", default=None,
                        help="Overlay recipes/profiles/NAME.yaml (e.g. smoke) or a YAML file.")(func)
    func = click.argument("overrides", nargs=-1)(func)
    func = click.argument("recipe", type=click.Path(dir_okay=False))(func)
    return func


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can fix into a message and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..engines import RenderError
        from ..engines.plan import MissingEnvError
        from ..outputs import OutputPathError
        from ..pipeline.rundir import RunDirError
        from ..recipe import RecipeError
        try:
            return func(*args, **kwargs)
        except RecipeError as exc:
            fail(f"error: {exc}")
        except (RenderError, MissingEnvError, OutputPathError) as exc:
            fail(f"error: {exc}")
        except RunDirError as exc:  # a damaged manifest (2), a run dir another run holds (2), a full disk (1)
            fail(f"error: {exc}", code=exc.code)
    return wrapper


def recipe_file(recipe: str) -> str:
    """A recipe path as given, or the name of a shipped recipe (`fake_hr1`) when no such file exists."""
    from pathlib import Path
    if Path(recipe).exists() or Path(recipe).suffix in (".yaml", ".yml") or "/" in recipe:
        return recipe
    from ..resources import recipe_files
    shipped = {f.stem: f for f in recipe_files()}
    return str(shipped[recipe]) if recipe in shipped else recipe


def load(recipe: str, overrides: tuple[str, ...], profile: str | None) -> Any:
    from ..recipe import load_recipe
    return load_recipe(recipe_file(recipe), overrides, profile)


def parse_versions(text: str | None) -> dict[str, str]:
    from ..engines.versions import parse_versions_option
    try:
        return parse_versions_option(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--versions") from None


def preflight(recipe: Any, stages: tuple[str, ...], versions: dict[str, str] | None = None, *,
              environ: Any = None, remote_data: bool = False, log_dir: Any = None) -> None:
    """Validate and rehearse before launching anything: errors stop here (exit 2), warnings are printed and the
    launch goes on."""
    training = tuple(s for s in ("sft", "grpo") if s in stages and getattr(recipe.model, s) is not None)
    if not training:
        return
    stages = (("data",) if "data" in stages else ()) + training
    from ..preflight import validate

    click.echo(f"fakehr-orchestra: validating and rehearsing {', '.join(training)} before launching "
               "(--skip-validate skips it)", err=True)
    report = validate(recipe, stages=stages, versions=versions or None, environ=environ, remote_data=remote_data,
                      rehearse=True, log_dir=log_dir)
    if report.errors:
        fail(f"{report.to_text()}\nerror: the recipe does not pass validation (nothing was launched); fix it, "
             "or pass --skip-validate")
    click.echo(report.to_text(), err=True)
