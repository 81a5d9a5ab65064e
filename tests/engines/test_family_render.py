"""The model family drives ms-swift's --model_type / --template (render), is read from a model's config.json when
the recipe leaves it null (load), and validate checks it against the model on disk and ms-swift's own registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.recipe.errors import RecipeError
from tests.conftest import RECIPES, require_module

MOE = ["model_family=qwen3_vl_moe", "sft.model=./Qwen3-VL-30B-A3B-Instruct"]


def _flag(plan, name: str) -> str:
    return plan.argv[plan.argv.index(name) + 1]


def test_fake_hr1_with_qwen3_vl_30b_a3b_renders_moe_model_type_and_qwen3_template() -> None:
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", MOE)
    sft = render(recipe, "sft")
    assert (_flag(sft, "--model"), _flag(sft, "--model_type"), _flag(sft, "--template")) == \
        ("./Qwen3-VL-30B-A3B-Instruct", "qwen3_vl_moe", "qwen3_vl")
    assert sft.origin("--model_type", "") == "model_family" and sft.origin("--template", "") == "model_family"
    grpo = render(load_recipe(RECIPES / "fake_hr1.yaml", MOE + ["grpo.engine=swift"]), "grpo")  # ms-swift's GRPO
    assert (_flag(grpo, "--model_type"), _flag(grpo, "--template")) == ("qwen3_vl_moe", "qwen3_vl")
    shipped = render(load_recipe(RECIPES / "fake_hr1.yaml"), "sft")
    assert (_flag(shipped, "--model_type"), _flag(shipped, "--template")) == ("qwen2_5_vl", "qwen2_5_vl")


def test_a_stage_arg_wins_over_the_family_and_an_unknown_family_is_a_recipe_error() -> None:
    plan = render(load_recipe(RECIPES / "fakevlm_r1.yaml", ["+sft.args.template=qwen2_5_vl_custom"]), "sft")
    assert _flag(plan, "--template") == "qwen2_5_vl_custom" and plan.origin("--template", "") == "sft.args.template"
    with pytest.raises(RecipeError, match="did you mean 'qwen3_vl_moe'"):
        load_recipe(RECIPES / "fake_hr1.yaml", ["model_family=qwen3_vl_mo"])


def _model_dir(tmp_path: Path, model_type: str) -> Path:
    folder = tmp_path / model_type
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return folder


def test_a_null_family_is_read_from_the_model_on_disk_and_shown_in_the_resolved_recipe(tmp_path: Path) -> None:
    model = _model_dir(tmp_path, "qwen3_vl")
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", ["model_family=null", f"sft.model={model}"])
    assert recipe.model.model_family == "qwen3_vl"
    assert recipe.model.model_dump()["model_family"] == "qwen3_vl"  # what `recipes show` / recipe.resolved.yaml dump
    assert _flag(render(recipe, "sft"), "--model_type") == "qwen3_vl"
    unknown = load_recipe(RECIPES / "fake_hr1.yaml", ["model_family=null"])  # nothing on disk: left to ms-swift
    assert unknown.model.model_family is None and "--model_type" not in render(unknown, "sft").argv


def test_validate_reports_a_declared_family_that_disagrees_with_the_model_and_checks_ms_swifts_registry(
        tmp_path: Path) -> None:
    require_module("swift")
    from fakehr_orchestra.preflight import validate

    model = _model_dir(tmp_path, "qwen3_vl_moe")
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", [f"sft.model={model}", "+sft.args.template=qwen2_5_vl"])
    found = [f for f in validate(recipe, ("sft",), verl_own_checks=False).findings if f.check == "family"]
    messages = "\n".join(f"{f.key}: {f.message}" for f in found)
    assert "model_family is qwen2_5_vl but sft.model" in messages and "a qwen3_vl_moe model" in messages
    assert "sized in 28 x 28 tokens instead of 32 x 32" in messages
    # the stage's template against ms-swift 4.6's own registry (ModelMeta.candidate_templates of qwen2_5_vl: fine)
    assert not any("registers for model type" in f.message for f in found)
    bad = load_recipe(RECIPES / "fake_hr1.yaml", MOE + ["+sft.args.template=qwen2_5_vl"])
    found = [f for f in validate(bad, ("sft",), verl_own_checks=False).findings if f.check == "family"]
    assert any(f.key == "sft.args.template" and "not a template ms-swift" in f.message
               and "for model type qwen3_vl_moe (its: qwen3_vl)" in f.message for f in found), found
    ok = load_recipe(RECIPES / "fake_hr1.yaml", MOE)
    assert not [f for f in validate(ok, ("sft",), verl_own_checks=False).findings if f.check == "family"]
