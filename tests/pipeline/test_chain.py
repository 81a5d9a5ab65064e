"""pipeline.chain and pipeline.sweep_run: orchestration that raises (the CLI turns it into a message and an exit
code) and takes the loaded recipe and a preflight function."""

from __future__ import annotations

import pytest

from fakehr_orchestra.engines.plan import MissingEnvError
from fakehr_orchestra.pipeline import sweep_run
from fakehr_orchestra.pipeline.chain import JobOptions, check_environment, plan_chain, submit_chain
from fakehr_orchestra.pipeline.rundir import RunDir
from fakehr_orchestra.pipeline.runner import Options, PipelineError, run_pipeline
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES
from tests.pipeline.test_runner import FakeFrameworks


def smoke(*overrides: str):
    return load_recipe(RECIPES / "fake_hr1.yaml", list(overrides), profile="smoke")


def test_a_chain_groups_the_stages_into_jobs_each_after_the_last(tmp_path):
    chain = plan_chain(smoke(), tmp_path / "run", ("data", "sft", "eval"), JobOptions(nodes=1, label="fake_hr1"))
    assert [link.stages for link in chain.links][0] == ("data",)
    assert all(link.after for link in chain.links[1:])
    assert chain.recipes and not chain.sweep_specs


def test_a_chain_refuses_a_run_dir_that_holds_a_run_unless_resumed(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run_pipeline(smoke(), run, Options(stages=("data",), echo=False), launch=FakeFrameworks(run.path)) == 0
    with pytest.raises(PipelineError, match="already holds a run; continue it with --resume"):
        plan_chain(smoke(), run.path, ("data", "sft"), JobOptions(nodes=1))
    resumed = plan_chain(smoke(), run.path, ("data", "sft"), JobOptions(nodes=1), resume=True)
    assert [link.stages for link in resumed.links] == [("sft",)]  # the finished data stage is not submitted again
    with pytest.raises(PipelineError, match="the recipe changed"):
        plan_chain(smoke("data.split.seed=9"), run.path, ("data", "sft"), JobOptions(nodes=1), resume=True)


def test_submitting_checks_each_point_first_and_nothing_is_queued_when_one_fails(tmp_path):
    chain = plan_chain(smoke(), tmp_path / "sweep", ("data",), JobOptions(nodes=1),
                       sweep_specs=("sft.args.learning_rate=1e-4,2e-4",))
    checked = []

    def refuse(recipe):
        checked.append(recipe.overrides)
        raise RuntimeError("not valid")

    with pytest.raises(RuntimeError, match="not valid"):
        submit_chain(chain, smoke(), resume=False, preflight=refuse)
    assert checked == [("sft.args.learning_rate=1e-4",)]
    assert not (tmp_path / "sweep").exists()  # no sweep.json, no job


def test_what_a_job_reads_at_launch_must_be_set_when_submitting(monkeypatch):
    monkeypatch.delenv("FAKEHR_UNSET_A", raising=False)
    monkeypatch.setenv("FAKEHR_SET", "1")
    check_environment(["FAKEHR_SET"], "sft")
    with pytest.raises(MissingEnvError, match="sft reads FAKEHR_UNSET_A from the environment at launch; export it"):
        check_environment(["FAKEHR_SET", "FAKEHR_UNSET_A"], "sft")


def test_a_local_sweep_that_did_not_complete_is_exit_1_and_names_the_point(tmp_path, monkeypatch):
    from fakehr_orchestra.pipeline import runner

    fake = FakeFrameworks(tmp_path, fail_on="--learning_rate 2e-4")
    monkeypatch.setattr(runner, "_launcher", lambda step, recipe, opts: fake)
    opts = Options(stages=("data", "sft"), echo=False)
    planned = sweep_run.open_local(smoke(), ["sft.args.learning_rate=1e-4,2e-4"], tmp_path / "sweep", opts)
    assert planned.report is None  # eval is not among the stages
    with pytest.raises(sweep_run.SweepFailed, match=r"1 of 2 point\(s\) did not complete: learning_rate=2e-4") as exc:
        sweep_run.run_local(planned, opts)
    assert exc.value.code == 1
