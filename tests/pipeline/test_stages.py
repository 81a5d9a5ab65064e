"""The stage registry: one record per stage, the one list the rest of the package takes its stages from."""

from __future__ import annotations

from pathlib import Path

from fakehr_orchestra import engines, preflight
from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.pipeline import produced
from fakehr_orchestra.pipeline.rundir import RunDir
from fakehr_orchestra.pipeline.stages import (
    ALL,
    PLACEHOLDER,
    PREFLIGHT,
    REGISTRY,
    STAGES,
    TRAINING,
    StagePlan,
    Step,
    how_to_provide,
    missing_inputs,
)
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.rehearsal import rehearse
from tests.conftest import RECIPES


def test_the_pipeline_order_and_the_lists_derived_from_it() -> None:
    assert STAGES == ("data", "sft", "grpo", "merge", "eval")
    assert ALL == "data,sft,grpo,merge,eval"
    assert TRAINING == ("sft", "grpo")
    assert PREFLIGHT == ("data", "sft", "grpo")
    assert all(name == stage.name for name, stage in REGISTRY.items())


def test_every_module_takes_its_stages_from_the_registry() -> None:
    from fakehr_orchestra.cli import run

    assert preflight.STAGES == PREFLIGHT and preflight.TRAINING == TRAINING
    assert rehearse.__defaults__ is not None and rehearse.__defaults__[0] == PREFLIGHT
    assert run.ALL == ALL
    # engines/ sits below pipeline/ and keeps its own renderers: one for each training stage, no other
    assert tuple(engines.RENDERERS) == TRAINING


def test_a_missing_input_is_named_with_how_to_provide_it() -> None:
    plan = Plan(stage="grpo", argv=["x", "<sft.checkpoint>", "--data=<data.sft>", "<data.eval>", "<merge.model>",
                                    "<notastage.x>"])
    sp = StagePlan("grpo", [Step("grpo", plan)])
    assert missing_inputs(sp) == ["data.eval", "data.sft", "merge.model", "sft.checkpoint"]
    assert how_to_provide("sft.checkpoint") == "run the sft stage in this run dir first (same --run-dir, --resume)"
    assert how_to_provide("data.eval").startswith("set eval.dataset to an eval jsonl")
    assert how_to_provide("merge.model") == "run the merge stage in this run dir"  # no hint of its own: the default
    assert PLACEHOLDER.pattern == r"<((?:data|sft|grpo|merge|eval)\.[a-z_]+)>"


def test_only_training_stages_resume_and_only_from_an_unfinished_attempt(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    checkpoint = run.stage_dir("sft") / "v0-x" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text('{"global_step": 2}')
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", ["grpo.engine=swift"], profile="smoke")
    for status in ("running", "failed", "interrupted"):
        assert REGISTRY["sft"].resume_from(status, run, recipe) == {"sft": str(checkpoint)}
    for status in ("pending", "done", "skipped", None):
        assert REGISTRY["sft"].resume_from(status, run, recipe) == {}
    assert REGISTRY["grpo"].resume_from("interrupted", run, recipe) == {}  # no GRPO checkpoint yet
    assert [name for name, stage in REGISTRY.items() if stage.resume_point] == list(TRAINING)


def test_the_runner_asks_the_registry_for_what_a_stage_produced() -> None:
    assert REGISTRY["merge"].collect is produced.collect_merge
    assert REGISTRY["data"].sources is produced.data_sources
    assert [name for name, stage in REGISTRY.items() if stage.node_options] == ["sft"]
    assert produced.data_sources(load_recipe(RECIPES / "fake_hr1.yaml", profile="smoke"), {}) is None
