"""Parent side of a rehearsal child: start it in its own process group, read its step events, enforce each step's
timeout, and stop the whole group when a step overruns, so a rehearsal never hangs (a framework waiting for a GPU,
a `datasets` pool that deadlocks, a reward plugin that sleeps).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from ..engines.plan import Plan
from ..launch.environ import child_environ
from ..launch.process_group import signal_group
from .protocol import MARK, StepResult

START_S = 120.0  # importing a framework before the first step (torch, transformers, verl): seconds under load
BETWEEN_S = 60.0  # from one step's end to the next one's start
EXIT_S = 30.0  # after the last step: interpreter shutdown (a framework's threads may hold it; then it is stopped)


def run_child(stage: str, module: str, request: dict[str, Any], log_path: Path, cwd: str,
              environ: Optional[Mapping[str, str]] = None) -> list[StepResult]:
    """Run `python -m module` with `request` on stdin; return every step it reported, plus a failure for a step
    that overran its timeout or a child that died without saying why (the tail of its log)."""
    env = child_environ(Plan(stage=stage, argv=[]), environ)
    env.update({"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", module], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    results: list[StepResult] = []
    current: Optional[dict[str, Any]] = None
    deadline = time.monotonic() + START_S
    buffer = b""
    fd = proc.stdout.fileno()
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                if not line.startswith(MARK):
                    continue
                event = json.loads(line[len(MARK):])
                if event["status"] == "start":
                    current = event
                    deadline = time.monotonic() + float(event.get("timeout") or BETWEEN_S)
                    continue
                results.append(StepResult(**{k: event.get(k) for k in ("stage", "step", "status", "detail", "key",
                                                                         "fix")}, seconds=event.get("seconds", 0.0)))
                current = None
                deadline = time.monotonic() + BETWEEN_S
    finally:
        if not timed_out:
            try:
                proc.wait(timeout=EXIT_S)
            except subprocess.TimeoutExpired:
                pass
        stopped = proc.poll() is None
        signal_group(proc.pid, signal.SIGKILL)  # the child and anything it left in its group
        proc.wait()
        proc.stdout.close()
    if timed_out:
        name = current["step"] if current else "start-up"
        limit = float(current.get("timeout") or BETWEEN_S) if current else START_S
        results.append(StepResult(stage, name, "failed", f"did not finish within {limit:g} s (stopped; see {log_path})",
                                  current.get("key") if current else None, current.get("fix") if current else None))
    elif not stopped and proc.returncode != 0 and not any(r.status == "failed" for r in results):
        tail = log_tail(log_path)
        name = current["step"] if current else "start-up"
        results.append(StepResult(stage, name, "failed", f"the {stage} rehearsal process exited with "
                                  f"{proc.returncode}: {tail}", current.get("key") if current else None))
    return results


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])[-600:] or "(empty log)"
