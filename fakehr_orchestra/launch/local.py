"""Run one Plan on this node: its own process group, output streamed and teed to a log, signals stop the tree.

Why a process group: `swift sft` re-launches itself through torchrun, which starts one Python per rank, which start
data-loader workers. Ctrl-C on our CLI must stop all of them, and a plain `Popen.terminate()` reaches only the
first. The child is started in a new session (so it also does not receive the terminal's Ctrl-C twice); on
SIGINT/SIGTERM we signal the whole group, wait a grace period, then SIGKILL the group. After the child exits, any
member of its group still alive is stopped too, so nothing is left behind.

The child's group is tied to our fate: a watchdog (a tiny stdlib-only Python, in a session of its own so a kill of
our group does not reach it) holds the read end of a pipe whose write end only we hold. We tell it when we are done
with the group; if the pipe closes without that word, we died (SIGKILL of our process group included, or an
exception left the child unsupervised), and it stops the child's group as a Ctrl-C would: SIGTERM, a grace period,
SIGKILL. (PR_SET_PDEATHSIG would reach only the direct child, not torchrun's ranks or their data-loader workers.)
The window between starting the child and starting its watchdog is one fork.

Multi-node torchrun: ms-swift turns NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT / NPROC_PER_NODE into torchrun
flags (swift/cli/main.py). `with_nodes()` sets them on a plan; values may be launch-time references such as
"${SLURM_NODEID}", which stay shell expansions in scripts and are filled by `Plan.resolve()` when run here.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Callable, Mapping, Optional, Union

from ..engines.plan import Plan

GRACE_S = 10.0  # SIGTERM/SIGINT -> SIGKILL for the group
TORCHRUN_ENV = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE")
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def venv_bin() -> str:
    """The bin dir of the running interpreter: `swift`, `python3`, `ray` there are the ones installed with us."""
    return str(Path(sys.executable).parent)


def child_environ(plan: Plan, environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """os.environ, then `environ` (values a launcher adds), then the plan's env; the venv first on PATH."""
    env = dict(os.environ)
    if environ is not None:
        env.update(environ)
    env.update(plan.env)
    env["PATH"] = venv_bin() + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def with_nodes(plan: Plan, nodes: Union[int, str, None] = None, node_rank: Union[int, str, None] = None,
               master_addr: Optional[str] = None, master_port: Union[int, str, None] = None,
               nproc_per_node: Union[int, str, None] = None) -> Plan:
    """The plan with ms-swift's torchrun env set from the command line / the scheduler.

    A None argument keeps what the recipe rendered. A value like "${SLURM_NODEID}" becomes a launch-time reference.
    References that no longer appear anywhere (e.g. the recipe's ${RANK} replaced by a rank given here) are dropped,
    so `resolve()` does not ask for them.
    """
    given = {"NNODES": nodes, "NODE_RANK": node_rank, "MASTER_ADDR": master_addr, "MASTER_PORT": master_port,
             "NPROC_PER_NODE": nproc_per_node}
    env = dict(plan.env)
    for key, value in given.items():
        if value is not None:
            env[key] = str(value)
    return _with_refs(replace(plan, env=env, nnodes=env.get("NNODES"), procs_per_node=env.get("NPROC_PER_NODE")))


def without_torchrun_env(plan: Plan) -> Plan:
    """The plan minus the torchrun variables (a Ray driver sizes its cluster itself; they would only mislead)."""
    return _with_refs(replace(plan, env={k: v for k, v in plan.env.items() if k not in TORCHRUN_ENV}))


def _with_refs(plan: Plan) -> Plan:
    used: list[str] = []
    for text in [*plan.argv, *plan.env.values(), plan.cwd]:
        for name in _REF.findall(text):
            if name not in used:
                used.append(name)
    # keep the recipe's order for refs that survive; refs introduced here (e.g. SLURM_NODEID) follow
    refs = [r for r in plan.env_refs if r in used] + [r for r in used if r not in plan.env_refs
                                                      and _introduced(plan, r)]
    return replace(plan, env_refs=refs)


def _introduced(plan: Plan, name: str) -> bool:
    """A ${NAME} in a torchrun variable set by with_nodes() is a launch-time reference by construction."""
    return any(f"${{{name}}}" in plan.env.get(key, "") for key in TORCHRUN_ENV)


_WATCHDOG = r"""
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
try:
    word = os.read(0, 1)
except OSError:
    word = b""
if word:
    sys.exit(0)  # the launcher is done with the group
def alive():
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
try:
    os.killpg(pgid, signal.SIGTERM)
except OSError:
    sys.exit(0)
deadline = time.monotonic() + grace
while alive() and time.monotonic() < deadline:
    time.sleep(0.2)
try:
    os.killpg(pgid, signal.SIGKILL)
except OSError:
    pass
"""


class Watchdog:
    """Stops process group `pgid` if this process dies before calling `release()` (see the module docstring)."""

    def __init__(self, pgid: int, grace_s: float = GRACE_S) -> None:
        read, self._write = os.pipe()  # both non-inheritable: later children never hold the write end
        try:
            self._proc: Optional[subprocess.Popen] = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(pgid), str(grace_s)], stdin=read,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:  # pragma: no cover - our own interpreter always starts; no watchdog rather than no run
            self._proc = None
        finally:
            os.close(read)

    def release(self) -> None:
        """We are done with the group (it has exited or was stopped): the watchdog exits without touching it."""
        self._close(b"x")

    def abandon(self) -> None:
        """We stop supervising while the group may live (an exception): the watchdog stops the group."""
        self._close(b"")

    def _close(self, word: bytes) -> None:
        if self._write < 0:
            return
        try:
            if word:
                os.write(self._write, word)
        except OSError:
            pass
        os.close(self._write)
        self._write = -1
        if self._proc is not None and word:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass


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
                if _group_alive(pgid):
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
        if _group_alive(pgid):  # someone closed its stdout but lives on: stop it too
            signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_S
            while _group_alive(pgid) and time.monotonic() < deadline:
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


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """True while any process (zombies excluded) is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return not os.path.isdir("/proc")


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
        if _group_alive(pgid):
            signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while _group_alive(pgid) and time.monotonic() < deadline:
                self.child.poll()  # reap the leader so it does not count as alive
                time.sleep(0.1)
            if _group_alive(pgid):
                signal_group(pgid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while _group_alive(pgid) and time.monotonic() < deadline:
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
