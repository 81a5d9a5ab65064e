"""`fakehr-orchestra status RUN_DIR`: where a run stands. Slurm run dirs (made by `submit`) are handled here;
`slurm_status(run_dir)` is the library call other views (e.g. pipeline run dirs) reuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .common import fail


def slurm_status(run_dir: Path) -> dict[str, Any]:
    """The submission recorded in RUN_DIR/slurm.json plus the scheduler's view (squeue, scontrol or sacct)."""
    from ..launch.slurm import slurm_status as query
    return query(Path(run_dir))


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(run_dir: str, as_json: bool) -> None:
    """Show where the run in RUN_DIR stands."""
    from ..launch.slurm import JOB_FILE, SlurmError

    path = Path(run_dir)
    if not path.is_dir():
        fail(f"error: {run_dir}: no such run dir")
    if not (path / JOB_FILE).is_file():
        fail(f"error: {run_dir}: not a run dir this command knows (no {JOB_FILE}; Slurm run dirs are made by "
             "`fakehr-orchestra submit`)")
    try:
        info = slurm_status(path)
    except SlurmError as exc:
        fail(f"error: {exc}")
        return
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    click.echo(f"job {info['job_id']} ({info.get('stage')}, {info.get('nodes')} node(s)): {info['state']}"
               + (f" [{info['source']}]" if info.get("source") else ""))
    for key in ("reason", "exit_code", "restarts", "log", "script"):
        if info.get(key) not in (None, "", "None"):
            click.echo(f"  {key}: {info[key]}")
