"""A plan in the background, in its own process group: a server a stage needs (the critic), stopped with its tree."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

from ..engines.plan import Plan
from .environ import child_environ
from .process_group import GRACE_S, Watchdog, group_alive, signal_group


class Service:
    """A plan running in the background in its own process group: a server a stage needs (the critic).

    Unlike `run_plan`, nothing is echoed: the output goes to the log only. `stop()` stops the whole group (SIGTERM,
    then SIGKILL after a grace period), so the server's children (ms-swift re-launches itself as a second Python;
    vLLM starts engine processes) go with it. An exit while the stage still needs it is reported by `on_exit`.
    """

    def __init__(self, plan: Plan, log_path: Path, environ: Optional[Mapping[str, str]] = None) -> None:
        lookup = dict(os.environ)
        if environ is not None:
            lookup.update(environ)
        self.plan = plan
        self.resolved = plan.resolve(lookup)  # MissingEnvError before anything starts
        self.log_path = Path(log_path)
        self.environ = environ
        self.child: Optional[subprocess.Popen] = None
        self._watchdog: Optional[Watchdog] = None
        self.stopping = False
        self._watch: Optional[threading.Thread] = None

    @property
    def pid(self) -> Optional[int]:
        return self.child.pid if self.child is not None else None

    def start(self, on_exit: Optional[Callable[[int], None]] = None) -> "Service":
        """Start it (raises OSError when the executable cannot start); `on_exit(code)` is called from a watcher
        thread if it exits before `stop()`."""
        env = child_environ(self.resolved, self.environ)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # a stream, appended (like run_plan's logs)
            command = "".join(f"#   {line}\n" for line in self.plan.to_shell().splitlines())
            log.write(f"# fakehr-orchestra: service {self.plan.stage}, cwd {self.resolved.cwd}\n{command}".encode())
            log.flush()
            self.child = subprocess.Popen(self.resolved.argv, cwd=self.resolved.cwd or ".", env=env,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self._watchdog = Watchdog(self.child.pid)
        if on_exit is not None:
            self._watch = threading.Thread(target=self._watcher, args=(on_exit,), daemon=True,
                                           name=f"watch-{self.plan.stage}")
            self._watch.start()
        return self

    def _watcher(self, on_exit: Callable[[int], None]) -> None:
        assert self.child is not None
        code = self.child.wait()
        if not self.stopping:
            on_exit(128 - code if code < 0 else code)

    def alive(self) -> bool:
        return self.child is not None and self.child.poll() is None

    def returncode(self) -> Optional[int]:
        if self.child is None or self.child.poll() is None:
            return None
        code = self.child.returncode
        return 128 - code if code < 0 else code

    def stop(self, grace_s: float = GRACE_S) -> Optional[int]:
        """Stop the whole process group; returns the leader's exit code (128+n for signal n), None if never run."""
        if self.child is None:
            return None
        self.stopping = True
        pgid = self.child.pid
        if group_alive(pgid):
            signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while group_alive(pgid) and time.monotonic() < deadline:
                self.child.poll()  # reap the leader so it does not count as alive
                time.sleep(0.1)
            if group_alive(pgid):
                signal_group(pgid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while group_alive(pgid) and time.monotonic() < deadline:
                    self.child.poll()
                    time.sleep(0.1)
        try:
            self.child.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed above
            pass
        if self._watchdog is not None:
            self._watchdog.release()
        return self.returncode()


def port_in_use(port: int) -> Optional[str]:
    """Why `port` cannot be bound the way ms-swift's find_free_port binds it (('', port), no SO_REUSEADDR), or
    None when it can. A busy port makes `swift deploy` move to the next free one silently."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None
