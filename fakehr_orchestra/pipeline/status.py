"""Where a pipeline run stands, from its manifest checked against the run dir (are the recorded outputs still
there, is a running stage's runner still alive): one line per stage, and what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .artifacts import mismatches
from .lock import alive
from .rundir import RunDir
from .stages import STAGES


def checked(record: dict[str, Any]) -> dict[str, Any]:
    """A stage's record as it stands now, not only as the manifest last said: a done stage whose outputs are gone
    or changed is `missing` / `changed` (resume reruns it), a running stage whose runner is dead is `interrupted`.
    The manifest's own word stays in `recorded_status`."""
    rec = dict(record)
    status = rec.get("status", "pending")
    if status in ("done", "skipped"):
        bad = mismatches(rec.get("artifacts", {}))
        if bad:
            rec.update(recorded_status=status, status="missing" if "missing" in bad.values() else "changed",
                       error="; ".join(f"{name} {rec['artifacts'][name]['path']} is {why} since the stage finished"
                                       for name, why in bad.items()) + " (run --resume runs the stage again)")
    elif status == "running" and isinstance(rec.get("runner"), dict):
        who = rec["runner"]
        live = alive(who)
        if live is False:
            rec.update(recorded_status=status, status="interrupted",
                       error=f"its runner (pid {who.get('pid')} on {who.get('host')}) is no longer running: it was "
                             "killed or stopped before it could record the end")
        elif live is None:
            rec["note"] = f"running on {who.get('host')} (pid {who.get('pid')}): not checkable from this host"
    return rec


def describe(run_dir: Path) -> dict[str, Any]:
    manifest = RunDir(Path(run_dir)).load()
    stages = {name: checked(rec) for name, rec in manifest.get("stages", {}).items()}
    order = [s for s in STAGES if s in stages]
    unfinished = [s for s in order if stages[s].get("status") not in ("done", "skipped")]
    return {"run_dir": str(run_dir), "recipe": manifest.get("recipe", {}), "versions": manifest.get("versions"),
            "git": manifest.get("git"), "created": manifest.get("created"), "updated": manifest.get("updated"),
            "stages": {s: stages[s] for s in order}, "complete": not unfinished,
            "next": unfinished[0] if unfinished else None}


def format_text(info: dict[str, Any]) -> str:
    recipe = info["recipe"]
    lines = [f"run {info['run_dir']}: recipe {recipe.get('name')} ({recipe.get('path')}, profile "
             f"{recipe.get('profile')}), digest {recipe.get('digest')}",
             f"  versions {info.get('versions')}, git {info.get('git')}, updated {info.get('updated')}"]
    for stage, rec in info["stages"].items():
        status = rec.get("status", "pending")
        extra = []
        if rec.get("seconds") is not None:
            extra.append(f"{rec['seconds']} s")
        if rec.get("exit_code") not in (None, 0):
            extra.append(f"exit {rec['exit_code']} in {rec.get('failed_step')}, log {rec.get('log')}")
        if rec.get("error"):
            extra.append(rec["error"])
        if rec.get("reason"):
            extra.append(rec["reason"])
        if rec.get("note"):
            extra.append(rec["note"])
        if rec.get("recorded_status"):
            extra.append(f"the manifest says {rec['recorded_status']}")
        lines.append(f"  {stage:<6} {status:<11} " + "; ".join(extra))
        for name, art in rec.get("artifacts", {}).items():
            lines.append(f"           {name}: {art.get('path')}")
        for name, svc in rec.get("services", {}).items():  # e.g. the critic server around GRPO
            lines.append(f"           service {name}: {svc.get('status')}"
                         + (f" (exit {svc['exit_code']})" if svc.get("exit_code") is not None else "")
                         + f", {svc.get('url')}, log {svc.get('log')}")
        for warning in rec.get("warnings", []):
            lines.append(f"           warning: {warning}")
    if info["complete"]:
        lines.append("  complete")
    else:
        lines.append(f"  next: {info['next']} (continue with: fakehr-orchestra run {recipe.get('path')} "
                     f"--run-dir {info['run_dir']} --resume"
                     + (f" --profile {recipe['profile']}" if recipe.get("profile") else "")
                     + "".join(f" {o}" for o in recipe.get("overrides", [])) + ")")
    return "\n".join(lines)
