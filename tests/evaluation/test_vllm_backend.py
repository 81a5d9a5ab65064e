"""The vLLM backend on the tiny model: on a GPU with vLLM, on a CPU with vLLM's CPU build (what `make venv`
installs). A vLLM that fails to import is a failure in CI, never a skip or a mock.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, require_module

pytestmark = [pytest.mark.integration]


def _require_vllm() -> bool:
    """True on a CUDA GPU; False on a CPU (vLLM's CPU build). vLLM must import either way."""
    require_module("torch")
    import torch

    require_module("vllm")
    return bool(torch.cuda.is_available())


def test_vllm_backend_end_to_end(tiny, tmp_path):
    gpu = _require_vllm()
    from transformers import AutoProcessor

    from fakehr_orchestra.evaluation.infer import from_recipe, run_inference
    from fakehr_orchestra.evaluation.infer.prompting import load_image
    from fakehr_orchestra.evaluation.infer.vllm_backend import VllmBackend
    from fakehr_orchestra.evaluation.metrics import score_file
    from fakehr_orchestra.evaluation.reader import read_eval_set
    from fakehr_orchestra.recipe import load_recipe

    # on a GPU a share of its memory; on a CPU the smoke profile's vLLM sizes (a share of RAM, no compilation)
    recipe = load_recipe(ROOT / "recipes" / "fake_hr1.yaml", ("eval.gpu_memory_utilization=0.3",) if gpu else (),
                         "smoke")
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
