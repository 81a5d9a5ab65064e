"""The Fake-HR1 smoke pipeline on the tiny Qwen3-VL (profile smoke_qwen3vl) with the real frameworks on CPU: data ->
real `swift sft` (--model_type qwen3_vl --template qwen3_vl, from the family) -> real ms-swift GRPO -> eval -> report.
Kept short: one step each, four new tokens at eval, preflight skipped (test_family_render / test_image_budget check
it on this profile)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, framework_env, require_executable, require_module

pytestmark = pytest.mark.integration
SHORT = ["sft.args.max_steps=1", "sft.args.save_steps=1", "grpo.swift_args.max_steps=1",
         "grpo.swift_args.save_steps=1", "grpo.swift_args.max_completion_length=4", "eval.max_new_tokens=4",
         "eval.bootstrap_samples=10"]


def test_fake_hr1_smoke_pipeline_on_tiny_qwen3_vl(tiny_qwen3vl: dict[str, str], tmp_path: Path) -> None:
    require_module("swift")
    require_executable("swift")
    run_dir = tmp_path / "run"
    fixtures = str(Path(tiny_qwen3vl["model"]).parent)
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "run", str(RECIPES / "fake_hr1.yaml"), "-p",
                           "smoke_qwen3vl", f"vars.fixtures={fixtures}", *SHORT, "--run-dir", str(run_dir),
                           "--skip-validate"], cwd=ROOT, env=framework_env(), capture_output=True, text=True,
                          timeout=1500)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stages = manifest["stages"]
    assert [stages[s]["status"] for s in ("data", "sft", "grpo", "merge", "eval")] == \
        ["done", "done", "done", "skipped", "done"]
    for stage in ("sft", "grpo"):
        argv = json.loads((run_dir / "plans" / f"{stage}.json").read_text())["steps"][0]["plan"]["argv"]
        assert argv[argv.index("--model_type") + 1] == "qwen3_vl" and argv[argv.index("--template") + 1] == "qwen3_vl"
    checkpoint = Path(stages["grpo"]["artifacts"]["checkpoint"]["path"])
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "qwen3_vl"
    report = Path(stages["eval"]["artifacts"]["report"]["path"])
    assert "| metric | sft | grpo |" in (report / "report.md").read_text()
