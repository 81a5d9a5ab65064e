"""run_plan: exit codes, streaming + tee, environment, launch-time refs, and that signals stop the whole tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakehr_orchestra.engines.plan import MissingEnvError, Plan
from fakehr_orchestra.launch.environ import venv_bin
from fakehr_orchestra.launch.local import run_plan
from tests.launch.proctable import alive, descendants, in_session


def sh(script: str, **kw) -> Plan:
    return Plan(stage="t", argv=["bash", "-c", script], **kw)


def test_exit_code_output_streamed_and_teed(tmp_path, capfdbinary):
    code = run_plan(sh("echo out; echo err >&2; exit 7"), tmp_path / "logs" / "a.log")
    assert code == 7
    log = (tmp_path / "logs" / "a.log").read_text()
    assert "out\nerr\n" in log and log.startswith("# fakehr-orchestra: stage t")
    assert b"out\nerr\n" in capfdbinary.readouterr().out


def test_echo_false_keeps_console_quiet(tmp_path, capfdbinary):
    assert run_plan(sh("echo hidden"), tmp_path / "b.log", echo=False) == 0
    assert b"hidden" not in capfdbinary.readouterr().out
    assert "hidden" in (tmp_path / "b.log").read_text()


def test_env_plan_over_environ_over_os_and_venv_first_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("A_FROM_OS", "os")
    plan = sh('echo "$A_FROM_OS $B $C ${PATH%%:*}"; command -v python3', env={"C": "plan", "B": "plan"})
    assert run_plan(plan, tmp_path / "c.log", {"B": "environ"}, echo=False) == 0
    lines = (tmp_path / "c.log").read_text().splitlines()
    assert f"os plan plan {venv_bin()}" in lines
    assert lines[-1] == os.path.join(venv_bin(), "python3")


def test_launch_time_refs_resolved_from_environ_and_cwd_used(tmp_path):
    (tmp_path / "w").mkdir()
    plan = sh('echo "rank=$NODE_RANK"; pwd', env={"NODE_RANK": "${RANK}"}, cwd=str(tmp_path / "w"),
              env_refs=["RANK"])
    assert run_plan(plan, tmp_path / "d.log", {"RANK": "3"}, echo=False) == 0
    text = (tmp_path / "d.log").read_text()
    assert "rank=3" in text and str(tmp_path / "w") in text


def test_missing_ref_fails_before_starting_anything(tmp_path):
    plan = sh("touch started", env={"X": "${NOT_SET_ANYWHERE}"}, cwd=str(tmp_path), env_refs=["NOT_SET_ANYWHERE"])
    with pytest.raises(MissingEnvError, match="NOT_SET_ANYWHERE"):
        run_plan(plan, tmp_path / "e.log")
    assert not (tmp_path / "started").exists()


def test_unstartable_command_is_exit_127_with_a_message(tmp_path):
    plan = Plan(stage="t", argv=["/nonexistent/swift", "sft"])
    assert run_plan(plan, tmp_path / "f.log", echo=False) == 127
    assert "cannot start '/nonexistent/swift'" in (tmp_path / "f.log").read_text()


def test_death_by_signal_is_128_plus_n(tmp_path):
    assert run_plan(sh("kill -TERM $$"), tmp_path / "g.log", echo=False) == 128 + signal.SIGTERM


def test_leftover_group_members_are_stopped_when_the_leader_exits(tmp_path):
    # the leader exits at once; its background child would live 300 s holding our pipe
    start = time.monotonic()
    code = run_plan(sh("sleep 300 & echo $! > pid; exit 0", cwd=str(tmp_path)), tmp_path / "h.log", echo=False)
    assert code == 0 and time.monotonic() - start < 30
    assert not alive(int((tmp_path / "pid").read_text()))


PARENT = """
import sys
from pathlib import Path
from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.local import run_plan
plan = Plan.from_dict(__import__('json').loads(sys.argv[1]))
sys.exit(run_plan(plan, Path(sys.argv[2]), echo=False))
"""


def _wait_for_the_tree(parent: int, log: Path) -> list[int]:
    """The trainer's tree once the script has started all of it: bash, sleep, bash, sleep (the watchdog aside).

    The log's header quotes the command, `echo READY` included, so only a line that is READY alone says the
    script got there (CI once snapshotted the tree off the header, with the leader alone in it)."""
    tree: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(tree) < 4:
        time.sleep(0.1)
        if "READY" in (log.read_text().splitlines() if log.exists() else []):
            tree = [pid for pid in descendants(parent) if " -I -S -c" not in _cmdline(pid)]
    assert len(tree) >= 4, tree
    return tree


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_parent_stops_the_whole_tree(tmp_path, signum):
    # a tree: bash -> (sleep, bash -> sleep), one of them ignoring SIGINT/SIGTERM until SIGKILL
    script = ("trap '' INT TERM; sleep 300 & bash -c 'sleep 300; true' & "
              "echo READY; wait")
    plan = Plan(stage="t", argv=["bash", "-c", script])
    log = tmp_path / "tree.log"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, json.dumps(plan.to_dict()), str(log)])
    tree = _wait_for_the_tree(parent.pid, log)
    leader = next(pid for pid in tree if _cmdline(pid).startswith("bash -c trap"))
    assert in_session(leader), "the trainer should lead a session of its own"
    tree += [pid for pid in descendants(parent.pid) if pid not in tree]  # the watchdog too
    parent.send_signal(signum)
    assert parent.wait(timeout=60) in (128 + signal.SIGKILL, 128 + signum)
    assert in_session(leader) == []
    # the watchdog (in the tree too) exits once it sees the orchestrator gone: on a loaded machine that is a moment
    # after the parent's exit (seen in a full-suite run beside two training jobs), so give it a few seconds
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(pid) for pid in tree):
        time.sleep(0.1)
    assert [pid for pid in tree if alive(pid)] == []


@pytest.mark.parametrize("how", ["kill -9 of its process group", "SIGKILL of the orchestrator alone"])
def test_the_trainer_tree_dies_with_the_orchestrator(tmp_path, how):
    """Issue 19 item 11: the child runs in a session of its own (for a clean Ctrl-C), so a kill of the
    orchestrator's group misses it; the watchdog stops the child's whole group (SIGTERM, then SIGKILL for a member
    that ignores it) once the orchestrator is gone."""
    script = "trap '' INT TERM; sleep 300 & bash -c 'sleep 300; true' & echo READY; wait"
    plan = Plan(stage="t", argv=["bash", "-c", script])
    log = tmp_path / "tree.log"
    # the orchestrator leads a group of its own, as a shell job would (so the test can kill that group)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, json.dumps(plan.to_dict()), str(log)],
                              start_new_session=True)
    tree: list[int] = []
    try:
        tree = _wait_for_the_tree(parent.pid, log)
        if how.startswith("kill -9"):
            os.killpg(parent.pid, signal.SIGKILL)
        else:
            parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 30  # SIGTERM, the 10 s grace for the member that ignores it, SIGKILL
        while time.monotonic() < deadline and any(alive(pid) for pid in tree):
            time.sleep(0.2)
        assert [pid for pid in tree if alive(pid)] == []
    finally:  # never leave 300 s sleeps behind, whatever failed
        for group in (parent.pid, *tree[:1]):
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        parent.wait(timeout=10)


def test_a_finished_plan_leaves_no_watchdog_behind(tmp_path):
    before = set(descendants(os.getpid()))
    assert run_plan(sh("exit 0"), tmp_path / "w.log", echo=False) == 0
    assert set(descendants(os.getpid())) - before == set()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_parent_reports_nothing_left_in_its_session(tmp_path):
    # sanity for the helper itself: a live session is seen, then gone
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert in_session(proc.pid) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert in_session(proc.pid) == []
    assert Path("/proc").is_dir()


def test_ray_auth_mode_follows_the_token(tmp_path):
    """Ray >= 2.60 enables token auth in `ray start` when a token exists, but not in a client given an address:
    every process we start must be told the same mode."""
    from fakehr_orchestra.launch.ray_cluster import ray_auth_env

    assert ray_auth_env({"HOME": str(tmp_path), "RAY_AUTH_MODE": ""}) == {}
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("x" * 32)
    assert ray_auth_env({"HOME": str(tmp_path), "RAY_AUTH_MODE": ""}) == {"RAY_AUTH_MODE": "token"}
    assert ray_auth_env({"HOME": str(tmp_path), "RAY_AUTH_MODE": "disabled"}) == {"RAY_AUTH_MODE": "disabled"}
