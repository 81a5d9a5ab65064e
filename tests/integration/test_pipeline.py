"""The whole smoke pipeline with the real frameworks on CPU (data -> swift sft -> swift GRPO -> eval -> report),
interrupted during SFT with Ctrl-C and resumed: the run completes, finished stages are not rerun, the manifest is
complete, and a changed recipe is refused on resume."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, framework_env, require_executable, require_module

pytestmark = pytest.mark.integration
# the wiring, not the learning (tests/integration/test_demo.py trains): 2 steps per stage, a checkpoint each
SHORT = ["sft.args.max_steps=2", "sft.args.save_steps=2", "sft.args.logging_steps=1",
         "grpo.swift_args.max_steps=2", "grpo.swift_args.save_steps=2"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fakehr_orchestra", *args]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_smoke_pipeline_survives_ctrl_c_during_sft_and_resumes(tiny, tmp_path):
    require_module("swift")
    require_executable("swift")
    fixtures = str(Path(tiny["model"]).parent)
    run_dir = tmp_path / "run"
    base = ["run", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", f"vars.fixtures={fixtures}",
            "--run-dir", str(run_dir), *SHORT]
    env = framework_env()
    first = subprocess.Popen(_cli(*base), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    sft_log = run_dir / "logs" / "sft.log"
    _wait_for(lambda: sft_log.exists() and "swift" in sft_log.read_text(errors="replace")
              and len(sft_log.read_text(errors="replace")) > 2000, 300, "ms-swift to start training")
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=120)
    assert first.returncode != 0, out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["data"]["status"] == "done"
    assert manifest["stages"]["sft"]["status"] in ("interrupted", "failed"), manifest["stages"]["sft"]
    data_done = manifest["stages"]["data"]["ended"]

    second = subprocess.run(_cli(*base, "--resume"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-5000:]
    assert "[data] done earlier, outputs verified: not run again" in log
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["data"]["ended"] == data_done
    stages = manifest["stages"]
    assert [stages[s]["status"] for s in ("data", "sft", "grpo", "merge", "eval")] == \
        ["done", "done", "done", "skipped", "done"]
    assert stages["sft"]["attempts"] == 2
    grpo_plan = json.loads((run_dir / "plans" / "grpo.json").read_text())["steps"][0]["plan"]["argv"]
    assert grpo_plan[grpo_plan.index("--model") + 1] == stages["sft"]["artifacts"]["checkpoint"]["path"]
    # ms-swift's GRPO applies the Fake-HR1 group bonus (rewards/hybrid_manager.py), one line per reward call
    grpo_log = (run_dir / "logs" / "grpo.log").read_text(errors="replace")
    assert re.search(r"\[fakehr reward\] batch 1: hybrid bonus on \d+ of 4 samples", grpo_log), grpo_log[-3000:]
    report = Path(stages["eval"]["artifacts"]["report"]["path"])
    text = (report / "report.md").read_text()
    assert "| metric | sft | grpo |" in text
    assert manifest["versions"]["swift"] and manifest["git"]

    status = subprocess.run(_cli("status", str(run_dir)), cwd=ROOT, env=env, capture_output=True, text=True)
    assert status.returncode == 0 and "complete" in status.stdout, status.stdout + status.stderr

    changed = subprocess.run(_cli(*base, "--resume", "sft.args.learning_rate=1"), cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert changed.returncode == 2 and "recipe changed" in changed.stderr, changed.stderr
