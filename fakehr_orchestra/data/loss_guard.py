"""Nothing dropped in silence: a source that loses more than `data.max_loss` of its records to missing or corrupt
images, or that yields no record at all, is an error naming the source, the first lost paths, where they were
looked for and, when the files exist under a nearby folder, which image root was probably meant.

Why a guard and not a summary line: a wrong image root makes every record "missing", and the stage would go on to
train on the other sources alone (a Fake-HR1 run without FakeClue has no reasoning to learn) and exit 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import DataError

LOST = ("missing", "corrupt")
EXAMPLES = 3


@dataclass
class SourceTally:
    name: str
    kind: str
    path: Path
    image_root: Optional[Path]
    total: int = 0
    lost: int = 0
    examples: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def add(self, status: str, path: str, reason: Optional[str]) -> None:
        self.total += 1
        if status in LOST:
            self.lost += 1
            if len(self.examples) < EXAMPLES:
                self.examples.append((path, reason or status))


def check(tallies: list[SourceTally], max_loss: float) -> None:
    """Raise DataError listing every source over the limit (all of them at once)."""
    problems = [message for t in tallies if (message := _problem(t, max_loss))]
    if problems:
        raise DataError("\n".join(problems))


def _problem(t: SourceTally, max_loss: float) -> Optional[str]:
    if t.total == 0:
        return f"data source {t.name!r} ({t.kind} at {t.path}) has no records. {_empty_hint(t)}"
    share = t.lost / t.total
    if share <= max_loss:
        return None
    shown = "; ".join(f"{p} ({r})" for p, r in t.examples)
    root = t.image_root or (t.path.parent if t.path.is_file() else t.path)
    hint = _root_hint(t) or "check the paths, or raise data.max_loss if these images are known to be lost"
    return (f"data source {t.name!r} lost {t.lost} of {t.total} records ({share:.0%} > data.max_loss "
            f"{max_loss:.0%}) to missing or corrupt images, e.g. {shown}; relative image paths were looked for "
            f"under {root}. {hint}")


def _empty_hint(t: SourceTally) -> str:
    if t.kind == "genimage" and t.path.is_dir():
        names = {e.name for e in os.scandir(t.path) if e.is_dir()}
        if names & {"train", "val"}:
            return (f"{t.path} holds train/val itself: it is one generator's imagenet_* folder. Point data.sources"
                    f"[].path at the folder holding the generator folders ({t.path.parent.parent}).")
        for sub in sorted(names):
            inner = {e.name for e in os.scandir(t.path / sub) if e.is_dir()}
            if inner & {"ai", "nature"}:
                return (f"{t.path} holds {sub}/ai and {sub}/nature: it is inside a generator's imagenet_* folder. "
                        f"Point the path at the folder holding the generator folders "
                        f"({t.path.parent.parent.parent}).")
        return ("A GenImage source is the folder holding the generator folders: <Generator>/<imagenet_*>/{train,val}/"
                "{ai,nature}/*.")
    return "Check the file, or remove the source."


def _root_hint(t: SourceTally) -> Optional[str]:
    """Where the lost relative paths exist after all: the image root that was probably meant."""
    if t.kind not in ("fakeclue", "jsonl") or not t.examples or t.image_root is None:
        return None
    rel = _relative(t.examples[0][0], t.image_root)
    if rel is None:
        return None
    base = t.path.parent
    candidates = [base, base.parent, base.parent / "train", base.parent / "test", t.image_root.parent,
                  t.image_root / "train", t.image_root / "test"]
    for candidate in candidates:
        if candidate != t.image_root and (candidate / rel).is_file():
            return f"The files are under {candidate}: did you mean image_root: {candidate}?"
    return None


def _relative(path: str, root: Path) -> Optional[Path]:
    try:
        return Path(path).relative_to(root)
    except ValueError:
        return None


def tally_key(rec: Any) -> str:
    """The recipe source a record belongs to (a jsonl row may carry its own `source` for reports)."""
    return rec.extra.get("recipe_source") or rec.source
