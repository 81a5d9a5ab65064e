"""`fakehr-orchestra render`: print a stage's plan. Pure: reads the recipe, touches nothing else."""

from __future__ import annotations

import click

from .common import friendly_errors, load, parse_versions, recipe_arguments


@click.command()
@recipe_arguments
@click.option("--stage", "-s", type=click.Choice(["sft", "grpo", "critic"]), required=True,
              help="critic: the critic server the GRPO stage starts (critic.mode: server).")
@click.option("--format", "fmt", type=click.Choice(["shell", "json"]), default="shell", show_default=True)
@click.option("--versions", default=None, help="Render for these versions instead of the installed ones, "
              "e.g. swift=3.12,verl=0.8.")
@click.option("--no-translate", is_flag=True, help="Emit flag/key names exactly as the recipe spells them.")
@friendly_errors
def render(recipe: str, overrides: tuple[str, ...], profile: str | None, stage: str, fmt: str,
           versions: str | None, no_translate: bool) -> None:
    """Print the command RECIPE's STAGE runs. OVERRIDES are key.path=value, +key.path=value or ~key.path."""
    from ..engines import render as render_plan

    plan = render_plan(load(recipe, overrides, profile), stage, parse_versions(versions),
                       translate=not no_translate)
    if fmt == "json":
        click.echo(plan.to_json())
        return
    target = ", ".join(f"{k} {v}" for k, v in plan.versions.items())
    from ..script_text import script_text

    click.echo(f"# stage {plan.stage}, rendered for {script_text(target)}")
    for note in plan.translations:
        click.echo(f"# translated: {script_text(note)}")
    if plan.env_refs:
        click.echo(f"# from the environment at launch: {', '.join(plan.env_refs)}")
    click.echo(plan.to_shell())
