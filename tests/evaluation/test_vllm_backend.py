"""The vLLM backend on the tiny model. Runs where a CUDA GPU and vLLM exist; elsewhere it is skipped with the reason.

vLLM cannot run on CPU, so on a CPU machine this is a skip, never a mock. Where a GPU exists, a vLLM that fails to
import is a FAILURE (a broken install must not pass as a skip).
"""

from __future__ import annotations

import importlib
import json

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.gpu]


def _require_gpu_and_vllm() -> None:
    try:
        import torch
        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    if not gpu:
        pytest.skip("no CUDA GPU on this machine: the vLLM backend needs one (runs on GPU CI / a GPU box)")
    try:
        importlib.import_module("vllm")
    except Exception as exc:  # noqa: BLE001 - any import failure on a GPU machine is a broken install
        pytest.fail(f"a CUDA GPU is present but vLLM does not import ({type(exc).__name__}: {exc}); "
                    f"install the 'gpu' extra")


def test_vllm_backend_end_to_end(tiny, tmp_path):
    _require_gpu_and_vllm()
    from transformers import AutoProcessor

    from fakehr_orchestra.evaluation.infer import from_recipe, run_inference
    from fakehr_orchestra.evaluation.infer.prompting import load_image
    from fakehr_orchestra.evaluation.infer.vllm_backend import VllmBackend
    from fakehr_orchestra.evaluation.metrics import score_file
    from fakehr_orchestra.evaluation.reader import read_eval_set
    from fakehr_orchestra.recipe import load_recipe

    recipe = load_recipe(ROOT / "recipes" / "fake_hr1.yaml", ("eval.gpu_memory_utilization=0.3",), "smoke")
    settings = from_recipe(recipe, tiny["model"], "vllm")
    items = read_eval_set(tiny["eval"])
    backend = VllmBackend(settings)

    # vLLM sees exactly the prompt tokens the transformers processor builds (same text, image not resized again)
    processor = AutoProcessor.from_pretrained(tiny["model"])
    image = load_image(items[0].file_path, settings)
    ours = processor(text=[backend.prompt], images=[image], return_tensors="pt", do_resize=False)
    [out] = backend.llm.generate([backend._request(backend.prompt, image)], backend.sampling, use_tqdm=False)
    assert list(out.prompt_token_ids) == ours["input_ids"][0].tolist()

    pred = tmp_path / "pred.jsonl"
    summary = run_inference(settings, items, pred, backend_factory=lambda s: backend)
    assert summary.written == len(items)
    rows = [json.loads(line) for line in pred.read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == sorted(i.key for i in items)
    assert all(r["finish_reason"] in ("stop", "length") and r["response_tokens"] >= 0 for r in rows)
    assert score_file(pred, samples=50)["overall"]["n"] == len(items)
