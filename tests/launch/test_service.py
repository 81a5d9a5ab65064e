"""launch.service.Service: a plan in the background, in its own process group, stopped with its whole tree."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.process_group import group_alive
from fakehr_orchestra.launch.service import Service, port_in_use
from tests.conftest import ROOT

FAKE = str(ROOT / "tests" / "critic" / "fake_critic.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_stop_takes_the_whole_tree_even_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "critic.log"
    plan = Plan(stage="critic", argv=[sys.executable, FAKE, "--port", str(free_port()), "--stubborn-child"],
                env={"MARK": "x"})
    service = Service(plan, log).start()
    wait_for(lambda: "serving judge" in log.read_text())
    assert service.alive() and group_alive(service.pid)
    start = time.monotonic()
    code = service.stop(grace_s=1.0)
    assert not group_alive(service.pid) and time.monotonic() - start < 10
    assert code == 0  # the leader exited cleanly on SIGTERM; its stubborn child was SIGKILLed after the grace
    text = log.read_text()
    assert text.startswith("# fakehr-orchestra: service critic") and "MARK=x" in text  # the plan heads its log


def test_an_unexpected_exit_is_reported_and_a_stop_is_not(tmp_path: Path) -> None:
    seen: list[int] = []
    died = threading.Event()
    plan = Plan(stage="critic", argv=[sys.executable, FAKE, "--port", "1", "--exit", "3", "--after", "0.2"])
    service = Service(plan, tmp_path / "a.log").start(on_exit=lambda code: (seen.append(code), died.set()))
    assert died.wait(20) and seen == [3] and service.returncode() == 3
    service.stop()  # the leader is gone; its child is still in the group and is stopped now
    assert not group_alive(service.pid)

    quiet: list[int] = []
    port = free_port()
    other = Service(Plan(stage="critic", argv=[sys.executable, FAKE, "--port", str(port)]), tmp_path / "b.log")
    other.start(on_exit=quiet.append)
    wait_for(lambda: "serving" in (tmp_path / "b.log").read_text())
    os.killpg(other.pid, signal.SIGKILL)  # killed from outside: reported with 128+9
    wait_for(lambda: bool(quiet))
    assert quiet == [137]
    other.stop()

    third = Service(Plan(stage="critic", argv=[sys.executable, FAKE, "--port", str(free_port())]),
                    tmp_path / "c.log")
    calls: list[int] = []
    third.start(on_exit=calls.append)
    wait_for(lambda: "serving" in (tmp_path / "c.log").read_text())
    third.stop()
    time.sleep(0.3)
    assert calls == []  # our own stop is not an unexpected exit


def test_port_in_use_binds_like_ms_swift() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert port_in_use(s.getsockname()[1]) is not None
    assert port_in_use(free_port()) is None
