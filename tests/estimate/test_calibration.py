"""The calibration harness (benchmarks/calibrate_memory.py) on CPU: the activation formulas against what autograd
really saves in transformers' Qwen2.5-VL / Qwen3-VL / Qwen3-VL-MoE layers (exact to 1%), and one training step of
the tiny model next to its estimate. The GPU calibration (max_memory_allocated at real sizes) needs a CUDA device;
docs/estimate.md records where it stands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_module

pytestmark = pytest.mark.integration
HARNESS = str(ROOT / "benchmarks" / "calibrate_memory.py")


def _rows(*args: str) -> list[dict]:
    proc = subprocess.run([sys.executable, HARNESS, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_activation_formulas_match_what_autograd_saves():
    require_module("torch")
    require_module("transformers")
    rows = _rows("--formulas")
    assert {r["family"] for r in rows} == {"qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"} and len(rows) == 12
    for r in rows:
        assert abs(r["formula_over_measured"] - 1) < 0.01, r


def test_tiny_training_step_runs_next_to_its_estimate(tiny):
    rows = _rows("--model-size", "tiny", "--device", "cpu", "--seq", "128", "--gc", "both",
                 "--tiny-dir", tiny["model"])
    assert [r["gradient_checkpointing"] for r in rows] == [True, False]
    for r in rows:
        assert r["status"] == "ok" and r["measured_gib"] is None  # CPU: nothing to measure, the path is proven
        assert r["estimate_verdict"] == "fits" and r["estimated_allocated_gib"] > 0
