"""The run directory: the unit of state of a pipeline run.

    RUN_DIR/manifest.json          the state (written atomically after every change)
    RUN_DIR/recipe.resolved.yaml   the recipe as resolved (extends, profile, overrides, references applied)
    RUN_DIR/plans/<stage>.json     each stage's rendered plans (argv, env, cwd)
    RUN_DIR/logs/<step>.log        each step's output, teed
    RUN_DIR/<stage>/               each stage's outputs

A stage is `done` only once its artifacts are recorded with their digests; `--resume` re-checks them.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import write_json_atomic

MANIFEST = "manifest.json"
STATUSES = ("pending", "running", "done", "failed", "skipped", "interrupted")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def git_revision(path: Path | None) -> str | None:
    """The checkout's revision (+dirty); None for an installed package (no checkout) or outside git."""
    if path is None:
        return None
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


@dataclass
class RunDir:
    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path} is not a run directory (no {MANIFEST})") from None

    def save(self, manifest: dict[str, Any]) -> None:
        manifest["updated"] = now()
        write_json_atomic(self.manifest_path, manifest)

    def log(self, step: str) -> Path:
        return self.path / "logs" / f"{step}.log"

    def stage_dir(self, stage: str) -> Path:
        return self.path / stage

    def plans_path(self, stage: str) -> Path:
        return self.path / "plans" / f"{stage}.json"


def new_manifest(recipe: Any, stages: list[str], versions: dict[str, str | None], project_root: Path | None) -> dict[str, Any]:
    return {
        "recipe": {"path": str(Path(recipe.path).resolve()), "profile": recipe.profile,
                   "overrides": list(recipe.overrides), "digest": recipe.digest(), "name": recipe.model.name,
                   "method": recipe.model.method},
        "versions": versions,
        "git": git_revision(project_root),
        "created": now(),
        "stages": {name: {"status": "pending"} for name in stages},
    }
