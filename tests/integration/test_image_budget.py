"""One image budget (`vision:`): the same image gives the same number of image tokens through ms-swift (the
rendered SFT plan's own options and env parsed by ms-swift's SftArguments, its template encoding a row), verl
(RLHFDataset on the parquet our data stage exports, the real processor) and our eval (the same resize ms-swift
applies), at two max_pixels settings, and the two settings differ (the budget is really applied); and preflight's
count for that image (data_checks, the family's factor) is the same. For each model family with a tiny fixture:
Qwen2.5-VL (28 x 28 pixels a token) and Qwen3-VL (32 x 32: ms-swift's qwen3_vl template, patch 16)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fakehr_orchestra.data.stage import prepare
from fakehr_orchestra.engines import render
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES, ROOT, framework_env, require_module

pytestmark = pytest.mark.integration
IMAGE_PAD = 151655
# (family, fixture, profile, pixels per token); both budgets below the tiny processors' own caps (224 x 224 and
# 256 x 256), so the recipe's budget rules
FAMILIES = (("qwen2_5_vl", "tiny", "smoke", 784), ("qwen3_vl", "tiny_qwen3vl", "smoke_qwen3vl", 1024))

SWIFT = r"""
import json, os, sys
from swift.arguments import SftArguments
from swift.utils import parse_args
options, env = json.loads(sys.argv[1]), json.loads(sys.argv[2])
os.environ.update(env)
args, rest = parse_args(SftArguments, options)
assert not rest, rest
template = args.get_template()
template.set_mode("train")
train, _ = args.load_dataset()
enc = template.encode(train[0])
print("RESULT" + json.dumps({"pads": enc["input_ids"].count(151655), "grid": enc["image_grid_thw"].tolist()}))
"""


def _recipe(tmp: Path, tiny: dict[str, str], budget: int, profile: str) -> Any:
    from PIL import Image

    image = tmp / "wide.png"
    if not image.exists():  # the train row's image, and another one for the (required) test split
        Image.effect_mandelbrot((300, 200), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(image)
        Image.effect_mandelbrot((90, 60), (-2, -1.2, 1, 1.2), 30).convert("RGB").save(tmp / "small.png")
        (tmp / "one.jsonl").write_text("".join(json.dumps({"file_path": str(tmp / name), "label": lab,
                                                           "split": split}) + "\n"
                                               for name, lab, split in (("wide.png", "fake", "train"),
                                                                        ("small.png", "real", "test"))))
    return load_recipe(RECIPES / "fake_hr1.yaml", [
        f"vision.max_pixels={budget}", f"data.sources=[{{name: one, kind: jsonl, path: {tmp / 'one.jsonl'}, "
        "label_convention: text}]", f"sft.output_dir={tmp / 'out'}",
        f"vars.fixtures={Path(tiny['model']).parent}"], profile=profile)


def _swift_tokens(recipe: Any, data: dict[str, str]) -> int:
    plan = render(recipe.with_section("sft", dataset=[data["sft"]]), "sft")
    env = {k: v for k, v in plan.env.items() if k in ("MAX_PIXELS", "MIN_PIXELS")}
    assert plan.options[plan.options.index("--max_pixels") + 1] == str(recipe.model.vision.max_pixels)
    proc = subprocess.run([sys.executable, "-c", SWIFT, json.dumps(plan.options), json.dumps(env)], cwd=ROOT,
                          env=framework_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1])["pads"]


def _verl_tokens(data: dict[str, str], model: str, tmp: Path) -> int:
    from omegaconf import OmegaConf
    from transformers import AutoProcessor
    from verl.utils.dataset.rl_dataset import RLHFDataset

    processor = AutoProcessor.from_pretrained(model)
    cfg = OmegaConf.create({"image_key": "images", "max_prompt_length": 4096, "filter_overlong_prompts": False,
                            "cache_dir": str(tmp)})
    ds = RLHFDataset(data_files=[data["parquet"]], tokenizer=processor.tokenizer, processor=processor, config=cfg)
    messages = ds[0]["raw_prompt"]
    images, _ = asyncio.run(RLHFDataset.process_vision_info(messages, image_patch_size=ds.image_patch_size,
                                                            config=cfg))
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[text], images=images, return_tensors="pt")["input_ids"][0].tolist().count(IMAGE_PAD)


def _eval_tokens(recipe: Any, model: str, image: str) -> int:
    from transformers import AutoProcessor

    from fakehr_orchestra.evaluation.infer import from_recipe
    from fakehr_orchestra.evaluation.infer.prompting import load_image, prompt_text

    settings = from_recipe(recipe, model, "transformers")
    processor = AutoProcessor.from_pretrained(model)
    enc = processor(text=[prompt_text(processor.tokenizer, settings)], images=[load_image(image, settings)],
                    return_tensors="pt", do_resize=False)
    return enc["input_ids"][0].tolist().count(IMAGE_PAD)


def _preflight_tokens(recipe: Any, image: str) -> int:
    from PIL import Image

    from fakehr_orchestra.preflight.crosschecks import family
    from fakehr_orchestra.preflight.data_checks import smart_resize_tokens

    class Ctx:  # what family() reads
        model = recipe.model
    with Image.open(image) as im:
        width, height = im.size
    return smart_resize_tokens(height, width, int(recipe.model.vision.max_pixels), family(Ctx).factor,
                               recipe.model.vision.min_pixels)


@pytest.mark.parametrize("family,fixture,profile,per_token", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_ms_swift_verl_and_eval_see_the_same_image_tokens(family: str, fixture: str, profile: str, per_token: int,
                                                         request: pytest.FixtureRequest, tmp_path: Path) -> None:
    require_module("swift")
    require_module("verl")
    tiny = request.getfixturevalue(fixture)
    budgets = (16 * per_token, 36 * per_token)
    counts = {}
    for budget in budgets:
        recipe = _recipe(tmp_path, tiny, budget, profile)
        assert recipe.model.model_family == family
        data = prepare(recipe.model, tmp_path / f"data{budget}", workers=1)
        counts[budget] = (_swift_tokens(recipe, data), _verl_tokens(data, tiny["model"], tmp_path),
                          _eval_tokens(recipe, tiny["model"], str(tmp_path / "wide.png")),
                          _preflight_tokens(recipe, str(tmp_path / "wide.png")))
    for budget, (swift, verl, ours, preflight) in counts.items():
        assert swift == verl == ours == preflight, counts
        assert swift <= budget // per_token + 1  # ms-swift rounds the rescaled sides: the budget is its --max_pixels
    assert counts[budgets[0]][0] < counts[budgets[1]][0], counts
