"""The `fakehr-orchestra` command. Subcommands are imported only when invoked, so `--help` stays light."""

from __future__ import annotations

import importlib
from typing import Any

import click

# verb -> "module:attribute" under fakehr_orchestra.cli; one module per verb
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("render:render", "Print the exact command (argv + env) a stage will run."),
    "validate": ("validate:validate", "Check a recipe against the installed frameworks, cluster and data."),
    "estimate": ("estimate:estimate", "Will each stage fit on the GPU, how long will it take, what to change."),
    "recipes": ("recipes:recipes", "List, show (fully resolved) or copy the shipped recipes."),
    "fixtures": ("fixtures:fixtures", "Build the tiny Qwen2.5-VL and image set used by tests and the demo."),
    "run": ("run:run", "Run stages of a recipe (the whole pipeline by default), with a run dir and resume."),
    "submit": ("submit:submit", "Render a Slurm batch script for a recipe and submit it with sbatch."),
    "status": ("status:status", "Show where a run (local or Slurm) stands."),
    "data": ("data:data", "Import, validate, split and export data sets."),
    "eval": ("evaluate:eval_group", "Batch inference, metrics and reports."),
    "reward": ("reward:reward", "Score responses with a reward plugin (reward debugging)."),
}


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        # every verb behind one error wrapper: known, user-fixable errors are a message and an exit code
        from .errors import run_guarded

        return run_guarded(super().invoke, ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"{__name__}.{module_name}"):
                return _not_built(name)
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # short help from the table: listing commands must not import them
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _not_built(name: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args: Any) -> None:
        raise click.ClickException(f"'{name}' is not available in this build")
    return missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fakehr-orchestra")
def cli() -> None:
    """Render, validate and launch Fake-HR1 / FakeVLM-R1 training recipes with ms-swift and verl."""


def main() -> None:
    cli(prog_name="fakehr-orchestra")
