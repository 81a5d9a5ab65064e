"""Find the checkpoint a requeued job resumes from. Called inside sbatch scripts, so it prints a path or nothing.

ms-swift writes `output_dir/v<N>-<date>/checkpoint-<step>` (or `output_dir/checkpoint-<step>` with
`--add_version false`); the newest is the one with the highest step, ties broken by modification time (a later
version folder restarts its step count only when it did not resume). verl needs no helper: `trainer.resume_mode=auto`
reads `latest_checkpointed_iteration.txt` itself.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Optional

_STEP = re.compile(r"^checkpoint-(\d+)$")


def latest_swift_checkpoint(output_dir: Path) -> Optional[Path]:
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    candidates = []
    for parent in [output_dir, *[p for p in output_dir.iterdir() if p.is_dir() and p.name.startswith("v")]]:
        for child in parent.iterdir():
            match = _STEP.match(child.name)
            # a checkpoint is complete once the trainer state is written (it is saved last)
            if match and child.is_dir() and (child / "trainer_state.json").exists():
                candidates.append((int(match.group(1)), child.stat().st_mtime, child))
    return max(candidates)[2] if candidates else None


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakehr_orchestra.launch.resume")
    parser.add_argument("engine", choices=["swift"])
    parser.add_argument("output_dir")
    parser.add_argument("--cwd", default=".", help="the directory the stage runs in (output_dir is relative to it)")
    args = parser.parse_args(argv)
    found = latest_swift_checkpoint(Path(os.path.join(args.cwd, args.output_dir)))
    if found is not None:
        print(found.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
