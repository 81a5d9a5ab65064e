"""Where a pipeline run stands, from its manifest: one line per stage, and what to do next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .rundir import RunDir
from .stages import STAGES


def describe(run_dir: Path) -> dict[str, Any]:
    manifest = RunDir(Path(run_dir)).load()
    stages = manifest.get("stages", {})
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
