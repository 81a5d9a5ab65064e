"""`fakehr-orchestra status RUN_DIR`: where a run stands: a pipeline run dir (made by `run`, a manifest.json), a
chained Slurm submission (made by `submit`: its jobs' Slurm states beside the stages' status, each job's log), a
single-stage Slurm job (`submit --stage`), or a sweep dir (each point, and the sweep's report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

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
            info = _chain(path)
            click.echo(json.dumps(info, indent=2, sort_keys=True) if as_json else _chain_text(info))
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


def _chain(path: Path) -> dict[str, Any]:
    """The manifest's view of each stage beside the Slurm state of the job that runs (or ran) it."""
    from ..launch.slurm_chain import FINAL, job_states, load_record
    from ..pipeline.rundir import RunDir
    from ..pipeline.stages import STAGES
    from ..pipeline.status import describe

    record = load_record(path) or {}
    jobs = job_states(path)
    pipeline: Optional[dict[str, Any]] = describe(path) if RunDir(path).exists() else None
    manifest_stages = (pipeline or {}).get("stages", {})
    by_stage = {stage: job for job in jobs for stage in job["stages"]}
    order = [s for s in STAGES if s in manifest_stages or s in by_stage]
    stages = []
    for stage in order:
        rec = manifest_stages.get(stage, {})
        job = by_stage.get(stage, {})
        stages.append({"stage": stage, "status": rec.get("status", "not started"), "seconds": rec.get("seconds"),
                       "error": rec.get("error"), "exit_code": rec.get("exit_code"),
                       "job_id": job.get("job_id"), "state": job.get("state"), "reason": job.get("reason"),
                       "log": job.get("log"), "stage_log": rec.get("log")})
    finished = all(s["status"] in ("done", "skipped") for s in stages) and bool(stages)
    live = [j for j in jobs if j["state"] not in FINAL]
    return {"run_dir": str(path), "recipe": record.get("recipe"), "profile": record.get("profile"),
            "overrides": record.get("overrides", []), "stages": stages, "jobs": jobs, "complete": finished,
            "live_jobs": len(live), "pipeline": pipeline}


def _chain_text(info: dict[str, Any]) -> str:
    lines = [f"run {info['run_dir']}: chained Slurm jobs of {info.get('recipe')}"
             + (f" (profile {info['profile']})" if info.get("profile") else "")
             + (f" {' '.join(info['overrides'])}" if info.get("overrides") else "")]
    lines.append(f"  {'stage':<6} {'status':<11} {'job':<8} {'slurm state':<40} log")
    for s in info["stages"]:
        state = s["state"] or "-"
        if s.get("reason") and s["reason"] not in ("None", ""):
            state += f" ({s['reason']})"
        extra = []
        if s.get("seconds") is not None:
            extra.append(f"{s['seconds']} s")
        if s.get("exit_code") not in (None, 0):
            extra.append(f"exit {s['exit_code']}, stage log {s.get('stage_log')}")
        if s.get("error"):
            extra.append(s["error"])
        lines.append(f"  {s['stage']:<6} {s['status']:<11} {s['job_id'] or '-':<8} {state:<40} {s['log'] or '-'}")
        if extra:
            lines.append(f"         {'; '.join(extra)}")
    if info["complete"]:
        lines.append("  complete" + (f"; report {info['run_dir']}/eval/report" if any(
            s["stage"] == "eval" for s in info["stages"]) else ""))
    elif info["live_jobs"]:
        lines.append(f"  {info['live_jobs']} job(s) queued or running")
    else:
        lines.append("  stopped; continue with: fakehr-orchestra submit "
                     f"{info.get('recipe')} --run-dir {info['run_dir']} --resume"
                     + (f" --profile {info['profile']}" if info.get("profile") else "")
                     + "".join(f" {o}" for o in info.get("overrides", [])))
    return "\n".join(lines)


def _sweep(path: Path, as_json: bool) -> None:
    """Each point of the sweep (its chain when submitted, else its manifest) and the sweep's report."""
    from ..launch.slurm import JOB_FILE
    from ..launch.slurm_chain import job_states
    from ..pipeline.rundir import RunDirError
    from ..pipeline.status import describe
    from ..pipeline.sweep import load

    sweep = load(path) or {}
    points = []
    for point in sweep.get("points", []):
        run_dir = Path(point["run_dir"])
        entry: dict[str, Any] = {"label": point["label"], "run_dir": str(run_dir)}
        if (run_dir / JOB_FILE).is_file():
            chain = _chain(run_dir)
            entry.update(stages={s["stage"]: {k: s[k] for k in ("status", "job_id", "state")}
                                 for s in chain["stages"]}, complete=chain["complete"])
        elif (run_dir / "manifest.json").is_file():
            try:
                info = describe(run_dir)
            except RunDirError as exc:  # one damaged point does not hide the others
                entry.update(stages={}, complete=False, error=str(exc))
            else:
                entry.update(stages={s: {"status": r.get("status")} for s, r in info["stages"].items()},
                             complete=info["complete"])
        else:
            entry.update(stages={}, complete=False)
        points.append(entry)
    report_jobs = job_states(path) if (path / JOB_FILE).is_file() else []
    report_dir = Path(sweep.get("report", path / "report"))
    out = {"sweep_dir": str(path), "recipe": sweep.get("recipe"), "profile": sweep.get("profile"),
           "sweep": sweep.get("sweep"), "points": points, "report": str(report_dir),
           "report_written": (report_dir / "report.md").is_file(),
           "report_job": report_jobs[-1] if report_jobs else None}
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    click.echo(f"sweep {path}: {out['recipe']}" + (f" (profile {out['profile']})" if out["profile"] else "")
               + f", {' '.join('--sweep ' + s for s in out['sweep'] or [])}")
    for p in points:
        stages = " ".join(f"{s}:{v['status']}" + (f"[{v['job_id']} {v['state']}]" if v.get("job_id") else "")
                          for s, v in p["stages"].items())
        click.echo(f"  {p['label']:<32} {'complete' if p['complete'] else 'incomplete':<10} {stages or '-'}")
        if p.get("error"):
            click.echo(f"    error: {p['error']}")
    job = out["report_job"]
    click.echo(f"  report: {report_dir}" + (" (written)" if out["report_written"] else " (not written yet)")
               + (f"; job {job['job_id']} {job['state']}, log {job['log']}" if job else ""))
