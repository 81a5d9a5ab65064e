"""The rendered SFT stage of fake_hr1.yaml, smoke profile, executed by the real ms-swift on the tiny model (CPU).

This proves the renderer's output is a command the installed ms-swift accepts and trains with, end to end."""

from __future__ import annotations

import re
import subprocess

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES, ROOT, framework_env, require_executable, require_module

pytestmark = pytest.mark.integration


def test_rendered_smoke_sft_trains_and_writes_a_loadable_checkpoint(tiny, tmp_path):
    require_module("swift")
    require_executable("swift")
    fixtures = tiny["model"].rsplit("/model", 1)[0]
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", [f"vars.fixtures={fixtures}", f"vars.out={tmp_path}"],
                         profile="smoke")
    plan = render(recipe, "sft")
    assert "--tuner_type" in plan.argv  # the installed ms-swift is 4.x: translated from the seed's --train_type
    env = framework_env(**plan.env)
    proc = subprocess.run(plan.argv, env=env, cwd=ROOT / plan.cwd, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    found = re.findall(r"last_model_checkpoint: (\S+)", log)
    assert found, log[-2000:]
    checkpoint = found[-1]
    assert checkpoint.startswith(str(tmp_path / "sft"))

    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(checkpoint)
    processor = AutoProcessor.from_pretrained(checkpoint)
    assert model.config.image_token_id == 151655
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == 151655
