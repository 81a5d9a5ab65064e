"""Finding what a stage produced, from what the framework itself says, and fingerprinting it.

- ms-swift prints `last_model_checkpoint: <path>` when training ends: that line, not a folder-name guess, is the
  SFT (and swift-GRPO) result.
- verl writes `latest_checkpointed_iteration.txt` into trainer.default_local_dir; the actor is
  `global_step_<N>/actor` for that N.
- Resuming mid-stage needs the newest checkpoint a killed run left: ms-swift's checkpoint folders carry
  `trainer_state.json` with the global step, which orders them.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

_SWIFT_LAST = re.compile(r"last_model_checkpoint: (\S+)")
SAMPLE_OVER = 64 * 1024 * 1024  # bigger files are fingerprinted by size + head + tail (a 15 GB checkpoint is not re-read)
CHUNK = 1024 * 1024


class ArtifactError(RuntimeError):
    """A stage finished but its output cannot be found where the framework says it is."""


def swift_last_checkpoint(log_path: Path) -> str:
    text = Path(log_path).read_text(errors="replace") if Path(log_path).exists() else ""
    found = _SWIFT_LAST.findall(text)
    found = [f for f in found if f != "None"]
    if not found:
        raise ArtifactError(f"ms-swift did not report last_model_checkpoint in {log_path}")
    path = found[-1]
    if not Path(path).is_dir():
        raise ArtifactError(f"ms-swift reported {path} as its last checkpoint, but it does not exist")
    return path


def swift_resume_checkpoint(output_dir: Path) -> str | None:
    """The newest complete checkpoint under an ms-swift output dir (for --resume_from_checkpoint), if any."""
    best: tuple[int, str] | None = None
    for state in Path(output_dir).glob("**/checkpoint-*/trainer_state.json"):
        try:
            step = int(json.loads(state.read_text()).get("global_step", -1))
        except (ValueError, OSError):
            continue
        if best is None or step > best[0]:
            best = (step, str(state.parent))
    return best[1] if best else None


VERL_TRACKER = "latest_checkpointed_iteration.txt"


def verl_latest_checkpoint(output_dir: Path) -> str | None:
    """The `global_step_<N>` folder verl resumes from, found as verl finds it
    (`verl.utils.checkpoint.checkpoint_manager.find_latest_ckpt_path`, restated so the pipeline does not import
    verl): N is the integer in trainer.default_local_dir/latest_checkpointed_iteration.txt, and None when the
    tracker or that folder is missing (verl then trains from scratch)."""
    tracker = Path(output_dir) / VERL_TRACKER
    if not tracker.is_file():
        return None
    try:
        step = int(tracker.read_bytes().decode())
    except (ValueError, UnicodeDecodeError):
        return None  # verl would raise on it too; a resumed stage then starts afresh rather than half-resumed
    folder = Path(output_dir) / f"global_step_{step}"
    return str(folder) if folder.exists() else None


def verl_latest_actor(output_dir: Path) -> str:
    """The actor of verl's latest checkpoint (what `verl.model_merger merge --local_dir` takes)."""
    marker = Path(output_dir) / VERL_TRACKER
    if not marker.exists():
        raise ArtifactError(f"verl wrote no {marker.name} in {output_dir}: no checkpoint was saved "
                            f"(check trainer.save_freq)")
    folder = verl_latest_checkpoint(output_dir)
    if folder is None:
        raise ArtifactError(f"verl's {marker} names step {marker.read_text(errors='replace').strip()!r}, but "
                            f"no such global_step_<N> folder exists in {output_dir}")
    actor = Path(folder) / "actor"
    if not actor.is_dir():
        raise ArtifactError(f"verl's latest checkpoint {folder} has no actor folder")
    return str(actor)


def _file_digest(path: Path, h: "hashlib._Hash") -> None:
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        if size <= SAMPLE_OVER:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
        else:
            h.update(f.read(CHUNK))
            f.seek(size - CHUNK)
            h.update(f.read(CHUNK))


def digest(path: str | Path) -> str:
    """sha256 of a file or a folder tree (names + contents; huge files sampled)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        _file_digest(path, h)
    elif path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(child.relative_to(path)).encode() + b"\0")
            _file_digest(child, h)
    else:
        raise ArtifactError(f"{path} does not exist")
    return h.hexdigest()


def mismatches(recorded: dict[str, dict[str, str]]) -> dict[str, str]:
    """Recorded artifacts (name -> {path, sha256}) no longer as recorded: name -> 'missing' or 'changed'. What
    `--resume` reruns a stage for and what `status` reports."""
    out = {}
    for name, entry in recorded.items():
        try:
            if digest(entry["path"]) != entry["sha256"]:
                out[name] = "changed"
        except (ArtifactError, OSError):
            out[name] = "missing"
    return out
