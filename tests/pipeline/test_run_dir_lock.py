"""Issue 19 items 5 and 10 with real processes: one runner per run dir (an advisory flock naming its holder), and
`status` that checks the run dir, not only the manifest (outputs still there, a running stage's runner alive).

The runner processes are the real CLI (`python -c` running `fakehr_orchestra.cli.main`) with one change: the
launcher is a stand-in that writes what `data prepare` would and waits for the test's signal, so no framework runs
and the test controls who holds the lock when."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.engines.plan import MissingEnvError
from fakehr_orchestra.pipeline.rundir import RunDir
from fakehr_orchestra.pipeline.runner import Options, run_pipeline
from tests.conftest import RECIPES
from tests.pipeline.test_runner import FakeFrameworks, smoke

ROOT = Path(__file__).resolve().parents[2]

RUNNER = r"""
import json, os, sys, time
from pathlib import Path
from fakehr_orchestra.pipeline import runner

ran, release = Path(sys.argv[1]), Path(sys.argv[2])

def data_prepare(plan, log_path, echo=True):
    with ran.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    out = Path(plan.argv[plan.argv.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    names = {}
    for name in ("sft.jsonl", "grpo.jsonl", "eval.jsonl"):
        (out / name).write_text(name)
        names[name.split(".")[0]] = str(out / name)
    (out / "artifacts.json").write_text(json.dumps(names))
    return 0

runner._launcher = lambda *a: data_prepare
from fakehr_orchestra.cli import cli
cli(["run", *sys.argv[3:]], prog_name="fakehr-orchestra")
"""


def _start(tmp_path: Path, run_dir: Path) -> subprocess.Popen:
    args = [str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--run-dir", str(run_dir), "--resume", "--skip-validate",
            "--stages", "data"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path / "ran"), str(tmp_path / "release"), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _wait_for(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} not written within {timeout} s")


def test_two_concurrent_resumes_on_one_run_dir_exactly_one_runs(tmp_path):
    run_dir = tmp_path / "run"
    first, second = _start(tmp_path, run_dir), _start(tmp_path, run_dir)
    try:
        winner_pid = int(_wait_for(tmp_path / "ran").split()[0])
        # the other one must stop while the winner still holds the run dir (the winner waits for "release")
        loser = second if winner_pid == first.pid else first
        winner = first if loser is second else second
        assert winner.pid == winner_pid
        out, _ = loser.communicate(timeout=60)
        assert loser.returncode == 2, out
        assert "Traceback" not in out
        assert f"is in use by another run: pid {winner_pid} on {socket.gethostname()}" in out, out
        assert "--run-dir" in out  # the holder's command line is named too
        (tmp_path / "release").write_text("go")
        out, _ = winner.communicate(timeout=60)
        assert winner.returncode == 0, out
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert (tmp_path / "ran").read_text().split() == [str(winner_pid)]  # exactly one ran the stage
    assert RunDir(run_dir).load()["stages"]["data"]["status"] == "done"
    assert (run_dir / "run.lock").read_text() == ""  # released: no holder named


def test_a_killed_runner_shows_as_interrupted_and_its_lock_is_taken_over(tmp_path):
    """Item 5 (killed launch) and item 10 (stale lock): SIGKILL leaves "running" in the manifest and the holder's
    name in run.lock; status says interrupted, and the next run takes the lock over."""
    run_dir = tmp_path / "run"
    proc = _start(tmp_path, run_dir)
    try:
        killed = int(_wait_for(tmp_path / "ran").split()[0])
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed == proc.pid
    assert RunDir(run_dir).load()["stages"]["data"]["status"] == "running"  # the manifest's last word
    assert json.loads((run_dir / "run.lock").read_text())["pid"] == killed
    result = CliRunner().invoke(cli, ["status", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "data   interrupted" in result.output, result.output
    assert f"pid {killed} on {socket.gethostname()}) is no longer running" in result.output
    assert "next: data" in result.output
    info = json.loads(CliRunner().invoke(cli, ["status", str(run_dir), "--json"]).output)["pipeline"]
    assert info["stages"]["data"]["status"] == "interrupted" and info["stages"]["data"]["recorded_status"] == "running"
    (tmp_path / "release").write_text("go")
    again = _start(tmp_path, run_dir)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0, out
    assert f"took over the lock of a run that ended without releasing it (pid {killed} on" in out


def test_status_says_missing_when_a_done_stage_lost_its_checkpoint(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run_pipeline(smoke(), run, Options(echo=False, stages=("sft",)), launch=FakeFrameworks(run.path)) == 0
    checkpoint = Path(run.load()["stages"]["sft"]["artifacts"]["checkpoint"]["path"])
    for f in checkpoint.iterdir():
        f.unlink()
    checkpoint.rmdir()
    result = CliRunner().invoke(cli, ["status", str(run.path)])
    assert result.exit_code == 0, result.output
    assert "sft    missing" in result.output and f"checkpoint {checkpoint} is missing" in result.output
    assert "the manifest says done" in result.output and "next: sft" in result.output


def test_a_refused_launch_does_not_leave_the_stage_running(tmp_path):
    run = RunDir(tmp_path / "run")

    def refused(plan, log_path, echo=True):
        raise MissingEnvError("the plan needs ${NOT_SET_ANYWHERE}, which is not set")

    with pytest.raises(MissingEnvError):
        run_pipeline(smoke(), run, Options(echo=False, stages=("sft",)), launch=refused)
    record = run.load()["stages"]["sft"]
    assert record["status"] == "failed" and "NOT_SET_ANYWHERE" in record["error"]
    result = CliRunner().invoke(cli, ["status", str(run.path)])
    assert "sft    failed" in result.output and "next: sft" in result.output
