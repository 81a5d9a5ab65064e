"""The rehearsal's supervisor: every step under its own timeout, a hung step stopped and named with its key, a crash
reported with the log's last words, a failed step's key and fix passed on (with a stand-in child, tests/rehearsal/
fake_child.py, speaking the real protocol)."""

from __future__ import annotations

import time
from pathlib import Path

from fakehr_orchestra.rehearsal.supervise import run_child
from tests.conftest import ROOT

MODULE = "tests.rehearsal.fake_child"


def _run(tmp_path: Path, *steps: str) -> list:
    return run_child("grpo", MODULE, {"steps": list(steps)}, tmp_path / "child.log", str(ROOT))


def test_steps_report_in_order_with_their_outcome(tmp_path: Path) -> None:
    results = _run(tmp_path, "ok", "fail", "ok")
    assert [(r.step, r.status) for r in results] == [("step0-ok", "ok"), ("step1-fail", "failed"), ("step2-ok", "ok")]
    assert (results[1].key, results[1].fix, results[1].detail) == ("grpo.some.key", "mend it", "it broke")


def test_a_hung_step_is_stopped_at_its_timeout_and_named(tmp_path: Path) -> None:
    start = time.monotonic()
    results = _run(tmp_path, "ok", "hang", "ok")
    assert time.monotonic() - start < 30
    assert [(r.step, r.status) for r in results] == [("step0-ok", "ok"), ("step1-hang", "failed")]
    assert "did not finish within 2 s" in results[1].detail and results[1].key == "grpo.default"


def test_a_child_that_dies_in_a_step_is_a_failure_with_its_last_words(tmp_path: Path) -> None:
    results = _run(tmp_path, "ok", "crash")
    assert results[-1].status == "failed" and results[-1].step == "step1-crash"
    assert "exited with 3" in results[-1].detail and "last words" in results[-1].detail
