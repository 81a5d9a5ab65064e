"""Run one Plan in the foreground on this node: its own process group, output streamed and teed to a log, signals
stop the tree (process_group.py says why a group, and how a watchdog stops it if we die first).

On SIGINT/SIGTERM we signal the whole group, wait a grace period, then SIGKILL the group. After the child exits, any
member of its group still alive is stopped too, so nothing is left behind.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Mapping, Optional

from ..engines.plan import Plan
from .environ import child_environ
from .process_group import GRACE_S, Watchdog, group_alive, signal_group


def run_plan(plan: Plan, log_path: Path, environ: Optional[Mapping[str, str]] = None, echo: bool = True) -> int:
    """Run `plan` to completion; return its exit code (128+n when it died of signal n).

    Raises MissingEnvError (before starting anything) when a launch-time reference is not set.
    """
    lookup = dict(os.environ)
    if environ is not None:
        lookup.update(environ)
    resolved = plan.resolve(lookup)
    env = child_environ(resolved, environ)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A log is a stream, not a document: appended as it comes (not via io.atomic_open), so a crash keeps what ran.
    with open(log_path, "ab") as log:
        command = "".join(f"#   {line}\n" for line in plan.to_shell().splitlines())
        log.write(f"# fakehr-orchestra: stage {plan.stage}, cwd {resolved.cwd}\n{command}".encode())
        log.flush()
        try:
            child = subprocess.Popen(resolved.argv, cwd=resolved.cwd or ".", env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            message = f"fakehr-orchestra: cannot start {resolved.argv[0]!r}: {exc}\n"
            log.write(message.encode())
            if echo:
                sys.stderr.write(message)
            return 127
        watchdog = Watchdog(child.pid)
        try:
            code = _supervise(child, log, echo)
        except BaseException:
            watchdog.abandon()  # the group may live on unsupervised: the watchdog stops it
            raise
        watchdog.release()
        return code


def exec_plan(plan: Plan, environ: Optional[Mapping[str, str]] = None) -> None:
    """Replace this process with `plan` (launch-time references filled from the environment): how one srun task of
    a Slurm job runs its node's share of a plan; srun, not us, supervises it and forwards signals."""
    lookup = dict(os.environ) if environ is None else {**os.environ, **environ}
    resolved = plan.resolve(lookup)
    env = child_environ(resolved, environ)
    os.chdir(resolved.cwd or ".")
    os.execvpe(resolved.argv[0], resolved.argv, env)


def _supervise(child: subprocess.Popen, log: IO[bytes], echo: bool) -> int:
    pgid = child.pid  # start_new_session: the child leads its own group
    received: list[int] = []
    kill_at: list[float] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        signal_group(pgid, signum)
        if not kill_at:
            kill_at.append(time.monotonic() + GRACE_S)

    installed = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            installed[sig] = signal.signal(sig, forward)
    out = sys.stdout.buffer if echo else None
    assert child.stdout is not None
    fd = child.stdout.fileno()
    try:
        exited_at: Optional[float] = None
        while True:
            if kill_at and time.monotonic() >= kill_at[0]:
                signal_group(pgid, signal.SIGKILL)
            if exited_at is None and child.poll() is not None:
                exited_at = time.monotonic()
                # the leader is gone; stop whatever it left in its group (they may hold our pipe open)
                if group_alive(pgid):
                    signal_group(pgid, signal.SIGTERM)
                    if not kill_at:
                        kill_at.append(exited_at + GRACE_S)
            if exited_at is not None and time.monotonic() > exited_at + GRACE_S + 2:
                break  # only processes outside the group (they left it themselves) still hold the pipe
            try:
                ready, _, _ = select.select([fd], [], [], 0.2)
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
                continue
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:  # EOF: every holder of the pipe has exited
                break
            log.write(chunk)
            log.flush()
            if out is not None:
                out.write(chunk)
                out.flush()
        code = child.wait()
        if group_alive(pgid):  # someone closed its stdout but lives on: stop it too
            signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_S
            while group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            signal_group(pgid, signal.SIGKILL)
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)
        child.stdout.close()
    if code < 0:
        return 128 - code
    if received and code == 0:
        return 128 + received[0]
    return code
