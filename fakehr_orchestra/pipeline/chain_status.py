"""Where a submission stands: a chain of Slurm jobs (each stage's manifest record beside the Slurm state of the job
that runs it) and a sweep (each point, and the sweep's report). Reads only; `fakehr-orchestra status` prints it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .rundir import RunDir, RunDirError
from .stages import STAGES
from .status import describe
from .sweep import load


def chain_status(path: Path) -> dict[str, Any]:
    """The manifest's view of each stage beside the Slurm state of the job that runs (or ran) it."""
    from ..launch.slurm_chain import FINAL, job_states, load_record

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


def chain_text(info: dict[str, Any]) -> str:
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


def sweep_status(path: Path) -> dict[str, Any]:
    """Each point of the sweep (its chain when submitted, else its manifest) and the sweep's report."""
    from ..launch.slurm import JOB_FILE
    from ..launch.slurm_chain import job_states

    sweep = load(path) or {}
    points = []
    for point in sweep.get("points", []):
        run_dir = Path(point["run_dir"])
        entry: dict[str, Any] = {"label": point["label"], "run_dir": str(run_dir)}
        if (run_dir / JOB_FILE).is_file():
            chain = chain_status(run_dir)
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
    return {"sweep_dir": str(path), "recipe": sweep.get("recipe"), "profile": sweep.get("profile"),
           "sweep": sweep.get("sweep"), "points": points, "report": str(report_dir),
           "report_written": (report_dir / "report.md").is_file(),
           "report_job": report_jobs[-1] if report_jobs else None}


def sweep_text(out: dict[str, Any]) -> str:
    """`sweep_status` as the lines `status` prints: one per point, then the report."""
    points, report_dir = out["points"], out["report"]
    lines = [f"sweep {out['sweep_dir']}: {out['recipe']}" + (f" (profile {out['profile']})" if out["profile"] else "")
             + f", {' '.join('--sweep ' + s for s in out['sweep'] or [])}"]
    for p in points:
        stages = " ".join(f"{s}:{v['status']}" + (f"[{v['job_id']} {v['state']}]" if v.get("job_id") else "")
                          for s, v in p["stages"].items())
        lines.append(f"  {p['label']:<32} {'complete' if p['complete'] else 'incomplete':<10} {stages or '-'}")
        if p.get("error"):
            lines.append(f"    error: {p['error']}")
    job = out["report_job"]
    lines.append(f"  report: {report_dir}" + (" (written)" if out["report_written"] else " (not written yet)")
                 + (f"; job {job['job_id']} {job['state']}, log {job['log']}" if job else ""))
    return "\n".join(lines)
