"""The seed's evaluation step: `eval infer` zero-shot on a downloaded Qwen3-VL (the seed runs Qwen3-VL-30B-A3B-Instruct)
with the seed's jsonl ({"file_path", "label"}), under the Fake-HR1 recipe (which declares Qwen2.5-VL: eval reads the
evaluated model's own config.json). The tiny Qwen3-VL and Qwen3-VL-MoE stand in for the downloads.

transformers backend: real, on CPU. vLLM backend: vLLM cannot run on CPU (and this machine has no GPU), so its test
replaces the `vllm` module with a recorder and checks what the backend would hand vLLM (images sized in 32 x 32
tokens, do_resize off); the real vLLM run is tests/evaluation/test_vllm_backend.py on a GPU machine."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from tests.conftest import RECIPES, require_module

pytestmark = pytest.mark.integration
RECIPE = str(RECIPES / "fake_hr1.yaml")
# the recipe's eval settings made CPU-sized; the family is not among them
CPU = ["eval.max_new_tokens=4", "eval.dtype=float32", "eval.batch_size=2", "eval.bootstrap_samples=10"]


def _seed_jsonl(tiny: dict[str, str], tmp: Path) -> Path:
    """Two rows in the seed's format, image paths relative to the jsonl (as the seed's `image_0.jpg`)."""
    rows = [json.loads(line) for line in Path(tiny["eval"]).read_text().splitlines()[:2]]
    out = tmp / "seed"
    out.mkdir()
    lines = []
    for i, row in enumerate(rows):
        name = f"image_{i}{Path(row['file_path']).suffix}"
        shutil.copy(row["file_path"], out / name)
        lines.append(json.dumps({"file_path": name, "label": row["label"]}))
    (out / "eva_total_ood_test.jsonl").write_text("\n".join(lines) + "\n")
    return out / "eva_total_ood_test.jsonl"


@pytest.fixture(scope="module")
def moe_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_module("transformers")
    from fakehr_orchestra.tinyworld.tiny_model import build_model

    return str(build_model(tmp_path_factory.mktemp("moe") / "model", family="qwen3_vl_moe"))


@pytest.mark.parametrize("which", ["qwen3_vl", "qwen3_vl_moe"])
def test_eval_infer_zero_shot_on_qwen3_vl_with_the_seeds_jsonl(tiny_qwen3vl: dict[str, str], moe_model: str,
                                                              which: str, tmp_path: Path) -> None:
    model = tiny_qwen3vl["model"] if which == "qwen3_vl" else moe_model
    data = _seed_jsonl(tiny_qwen3vl, tmp_path)
    out = tmp_path / "qwen25_vl_infer.jsonl"
    result = CliRunner().invoke(cli, ["eval", "infer", RECIPE, *CPU, "--model", model, "--data", str(data),
                                      "--out", str(out), "--backend", "transformers", "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["label"] in ("real", "fake") for r in rows), rows
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    assert meta["settings"]["family"] == which  # from the model's config.json, not the recipe's qwen2_5_vl


def test_vllm_backend_hands_qwen3_images_at_the_familys_size(tiny_qwen3vl: dict[str, str], monkeypatch) -> None:
    """Stand-in for vLLM (cannot run on CPU): what the backend passes it for a Qwen3-VL model."""
    calls: dict = {}

    class LLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs

        def generate(self, requests, sampling, use_tqdm=False):
            calls.setdefault("requests", []).extend(requests)
            done = types.SimpleNamespace(text="<answer>fake</answer>", token_ids=[1], finish_reason="stop")
            return [types.SimpleNamespace(outputs=[done]) for _ in requests]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw))
    from fakehr_orchestra.evaluation.infer import from_recipe
    from fakehr_orchestra.evaluation.infer.vllm_backend import VllmBackend
    from fakehr_orchestra.evaluation.reader import read_eval_set
    from fakehr_orchestra.recipe import load_recipe

    recipe = load_recipe(RECIPE, ["eval.answer_scores=false"])
    settings = from_recipe(recipe, tiny_qwen3vl["model"], "vllm")
    assert settings.family == "qwen3_vl"
    backend = VllmBackend(settings)
    items = read_eval_set(tiny_qwen3vl["eval"], "text")[:2]
    backend.generate(items)
    assert calls["init"]["mm_processor_kwargs"] == {"do_resize": False}
    assert backend.patch_size == 16
    for req in calls["requests"]:
        image = req["multi_modal_data"]["image"]
        assert image.width % 32 == 0 and image.height % 32 == 0, image.size
        assert "<|vision_start|><|image_pad|><|vision_end|>" in req["prompt"]
