"""`fakehr-orchestra validate`: check a recipe against the installed ms-swift / verl, its cluster, data and reward.

Exit 0: no errors (warnings allowed); 1: errors found; 2: the recipe itself does not load.
"""

from __future__ import annotations

import click

from .common import friendly_errors, load, parse_versions, recipe_arguments


@click.command()
@recipe_arguments
@click.option("--stage", "-s", type=click.Choice(["sft", "grpo", "all"]), default="all", show_default=True,
              help="all: a pipeline run (with data sources, the training stages are checked on the data stage's "
              "exports, as `run` wires them); sft / grpo: that stage run alone, on the recipe's own files.")
@click.option("--versions", default=None, help="Render the plans for these versions (e.g. swift=3.12,verl=0.8); "
              "the checks always use the installed frameworks.")
@click.option("--no-translate", is_flag=True, help="Check the names exactly as the recipe spells them "
              "(e.g. the seed's ms-swift 3.x flags) instead of translating them for the installed versions.")
@click.option("--remote-data", is_flag=True, help="Data paths name files where the job runs (a cluster file "
              "system): a missing one is a warning, not an error. Paths holding ${env:..} refs always are.")
@click.option("--fast", is_flag=True, help="Skip running verl's own validate_config (importing verl takes "
              "seconds); the batch/parallel rules that restate it, citing verl's code, still run.")
@click.option("--rehearse", is_flag=True, help="Also run the frameworks' own start-up code on CPU (verl's datasets "
              "and reward workers, ms-swift's arguments, template and encoding, a scored batch) on a sample of the "
              "data, each step under a timeout; what is not on this machine is skipped, saying why.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (for tools and CI).")
@friendly_errors
def validate(recipe: str, overrides: tuple[str, ...], profile: str | None, stage: str, versions: str | None,
             no_translate: bool, remote_data: bool, fast: bool, rehearse: bool, as_json: bool) -> None:
    """Report every problem in RECIPE before any GPU is reserved. OVERRIDES as for render."""
    from ..preflight import STAGES
    from ..preflight import validate as run_checks

    report = run_checks(load(recipe, overrides, profile), STAGES if stage == "all" else (stage,),
                        parse_versions(versions), translate=not no_translate, remote_data=remote_data,
                        verl_own_checks=not fast, rehearse=rehearse)
    click.echo(report.to_json() if as_json else report.to_text())
    raise SystemExit(0 if report.ok else 1)
