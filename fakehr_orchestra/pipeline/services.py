"""The services of a stage (the critic server for GRPO): started before its steps, stopped after them, always.

    with running(sp.services, ...):     # start each (its own process group, log in the run dir), wait until ready
        run the stage's steps           # the reward already has the URL (in the GRPO plan's reward kwargs)
    # here every service's whole process tree is stopped: the stage ended, failed, or was interrupted

Waiting never hangs: a deadline (critic.server.ready_timeout_s), and it stops at once when the server exits or
answers as another model. Ctrl-C or SIGTERM while a service starts raises `Interrupted` (the steps' own launcher
handles signals while they run), and the service is stopped on the way out. A service that exits while the steps
still run is reported at once and recorded in the manifest; the reward keeps going on its fallback score (and
counts the failures in the training log), so the stage is not killed for it.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ..engines.plan import MissingEnvError
from ..launch.service import Service, port_in_use
from ..refs import PLAN_REF
from .record import StageRecord
from .rundir import RunDir, now
from .stages import ServiceStep

PORT_WAIT_S = 90.0  # a port left in TIME_WAIT by a server that just stopped frees itself within ~60 s


class ServiceFailed(RuntimeError):
    """A service could not start or did not become ready; the stage fails with `code`."""

    def __init__(self, name: str, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.name, self.code = name, code


class Interrupted(RuntimeError):
    """SIGINT / SIGTERM while services were starting."""

    def __init__(self, code: int) -> None:
        super().__init__(f"interrupted (exit {code})")
        self.code = code


def _resolve(text: str) -> str:
    missing = [n for n in PLAN_REF.findall(text) if n not in os.environ]
    if missing:
        raise ServiceFailed("critic", f"{text} takes {', '.join(missing)} from the environment at launch; set it",
                            2)
    return PLAN_REF.sub(lambda m: os.environ[m.group(1)], text)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port(svc: ServiceStep, say: Callable[[str], None]) -> None:
    """The port must be bindable as ms-swift binds it, or `swift deploy` serves elsewhere without a word."""
    why = port_in_use(svc.port)
    if why is None:
        return
    if _listening(svc.port):
        raise ServiceFailed(svc.name, f"port {svc.port} is taken by another server ({why}); `swift deploy` would "
                            f"silently move to the next free port. Stop it, or set critic.server.port to a free "
                            f"port", 2)
    say(f"{svc.name}: port {svc.port} is not free yet ({why}; a recently closed server leaves it in TIME_WAIT); "
        f"waiting up to {PORT_WAIT_S:.0f} s")
    deadline = time.monotonic() + PORT_WAIT_S
    while (why := port_in_use(svc.port)) is not None and time.monotonic() < deadline:
        time.sleep(1.0)
    if why is not None:
        raise ServiceFailed(svc.name, f"port {svc.port} stayed unavailable for {PORT_WAIT_S:.0f} s ({why}); set "
                            "critic.server.port to a free port", 2)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("    " + line[:300] for line in text)


def _install(handler: Any) -> dict[int, Any]:
    """Set `handler` for SIGINT and SIGTERM (main thread only); returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(128 + signum)


@contextmanager
def running(services: list[ServiceStep], run: RunDir, record: StageRecord, save: Callable[[], None],
            say: Callable[[str], None]) -> Iterator[None]:
    """Start `services`, wait until each is ready, yield; stop them all on the way out, whatever happened.

    While services run, SIGINT/SIGTERM raise Interrupted here (a step's launcher installs its own handlers while
    its process runs, and restores these after); during the teardown they are ignored, so a second Ctrl-C cannot
    leave a server behind (the teardown is bounded: SIGTERM, a grace period, SIGKILL).
    """
    if not services:
        yield
        return
    started: list[tuple[ServiceStep, Service]] = []
    entries = record.service_entries()
    previous = _install(_raise_interrupted)
    try:
        for svc in services:
            if svc.blocked:
                raise ServiceFailed(svc.name, svc.blocked, 2)
            url = _resolve(svc.url)
            _free_port(svc, say)
            try:
                service = Service(svc.plan, run.log(svc.name))
            except MissingEnvError as exc:
                raise ServiceFailed(svc.name, str(exc), 2) from None
            entry = entries[svc.name] = {"status": "starting", "url": url, "model": svc.model,
                                         "where": svc.where, "log": str(run.log(svc.name)), "started": now()}

            def exited(code: int, svc: ServiceStep = svc, entry: dict[str, Any] = entry) -> None:
                entry.update(status="exited", exit_code=code, exited=now())
                say(f"{svc.name} server exited with code {code} while the stage still needs it; the reward "
                    f"uses the fallback score from now on and counts the failures in the log (see "
                    f"{run.log(svc.name)})")
            started.append((svc, service))  # before start(): a signal right after it still finds it
            try:
                service.start(on_exit=exited)
            except OSError as exc:
                raise ServiceFailed(svc.name, f"cannot start {svc.plan.argv[0]!r}: {exc}", 127) from None
            entry["pid"] = service.pid  # also its process group id
            save()
            say(f"{svc.name} server starting {svc.where} (pid {service.pid}, log {run.log(svc.name)}); "
                f"waiting up to {svc.ready_timeout_s:g} s for {url}")
            from ..critic.probe import wait_ready

            def gone(service: Service = service) -> str | None:
                code = service.returncode()
                return None if code is None else f"exit code {code}"
            result = wait_ready(url, svc.model, svc.ready_timeout_s, svc.api_key_env, alive=gone,
                                max_tokens=svc.max_tokens, template=svc.template)
            if not result.ok:
                raise ServiceFailed(svc.name, f"{svc.name} server not ready: {result.message}; its log "
                                    f"{run.log(svc.name)} ends with:\n{_tail(run.log(svc.name))}")
            entry.update(status="ready", ready_after_s=result.seconds, probe_reply=result.reply,
                         probe_score=result.score)
            save()
            say(f"{svc.name} {result.message} (after {result.seconds} s)")
        yield
    except KeyboardInterrupt:
        raise Interrupted(130) from None
    finally:
        _install(signal.SIG_IGN)
        try:
            for svc, service in reversed(started):
                code = service.stop()
                entry = entries[svc.name]
                if entry.get("status") != "exited":
                    entry.update(status="stopped", exit_code=code)
                entry["stopped"] = now()
                say(f"{svc.name} server stopped (process group {service.pid})")
            save()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
