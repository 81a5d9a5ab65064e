"""`fakehr-orchestra status RUN_DIR`: where a run stands: a pipeline run dir (made by `run`, a manifest.json), a
chained Slurm submission (made by `submit`: its jobs' Slurm states beside the stages' status, each job's log), a
single-stage Slurm job (`submit --stage`), or a sweep dir (each point, and the sweep's report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .common import fail, friendly_errors


def slurm_status(run_dir: Path) -> dict[str, Any]:
    """The submission recorded in RUN_DIR/slurm.json plus the scheduler's view (squeue, scontrol or sacct)."""
    from ..launch.slurm import slurm_status as query
    return query(Path(run_dir))


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@friendly_errors
def status(run_dir: str, as_json: bool) -> None:
    """Show where the run (or sweep) in RUN_DIR stands."""
    from ..launch.slurm import JOB_FILE, SlurmError
    from ..pipeline.rundir import MANIFEST
    from ..pipeline.sweep import SWEEP_FILE

    path = Path(run_dir)
    if not path.is_dir():
        fail(f"error: {run_dir}: no such run dir")
    has_pipeline, has_job = (path / MANIFEST).is_file(), (path / JOB_FILE).is_file()
    if (path / SWEEP_FILE).is_file():
        _sweep(path, as_json)
        return
    if not (has_pipeline or has_job):
        fail(f"error: {run_dir}: not a run dir (no {MANIFEST} from `fakehr-orchestra run`, no {JOB_FILE} from "
             "`fakehr-orchestra submit`)")
    try:
        chain = has_job and json.loads((path / JOB_FILE).read_text()).get("kind") == "chain"
        if chain:
            from ..pipeline.chain_status import chain_status, chain_text
            info = chain_status(path)
            click.echo(json.dumps(info, indent=2, sort_keys=True) if as_json else chain_text(info))
            return
        out: dict[str, Any] = {}
        if has_pipeline:
            from ..pipeline.status import describe
            out["pipeline"] = describe(path)
        if has_job:
            out["slurm"] = slurm_status(path)
    except SlurmError as exc:
        fail(f"error: {exc}")
        return
    if as_json:
        click.echo(json.dumps(out if has_pipeline else out["slurm"], indent=2, sort_keys=True))
        return
    if has_pipeline:
        from ..pipeline.status import format_text
        click.echo(format_text(out["pipeline"]))
    if has_job:
        _print_job(out["slurm"])


def _print_job(info: dict[str, Any]) -> None:
    click.echo(f"job {info['job_id']} ({info.get('stage')}, {info.get('nodes')} node(s)): {info['state']}"
               + (f" [{info['source']}]" if info.get("source") else ""))
    for key in ("reason", "exit_code", "restarts", "log", "script"):
        if info.get(key) not in (None, "", "None"):
            click.echo(f"  {key}: {info[key]}")


def _sweep(path: Path, as_json: bool) -> None:
    from ..pipeline.chain_status import sweep_status, sweep_text

    out = sweep_status(path)
    click.echo(json.dumps(out, indent=2, sort_keys=True) if as_json else sweep_text(out))
