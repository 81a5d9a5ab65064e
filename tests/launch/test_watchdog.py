"""The watchdog program: a word on its pipe lets the group live; end of file without it stops the group."""

from __future__ import annotations

import os
import subprocess
import time

from fakehr_orchestra.launch.process_group import Watchdog, group_alive


def _group() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_released_the_group_lives_on_abandoned_it_is_stopped():
    kept, stopped = _group(), _group()
    try:
        Watchdog(kept.pid, grace_s=1).release()
        Watchdog(stopped.pid, grace_s=1).abandon()
        assert stopped.wait(timeout=10) != 0
        assert kept.poll() is None and group_alive(kept.pid)
    finally:
        for child in (kept, stopped):
            child.kill()
            child.wait()


def test_the_watchdog_runs_isolated_from_its_file():
    child = _group()
    try:
        dog = Watchdog(child.pid, grace_s=1)
        assert dog._proc is not None
        args = dog._proc.args
        assert args[1:3] == ["-I", "-S"] and os.path.basename(args[3]) == "watchdog.py"
        deadline = time.monotonic() + 10
        dog.abandon()
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.returncode is not None
    finally:
        child.kill()
        child.wait()
