"""The run directory: the unit of state of a pipeline run.

    RUN_DIR/manifest.json          the state (written atomically after every change)
    RUN_DIR/manifest.json.bak      the same state, written after it (what to restore a damaged manifest from)
    RUN_DIR/recipe.resolved.yaml   the recipe as resolved (extends, profile, overrides, references applied)
    RUN_DIR/plans/<stage>.json     each stage's rendered plans (argv, env, cwd)
    RUN_DIR/logs/<step>.log        each step's output, teed
    RUN_DIR/<stage>/               each stage's outputs

A stage is `done` only once its artifacts are recorded with their digests; `--resume` re-checks them.
The manifest is read in one place, `RunDir.load()`, which checks its shape and says what is wrong and how to recover
(a truncated or overwritten file is a message, never a traceback); a write that fails (a full disk) leaves the last
good manifest in place and says so.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from ..recipe.load import Recipe

MANIFEST = "manifest.json"
BACKUP = MANIFEST + ".bak"
STATUSES = ("pending", "running", "done", "failed", "skipped", "interrupted")


class RunDirError(RuntimeError):
    """A run dir cannot be used as asked: a message for the user; `code` is the exit status (2: fix the input)."""

    code = 2


class ManifestError(RunDirError):
    """manifest.json is unreadable or not a run's state (truncated, overwritten, edited by hand)."""


class ManifestWriteError(RunDirError):
    """manifest.json (or another file of the run: a plan, a step's log) could not be written (full disk, quota,
    read-only file system): exit 1, the environment failed, not the input."""

    code = 1


def manifest_problems(data: Any) -> list[str]:
    """What keeps `data` from being a run's state, every problem at once (empty: it is one)."""
    if not isinstance(data, dict):
        return [f"it holds a JSON {type(data).__name__}, not an object with 'recipe' and 'stages'"]
    problems = []
    recipe = data.get("recipe")
    if not isinstance(recipe, dict):
        problems.append("'recipe' is missing or not an object")
    elif not isinstance(recipe.get("digest"), str):
        problems.append("'recipe.digest' is missing or not a string")
    stages = data.get("stages")
    if not isinstance(stages, dict):
        problems.append("'stages' is missing or not an object")
        return problems
    for name, record in stages.items():
        if not isinstance(record, dict):
            problems.append(f"'stages.{name}' is not an object")
            continue
        if record.get("status") not in STATUSES:
            problems.append(f"'stages.{name}.status' is {record.get('status')!r}, not one of {', '.join(STATUSES)}")
        found = record.get("artifacts", {})
        if not isinstance(found, dict) or not all(
                isinstance(a, dict) and isinstance(a.get("path"), str) and isinstance(a.get("sha256"), str)
                for a in found.values()):
            problems.append(f"'stages.{name}.artifacts' is not a map of {{path, sha256}}")
    return problems


MAX_MANIFEST_BYTES = 256 * 2**20  # a run's manifest is kilobytes; the bounded reader refuses a FIFO or a device


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at `path`, validated; ManifestError (with what is wrong) otherwise."""
    from ..bounded import read_file

    try:
        raw = read_file(str(path), MAX_MANIFEST_BYTES)
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ManifestError(f"{path} is empty (a truncated write or a full disk)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is not text (byte {exc.start} is not UTF-8): overwritten or damaged") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
                            "truncated or damaged") from None
    problems = manifest_problems(data)
    if problems:
        raise ManifestError(f"{path} is not a run's state: {'; '.join(problems)}")
    return data


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
        """The manifest, validated; ManifestError says what is wrong and how to recover."""
        if not self.manifest_path.exists():
            raise FileNotFoundError(f"{self.path} is not a run directory (no {MANIFEST})")
        try:
            return read_manifest(self.manifest_path)
        except ManifestError as exc:
            raise ManifestError(f"{exc}. {self._recovery()}") from None

    def _recovery(self) -> str:
        backup = self.path / BACKUP
        try:
            good = read_manifest(backup)
        except ManifestError:
            good = None
        if good is not None:
            return (f"{backup} holds the state as last written (updated {good.get('updated')}): restore it with "
                    f"`cp {backup} {self.manifest_path}`, then check with `fakehr-orchestra status {self.path}`")
        return (f"No intact copy ({backup}) to restore from: move {self.manifest_path} aside and start the run again "
                f"in a new --run-dir (this one's stage outputs stay where they are)")

    def save(self, manifest: dict[str, Any]) -> None:
        """Write the manifest, then its backup copy; a failed write leaves the previous (intact) file."""
        manifest["updated"] = now()
        self.write(self.manifest_path, manifest)
        self.write(self.path / BACKUP, manifest)

    def write(self, target: Path, content: Any) -> None:
        """Write a file of the run's state atomically (text as is, anything else as JSON); a failure (a full disk)
        is a ManifestWriteError that says what is still intact and how to continue."""
        try:
            if isinstance(content, str):
                write_text_atomic(target, content)
            else:
                write_json_atomic(target, content)
        except OSError as exc:
            raise self.write_failed(target, exc) from None

    def write_failed(self, target: Path, exc: OSError) -> ManifestWriteError:
        """The error for a file of the run that could not be written (the manifest, a plan, a step's log)."""
        why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only"}.get(exc.errno or 0, "")
        return ManifestWriteError(
            f"cannot write {target}: {exc.strerror or exc}{f' ({why})' if why else ''}; "
            f"{self.manifest_path} still holds the state of its last successful write. Free space (or fix the "
            f"file system), then continue with `fakehr-orchestra run RECIPE --run-dir {self.path} --resume`")

    def log(self, step: str) -> Path:
        return self.path / "logs" / f"{step}.log"

    def stage_dir(self, stage: str) -> Path:
        return self.path / stage

    def plans_path(self, stage: str) -> Path:
        return self.path / "plans" / f"{stage}.json"


def new_manifest(recipe: Recipe, stages: list[str], versions: dict[str, str | None], project_root: Path | None) -> dict[str, Any]:
    return {
        "recipe": {"path": str(Path(recipe.path).resolve()), "profile": recipe.profile,
                   "overrides": list(recipe.overrides), "digest": recipe.digest(), "name": recipe.model.name,
                   "method": recipe.model.method},
        "versions": versions,
        "git": git_revision(project_root),
        "created": now(),
        "stages": {name: {"status": "pending"} for name in stages},
    }
