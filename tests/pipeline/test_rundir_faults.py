"""Issue 19 item 12: a damaged manifest.json, or a disk that fills while it is written, is a clear message with a
way to recover and a consistent exit status (2: the run dir's state is damaged; 1: the environment failed), never a
traceback. The stand-in launcher of test_runner writes what each framework would (no framework runs here)."""

from __future__ import annotations

import errno
import json
import os

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.pipeline import runner
from fakehr_orchestra.pipeline.rundir import BACKUP, RunDir
from fakehr_orchestra.pipeline.runner import Options, run_pipeline
from tests.conftest import RECIPES
from tests.pipeline.test_runner import FakeFrameworks, smoke


def _run_dir(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run_pipeline(smoke(), run, Options(echo=False, stages=("data",)), launch=FakeFrameworks(run.path)) == 0
    return run


def _resume(run, *extra):
    return CliRunner().invoke(cli, ["run", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--run-dir", str(run.path),
                                    "--resume", "--skip-validate", "--stages", "data", *extra])


def _clean_exit(result, code):
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "garbage": lambda text: b"\x00\xff\xfe garbage \x9c".decode("latin-1"),
    "list": lambda text: "[]",
    "empty-object": lambda text: "{}",
    "empty": lambda text: "",
    "bad-status": lambda text: text.replace('"done"', '"finished"'),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_manifest_is_a_clear_error_with_a_recovery_hint(tmp_path, damage):
    run = _run_dir(tmp_path)
    good = run.manifest_path.read_text()
    raw = DAMAGE[damage](good)
    run.manifest_path.write_bytes(raw.encode("latin-1") if damage == "garbage" else raw.encode())
    for result in (CliRunner().invoke(cli, ["status", str(run.path)]), _resume(run)):
        _clean_exit(result, 2)
        assert f"{run.manifest_path}" in result.output
        assert f"cp {run.path / BACKUP} {run.manifest_path}" in result.output  # the intact copy to restore
    # following the hint restores the run
    os.replace(run.path / BACKUP, run.manifest_path)
    result = CliRunner().invoke(cli, ["status", str(run.path)])
    _clean_exit(result, 0)
    assert "data   done" in result.output


def test_without_an_intact_copy_the_hint_says_to_start_a_new_run_dir(tmp_path):
    run = _run_dir(tmp_path)
    run.manifest_path.write_text("[]")
    (run.path / BACKUP).write_text('{"recipe": ')
    result = CliRunner().invoke(cli, ["status", str(run.path), "--json"])
    _clean_exit(result, 2)
    assert "holds a JSON list" in result.output and "new --run-dir" in result.output


def test_a_full_disk_while_writing_the_manifest_keeps_the_last_good_one(tmp_path, monkeypatch):
    """ENOSPC is injected into the fsync of the atomic write (a real full disk needs a mount this test cannot make)."""
    run = _run_dir(tmp_path)
    before = run.manifest_path.read_text()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    result = _resume(run, "--force", "data.split.seed=9")
    monkeypatch.setattr(os, "fsync", real_fsync)
    _clean_exit(result, 1)
    assert "No space left on device" in result.output and "the disk is full" in result.output
    assert "--resume" in result.output
    assert run.manifest_path.read_text() == before  # untouched, valid
    assert json.loads(before) == run.load()
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]  # no half-written temp files left


def test_a_full_disk_after_a_stage_ran_is_exit_1_not_a_traceback(tmp_path, monkeypatch):
    run = _run_dir(tmp_path)
    fake = FakeFrameworks(run.path)

    def launch_then_fill(plan, log_path, echo=True):
        code = fake(plan, log_path, echo)
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
        return code

    monkeypatch.setattr(runner, "_launcher", lambda *a: launch_then_fill)
    result = _resume(run, "--force", "data.split.seed=9")
    monkeypatch.undo()
    _clean_exit(result, 1)
    assert len(fake.calls) == 1 and "cannot write" in result.output
    assert run.load()["stages"]["data"]["status"] == "running"  # the last state that was written


def test_a_full_disk_under_a_running_step_is_exit_1_and_recorded(tmp_path, monkeypatch):
    """A full disk usually shows first in a step's log (run_plan's write): the stage is recorded failed, the CLI
    says what to do, exit 1."""
    run = _run_dir(tmp_path)

    def log_write_fails(plan, log_path, echo=True):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(log_path))

    monkeypatch.setattr(runner, "_launcher", lambda *a: log_write_fails)
    result = _resume(run, "--force", "data.split.seed=9")
    _clean_exit(result, 1)
    assert f"cannot write {run.path / 'logs' / 'data.log'}: No space left on device" in result.output
    record = run.load()["stages"]["data"]
    assert record["status"] == "failed" and "No space left" in record["error"]
