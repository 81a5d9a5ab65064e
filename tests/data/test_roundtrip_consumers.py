"""Round trips through the REAL consumers on the tiny fixture: ms-swift's dataset loader + qwen2_5_vl template
encode our SFT / GRPO jsonl with the tiny processor, verl 0.9's RLHFDataset loads our parquet (paths and embedded
bytes) and the processor tokenises it with the right number of image placeholders, and the eval reader reads the
eval export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fakehr_orchestra.answers import parse_answer
from fakehr_orchestra.data.export.evaljsonl import read_eval
from fakehr_orchestra.data.stage import prepare
from fakehr_orchestra.prompts import effective
from fakehr_orchestra.recipe import load_recipe

from ..conftest import RECIPES, require_module

pytestmark = pytest.mark.integration
IMAGE_PAD = 151655  # Qwen's <|image_pad|>, hard-coded by ms-swift's template


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny: dict[str, str]) -> dict[str, Any]:
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", ["data.images=bytes"], profile="smoke")
    out = tmp_path_factory.mktemp("export")
    arts = prepare(recipe.model, out, workers=2)
    return {"recipe": recipe.model, "arts": arts, "tiny": tiny}


def _merge_factor(proc: Any) -> int:
    return proc.image_processor.merge_size ** 2


SWIFT_CHECK = r"""
import json, sys
from swift.dataset import load_dataset
from swift.model import get_processor
from swift.template import get_template
model_dir, sft, grpo, system, max_pixels = sys.argv[1:6]
proc = get_processor(model_dir, model_type="qwen2_5_vl")
template = get_template(proc, default_system=system, template_type="qwen2_5_vl", max_pixels=int(max_pixels))
template.set_mode("train")
tok = template.tokenizer
merge = proc.image_processor.merge_size ** 2
train, _ = load_dataset([sft], split_dataset_ratio=0.0, num_proc=1)
out = {"sft": []}
for i in range(len(train)):
    enc = template.encode(train[i])
    out["sft"].append({"text": tok.decode(enc["input_ids"]), "pads": enc["input_ids"].count(151655),
                       "expected_pads": int(enc["image_grid_thw"].prod()) // merge,
                       "target": tok.decode([t for t in enc["labels"] if t != -100])})
rows, _ = load_dataset([grpo], split_dataset_ratio=0.0, num_proc=1, remove_unused_columns=False)
template.set_mode("pt")
enc = template.encode(rows[0])
out["grpo"] = {"n": len(rows), "solution": rows[0]["solution"], "roles": [m["role"] for m in rows[0]["messages"]],
               "pads": enc["input_ids"].count(151655)}
print("RESULT" + json.dumps(out))
"""


def test_swift_loads_and_encodes_our_sft_and_grpo_jsonl(exported: dict[str, Any]) -> None:
    """ms-swift runs in its own process, as in training (importing it next to verl in one process deadlocks)."""
    require_module("swift")
    import subprocess
    import sys

    from ..conftest import framework_env

    model = exported["recipe"]
    flag_system = effective(model.sft.args["system"])  # what `swift sft --system ...` ends up with
    proc = subprocess.run([sys.executable, "-c", SWIFT_CHECK, exported["tiny"]["model"], exported["arts"]["sft"],
                           exported["arts"]["grpo"], flag_system, str(model.vision.max_pixels)],
                          capture_output=True, text=True, env=framework_env(), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    rows = [json.loads(line) for line in Path(exported["arts"]["sft"]).read_text().splitlines()]
    assert len(out["sft"]) == len(rows) > 0
    for enc, row in zip(out["sft"], rows):
        assert enc["text"].count(flag_system) == 1 and enc["text"].count("<|im_start|>system") == 1
        assert enc["pads"] == enc["expected_pads"] > 0
        assert enc["target"] == row["messages"][-1]["content"] + "<|im_end|>\n"
        assert parse_answer(row["messages"][-1]["content"], "fake_hr1").well_formed
    assert any("\n</think>\n\n" in r["messages"][-1]["content"] and "<think>\n\n" not in r["messages"][-1]["content"]
               for r in rows)  # some think-form targets (FakeClue explanations) went through the template
    grpo = out["grpo"]
    assert grpo["n"] == sum(1 for _ in open(exported["arts"]["grpo"]))
    assert grpo["solution"] in ("real", "fake") and "assistant" not in grpo["roles"] and grpo["pads"] > 0


def test_verl_rlhf_dataset_loads_our_parquet(exported: dict[str, Any]) -> None:
    require_module("verl")
    from omegaconf import OmegaConf
    from transformers import AutoProcessor
    from verl.utils.dataset.rl_dataset import RLHFDataset

    proc = AutoProcessor.from_pretrained(exported["tiny"]["model"])
    # workers 0: `datasets` filters in-process (1 still forks a pool, which deadlocks once torch threads exist)
    cfg = OmegaConf.create({"image_key": "images", "prompt_key": "prompt", "max_prompt_length": 1024,
                            "filter_overlong_prompts": True, "filter_overlong_prompts_workers": 0,
                            "truncation": "error", "cache_dir": str(Path(exported["arts"]["parquet"]).parent)})
    ds = RLHFDataset(data_files=[exported["arts"]["parquet"]], tokenizer=proc.tokenizer, processor=proc, config=cfg)
    n_rows = sum(1 for _ in open(exported["arts"]["grpo"]))
    assert len(ds) == n_rows  # nothing filtered as overlong or broken
    system = effective(exported["recipe"].prompt.system)
    for i in range(len(ds)):
        item = ds[i]
        msgs = item["raw_prompt"]
        assert msgs[0]["role"] == "system" and msgs[0]["content"][0]["text"] == system
        images, _ = asyncio.run(RLHFDataset.process_vision_info(msgs, image_patch_size=14, config=cfg))
        assert len(images) == 1 and images[0].size[0] > 0  # decoded from the embedded bytes
        text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        inputs = proc(text=[text], images=images, return_tensors="pt")
        ids = inputs["input_ids"][0].tolist()
        assert ids.count(IMAGE_PAD) == int(inputs["image_grid_thw"].prod()) // _merge_factor(proc)
        assert item["reward_model"]["ground_truth"] in ("real", "fake")
        assert item["extra_info"]["answer_format"] == "fake_hr1"
        # what the reward plugins read: the split (the hybrid manager does not wait on validation groups) and the
        # image (the FakeVLM-R1 critic looks at it)
        assert item["extra_info"]["split"] in ("train", "test") and Path(item["extra_info"]["image"]).is_file()


def test_verl_reads_path_images_too(tmp_path: Path, tiny: dict[str, str]) -> None:
    require_module("verl")
    from omegaconf import OmegaConf
    from transformers import AutoProcessor
    from verl.utils.dataset.rl_dataset import RLHFDataset

    arts = prepare(load_recipe(RECIPES / "fake_hr1.yaml", profile="smoke").model, tmp_path, workers=1)
    proc = AutoProcessor.from_pretrained(tiny["model"])
    cfg = OmegaConf.create({"image_key": "images", "max_prompt_length": 1024, "filter_overlong_prompts": False,
                            "cache_dir": str(tmp_path)})
    ds = RLHFDataset(data_files=[arts["parquet"]], tokenizer=proc.tokenizer, processor=proc, config=cfg)
    msgs = ds[0]["raw_prompt"]
    images, _ = asyncio.run(RLHFDataset.process_vision_info(msgs, image_patch_size=14, config=cfg))
    assert len(images) == 1


def test_eval_reader_reads_our_eval_export(exported: dict[str, Any]) -> None:
    rows = list(read_eval(exported["arts"]["eval"]))
    assert rows and all(Path(r["file_path"]).exists() and r["label"] in ("real", "fake") for r in rows)
    assert {r["category"] for r in rows if r["source"] == "genimage"} == {"stable_diffusion_v_1_4", "BigGAN"}
