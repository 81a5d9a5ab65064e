"""Pipeline bookkeeping: wiring, manifest, resume and refusal of a changed recipe.

These tests inject a stand-in launcher that writes what each framework would (ms-swift's last_model_checkpoint line,
data/artifacts.json, ...) so the state machine is checked in milliseconds; tests/integration/test_pipeline.py runs the
same pipeline with the real frameworks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.pipeline.rundir import RunDir
from fakehr_orchestra.pipeline.runner import Options, PipelineError, run_pipeline
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES

STAGES = ("data", "sft", "grpo", "merge", "eval")


class FakeFrameworks:
    """Does, for each plan, the minimum its real program leaves behind; records the plans it was given."""

    def __init__(self, run: Path, fail_on: str | None = None):
        self.run, self.fail_on, self.calls = run, fail_on, []

    def __call__(self, plan, log_path, echo=True):
        self.calls.append(plan)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.fail_on and self.fail_on in " ".join(plan.argv):
            log_path.write_text("boom\n")
            return 130
        argv = plan.argv
        if argv[:3] == ["fakehr-orchestra", "data", "prepare"]:
            out = Path(argv[argv.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            names = {}
            for name in ("sft.jsonl", "grpo.jsonl", "grpo.parquet", "eval.jsonl"):
                (out / name).write_text(name)
                names[name.split(".")[0] + ("_parquet" if name.endswith("parquet") else "")] = str(out / name)
            (out / "artifacts.json").write_text(json.dumps(names))
        elif argv[0] == "swift":
            out = Path(argv[argv.index("--output_dir") + 1]) / "v0-x" / "checkpoint-2"
            out.mkdir(parents=True, exist_ok=True)
            (out / "trainer_state.json").write_text('{"global_step": 2}')
            (out / "model.safetensors").write_text(f"weights of training run {id(self)}")
            (out.parent / "logging.jsonl").write_text(  # ms-swift's own metrics log (the curves' source)
                '{"loss": 1.0, "learning_rate": 0.1, "global_step/max_steps": "2/2"}\n')
            log_path.write_text(f"[INFO:swift] last_model_checkpoint: {out}\n")
        elif argv[:3] == ["fakehr-orchestra", "eval", "score"]:
            Path(argv[argv.index("--out") + 1]).parent.mkdir(parents=True, exist_ok=True)
            Path(argv[argv.index("--out") + 1]).write_text("{}")
        elif argv[:3] == ["fakehr-orchestra", "eval", "report"]:
            Path(argv[argv.index("--out") + 1]).mkdir(parents=True, exist_ok=True)
        return 0


def smoke(*overrides: str):
    return load_recipe(RECIPES / "fake_hr1.yaml", list(overrides), profile="smoke")


def test_full_run_wires_artifacts_and_records_everything(tmp_path):
    run = RunDir(tmp_path / "run")
    fake = FakeFrameworks(run.path)
    assert run_pipeline(smoke(), run, Options(echo=False), launch=fake) == 0
    manifest = run.load()
    assert [manifest["stages"][s]["status"] for s in STAGES] == ["done", "done", "done", "skipped", "done"]
    data = manifest["stages"]["data"]["artifacts"]
    sft_plan, grpo_plan = fake.calls[1], fake.calls[2]
    assert sft_plan.argv[sft_plan.argv.index("--dataset") + 1] == data["sft"]["path"]
    sft_ckpt = manifest["stages"]["sft"]["artifacts"]["checkpoint"]["path"]
    assert grpo_plan.argv[:2] == ["swift", "rlhf"]
    assert grpo_plan.argv[grpo_plan.argv.index("--model") + 1] == sft_ckpt  # from last_model_checkpoint
    assert grpo_plan.argv[grpo_plan.argv.index("--dataset") + 1] == data["grpo"]["path"]
    infer = [p for p in fake.calls if p.argv[:3] == ["fakehr-orchestra", "eval", "infer"]]
    grpo_ckpt = manifest["stages"]["grpo"]["artifacts"]["checkpoint"]["path"]
    assert [p.argv[p.argv.index("--model") + 1] for p in infer] == [sft_ckpt, grpo_ckpt]
    assert all(len(a["sha256"]) == 64 for a in data.values())
    assert manifest["recipe"]["digest"] == smoke().digest() and "swift" in manifest["versions"]
    assert (run.path / "recipe.resolved.yaml").exists() and (run.path / "plans" / "sft.json").exists()
    assert load_recipe(run.path / "recipe.resolved.yaml").model == smoke().model  # the resolved recipe reloads


def test_resume_skips_verified_stages_and_resumes_training(tmp_path):
    run = RunDir(tmp_path / "run")
    first = FakeFrameworks(run.path, fail_on="swift sft")
    assert run_pipeline(smoke(), run, Options(echo=False), launch=first) == 130
    assert run.load()["stages"]["sft"]["status"] == "interrupted"
    # the killed run left a checkpoint: resume must continue from it
    ckpt = run.path / "sft" / "v0-x" / "checkpoint-1"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"global_step": 1}')
    second = FakeFrameworks(run.path)
    assert run_pipeline(smoke(), run, Options(echo=False, resume=True), launch=second) == 0
    argv0 = [p.argv[:3] for p in second.calls]
    assert ["fakehr-orchestra", "data", "prepare"] not in argv0  # done and verified: not rerun
    sft = second.calls[0].argv
    assert sft[sft.index("--resume_from_checkpoint") + 1] == str(ckpt)
    manifest = run.load()
    assert all(manifest["stages"][s]["status"] in ("done", "skipped") for s in STAGES)
    assert manifest["stages"]["sft"]["attempts"] == 2


def _verl_arg(argv: list[str], key: str) -> str | None:
    found = [a.split("=", 1)[1].strip("'") for a in argv if a.startswith(key + "=")]
    return found[0] if found else None


def test_resume_after_an_interrupted_verl_grpo_names_verls_latest_checkpoint(tmp_path, monkeypatch):
    """verl saved global_step_1 and global_step_2 (its tracker says 2) before the stage was killed: `run --resume`
    renders trainer.resume_mode=resume_path with the folder verl's find_latest_ckpt_path picks (restated in
    pipeline/artifacts.py; tests/integration/test_verl_checkpoint.py runs verl's own resume code on it)."""
    monkeypatch.setattr("fakehr_orchestra.pipeline.stages.has_cuda_gpu", lambda: True)
    run = RunDir(tmp_path / "run")
    calls: list[list[str]] = []

    def verl(plan, log_path, echo=True):
        calls.append(plan.argv)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("")
        out = Path(_verl_arg(plan.argv, "trainer.default_local_dir"))
        for step in (1, 2):
            (out / f"global_step_{step}" / "actor").mkdir(parents=True, exist_ok=True)
        (out / "latest_checkpointed_iteration.txt").write_text("2")
        return 143 if len(calls) == 1 else 0

    opts = Options(echo=False, stages=("grpo",))
    assert run_pipeline(smoke("grpo.engine=verl"), run, opts, launch=verl) == 143
    assert _verl_arg(calls[0], "trainer.resume_mode") is None  # a first attempt starts afresh
    assert run_pipeline(smoke("grpo.engine=verl"), run, Options(echo=False, stages=("grpo",), resume=True),
                        launch=verl) == 0
    point = str(run.stage_dir("grpo") / "global_step_2")
    assert _verl_arg(calls[1], "trainer.resume_mode") == "resume_path"
    assert _verl_arg(calls[1], "trainer.resume_from_path") == point
    record = run.load()["stages"]["grpo"]
    assert record["inputs"]["grpo.overrides.trainer.resume_from_path"] == point
    assert record["artifacts"]["checkpoint"]["path"] == point + "/actor"


def test_verl_tracker_read_as_verl_reads_it(tmp_path):
    from fakehr_orchestra.pipeline import artifacts as art

    assert art.verl_latest_checkpoint(tmp_path) is None  # no tracker: verl trains from scratch
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("3\n")  # verl: int(f.read().decode())
    assert art.verl_latest_checkpoint(tmp_path) is None  # the folder it names is missing
    with pytest.raises(art.ArtifactError, match="no such global_step_<N> folder"):
        art.verl_latest_actor(tmp_path)
    (tmp_path / "global_step_3" / "actor").mkdir(parents=True)
    assert art.verl_latest_checkpoint(tmp_path) == str(tmp_path / "global_step_3")
    assert art.verl_latest_actor(tmp_path) == str(tmp_path / "global_step_3" / "actor")


def test_tampered_artifact_is_rerun_on_resume(tmp_path):
    run = RunDir(tmp_path / "run")
    run_pipeline(smoke(), run, Options(echo=False, stages=("data",)), launch=FakeFrameworks(run.path))
    Path(run.load()["stages"]["data"]["artifacts"]["sft"]["path"]).write_text("changed")
    again = FakeFrameworks(run.path)
    run_pipeline(smoke(), run, Options(echo=False, stages=("data",), resume=True), launch=again)
    assert len(again.calls) == 1


def test_changed_recipe_is_refused_unless_forced(tmp_path):
    run = RunDir(tmp_path / "run")
    run_pipeline(smoke(), run, Options(echo=False, stages=("data",)), launch=FakeFrameworks(run.path))
    with pytest.raises(PipelineError, match="recipe changed"):
        run_pipeline(smoke("sft.args.learning_rate=1"), run, Options(echo=False, resume=True),
                     launch=FakeFrameworks(run.path))
    with pytest.raises(PipelineError, match="--resume"):
        run_pipeline(smoke(), run, Options(echo=False), launch=FakeFrameworks(run.path))
    assert run_pipeline(smoke("sft.args.learning_rate=1"), run, Options(echo=False, resume=True, force=True),
                        launch=FakeFrameworks(run.path)) == 0
    assert run.load()["recipe"]["forced_from"]


def test_a_run_resumes_from_its_own_resolved_recipe(tmp_path):
    """recipe.resolved.yaml is the validated recipe written out: the same recipe, so the same digest."""
    run = RunDir(tmp_path / "run")
    run_pipeline(smoke(), run, Options(echo=False, stages=("data",)), launch=FakeFrameworks(run.path))
    resolved = load_recipe(run.path / "recipe.resolved.yaml")
    assert resolved.data != smoke().data and resolved.digest() == smoke().digest()
    again = FakeFrameworks(run.path)
    assert run_pipeline(resolved, run, Options(echo=False, stages=("data",), resume=True), launch=again) == 0
    assert again.calls == []  # same recipe: the data stage is done and verified


def test_missing_checkpoint_report_fails_the_stage_clearly(tmp_path):
    run = RunDir(tmp_path / "run")

    def silent_swift(plan, log_path, echo=True):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("trained, but said nothing\n")
        return 0
    assert run_pipeline(smoke(), run, Options(echo=False, stages=("sft",)), launch=silent_swift) == 1
    record = run.load()["stages"]["sft"]
    assert record["status"] == "failed" and "last_model_checkpoint" in record["error"]


@pytest.mark.parametrize("recipe,profile", [("fake_hr1.yaml", None), ("fakevlm_r1.yaml", None),
                                            ("fake_hr1.yaml", "smoke"), ("fakevlm_r1.yaml", "smoke")])
def test_dry_run_prints_every_stage_in_order_with_wiring(tmp_path, recipe, profile):
    args = ["run", str(RECIPES / recipe), "--dry-run", "--run-dir", str(tmp_path / "rd")]
    result = CliRunner().invoke(cli, args + (["-p", profile] if profile else []))
    assert result.exit_code == 0, result.output
    out = result.output
    positions = [out.index(f"## stage {s}") for s in STAGES]
    assert positions == sorted(positions)
    assert "sft.dataset <- <data.sft>" in out and "grpo.model <- <sft.checkpoint>" in out
    assert "model.sft <- <sft.checkpoint>" in out
    assert not (tmp_path / "rd").exists()  # nothing was run or written


def test_a_stage_whose_section_the_recipe_lacks_is_refused_with_the_stages_to_run(tmp_path):
    """A recipe without a grpo section (an SFT-only recipe): selecting grpo (and merge, which merges its checkpoint)
    is an error naming the stages to run, not an AttributeError; without them the plan is made."""
    base = ["run", str(RECIPES / "fake_hr1.yaml"), "~grpo", "--dry-run", "--run-dir", str(tmp_path / "rd")]
    refused = CliRunner().invoke(cli, base)
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert "no grpo section, which the selected stages grpo, merge need" in refused.output
    assert "run --stages data,sft,eval" in refused.output and "fake_hr1.yaml" in refused.output
    planned = CliRunner().invoke(cli, base + ["--stages", "data,sft,eval"])
    assert planned.exit_code == 0, planned.output
    assert "## stage eval" in planned.output and "model.sft <- <sft.checkpoint>" in planned.output
    assert "## stage grpo" not in planned.output


@pytest.mark.parametrize("val,wired", [(None, "<data.val_parquet>"),
                                       ("runs/smoke/data/grpo_val.parquet", "<data.val_parquet>"),
                                       ("/elsewhere/val.parquet", "/elsewhere/val.parquet")])
def test_verl_val_files_wired_from_the_data_stage_only_where_it_writes(tmp_path, val, wired):
    """The data stage's test split feeds grpo.val_files when the recipe leaves it unset or names data.workdir; a
    val file declared elsewhere is the user's own and reaches verl as declared (the one validate checked)."""
    from fakehr_orchestra.pipeline.runner import plan_all

    extra = ["grpo.engine=verl", "~grpo.val_files" if val is None else f"grpo.val_files=[{val}]"]
    plans = {sp.stage: sp for sp in plan_all(smoke(*extra), RunDir(tmp_path / "rd"), Options(echo=False))}
    argv = plans["grpo"].steps[0].plan.argv
    [val_arg] = [a for a in argv if a.startswith("data.val_files=")]
    assert wired in val_arg, argv
    assert any(a.startswith("data.train_files=") and "<data.parquet>" in a for a in argv), argv


def test_forced_resume_reruns_only_stages_whose_plan_changed(tmp_path):
    run = RunDir(tmp_path / "run")
    run_pipeline(smoke(), run, Options(echo=False), launch=FakeFrameworks(run.path))
    again = FakeFrameworks(run.path)
    changed = smoke("grpo.swift_args.learning_rate=2e-5")
    assert run_pipeline(changed, run, Options(echo=False, resume=True, force=True), launch=again) == 0
    ran = [p.argv[:2] for p in again.calls]
    assert ["swift", "sft"] not in ran and ["swift", "rlhf"] in ran  # sft unchanged; grpo and what follows rerun
    assert any(p.argv[:3] == ["fakehr-orchestra", "eval", "infer"] for p in again.calls)


def test_rerun_sets_superseded_outputs_aside(tmp_path):
    run = RunDir(tmp_path / "run")
    run_pipeline(smoke(), run, Options(echo=False, stages=("sft",)), launch=FakeFrameworks(run.path))
    first = run.load()["stages"]["sft"]["artifacts"]["checkpoint"]["path"]
    run_pipeline(smoke("sft.args.learning_rate=1"), run, Options(echo=False, stages=("sft",), resume=True, force=True),
                 launch=FakeFrameworks(run.path))
    moved = Path(first.replace("/sft/", "/sft.superseded-1/"))
    assert moved.is_dir() and run.load()["stages"]["sft"]["superseded"] == [str(run.path / "sft.superseded-1")]


def test_status_shows_each_stage_and_how_to_continue(tmp_path):
    run = RunDir(tmp_path / "run")
    run_pipeline(smoke(), run, Options(echo=False), launch=FakeFrameworks(run.path, fail_on="swift rlhf"))
    result = CliRunner().invoke(cli, ["status", str(run.path)])
    assert result.exit_code == 0, result.output
    assert "sft    done" in result.output and "grpo   interrupted" in result.output
    assert "next: grpo" in result.output and "--resume --profile smoke" in result.output
    as_json = json.loads(CliRunner().invoke(cli, ["status", str(run.path), "--json"]).output)
    assert as_json["pipeline"]["next"] == "grpo" and not as_json["pipeline"]["complete"]


def test_run_validates_before_launching_anything(tmp_path):
    """A misspelt ms-swift flag stops `run` before any stage starts (the real preflight, installed ms-swift)."""
    from tests.conftest import require_module
    require_module("swift")
    run_dir = tmp_path / "rd"
    result = CliRunner().invoke(cli, ["run", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "+sft.args.lerning_rate=1",
                                      "--stages", "sft", "--run-dir", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert "lerning_rate" in result.output and "nothing was launched" in result.output
    assert not run_dir.exists()


def test_a_stage_without_its_inputs_says_how_to_provide_them(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    fake = FakeFrameworks(run.path)
    assert run_pipeline(smoke(), run, Options(stages=("eval",)), launch=fake) == 2
    assert fake.calls == []
    out = capsys.readouterr().out
    assert "cannot start: no data.eval" in out and "set eval.dataset" in out
    assert run.load()["stages"]["eval"]["status"] == "failed"


def test_finished_stages_is_what_resume_would_skip(tmp_path):
    """`submit --resume` asks this: the leading stages `run --resume` would not run again."""
    from fakehr_orchestra.pipeline.runner import finished_stages

    run = RunDir(tmp_path / "run")
    assert finished_stages(smoke(), run, Options()) == []
    run_pipeline(smoke(), run, Options(echo=False), launch=FakeFrameworks(run.path, fail_on="swift sft"))
    assert finished_stages(smoke(), run, Options()) == ["data"]
    assert finished_stages(smoke(), run, Options(stages=("sft", "grpo"))) == []
    run_pipeline(smoke(), run, Options(resume=True, echo=False), launch=FakeFrameworks(run.path))
    assert finished_stages(smoke(), run, Options()) == list(STAGES)
    eval_metrics = json.loads((run.path / "manifest.json").read_text())["stages"]["eval"]["artifacts"]
    Path(eval_metrics["metrics_sft"]["path"]).write_text('{"changed": true}')  # an output no longer as recorded
    assert finished_stages(smoke(), run, Options()) == ["data", "sft", "grpo", "merge"]


def test_in_a_slurm_job_torchrun_steps_go_through_srun_and_verl_is_sized_to_the_job(tmp_path, monkeypatch):
    import functools

    from fakehr_orchestra.launch.srun import run_on_allocation
    from fakehr_orchestra.pipeline import runner

    launchers = []

    def record(step, recipe, opts):
        launcher = real(step, recipe, opts)
        launchers.append((step.name, launcher))
        return FakeFrameworks(tmp_path)

    real = runner._launcher
    monkeypatch.setattr(runner, "_launcher", record)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    run = RunDir(tmp_path / "run")
    recipe = smoke("grpo.engine=verl")
    assert run_pipeline(recipe, run, Options(stages=("data", "sft", "grpo"), echo=False, slurm_nodes=3)) == 0
    by_step = dict(launchers)
    assert isinstance(by_step["sft"], functools.partial) and by_step["sft"].func is run_on_allocation
    assert by_step["data"].__name__ == "run_plan"
    grpo = json.loads(run.plans_path("grpo").read_text())["steps"][0]["plan"]
    assert "trainer.nnodes=3" in grpo["argv"]  # verl sized to the job's nodes (skipped here: no CUDA GPU)
    # the digest ignores the allocation: a resume on another node count is the same plan
    assert runner.finished_stages(recipe, run, Options(stages=("data", "sft", "grpo"))) == ["data", "sft", "grpo"]


def test_run_slurm_outside_a_job_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_NUM_NODES", raising=False)
    result = CliRunner().invoke(cli, ["run", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--slurm",
                                      "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "runs inside a Slurm job" in result.output
    assert not (tmp_path / "r").exists()


def test_run_sweep_runs_each_point_in_its_run_dir_then_one_report(tmp_path, monkeypatch):
    from fakehr_orchestra.launch import local
    from fakehr_orchestra.pipeline import runner

    fake = FakeFrameworks(tmp_path, fail_on="--learning_rate 2e-4")
    monkeypatch.setattr(runner, "_launcher", lambda step, recipe, opts: fake)
    monkeypatch.setattr(local, "run_plan", fake)
    sweep_dir = tmp_path / "sweep"
    args = ["run", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--stages", "data,sft,eval", "--skip-validate",
            "--sweep", "sft.args.learning_rate=1e-4,2e-4", "--run-dir", str(sweep_dir)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "1 of 2 point(s) did not complete: learning_rate=2e-4" in result.output
    assert not [p for p in fake.calls if str(sweep_dir / "report") in p.argv]  # no report of an incomplete sweep
    assert RunDir(sweep_dir / "learning_rate=1e-4").load()["stages"]["eval"]["status"] == "done"

    fake.fail_on = None
    fake.calls.clear()
    result = CliRunner().invoke(cli, args + ["--resume"])
    assert result.exit_code == 0, result.output
    trained = [p for p in fake.calls if p.argv[:2] == ["swift", "sft"]]
    assert len(trained) == 1 and "2e-4" in trained[0].argv  # the finished point is not run again
    report = fake.calls[-1].argv
    assert report[:3] == ["fakehr-orchestra", "eval", "report"]
    assert report[report.index("--names") + 1] == "learning_rate=1e-4/sft,learning_rate=2e-4/sft"
    assert report[3] == str(sweep_dir / "learning_rate=1e-4" / "eval" / "sft" / "metrics.json")
    assert report[report.index("--out") + 1] == str(sweep_dir / "report")
    other = CliRunner().invoke(cli, args[:-4] + ["--sweep", "sft.args.learning_rate=1e-3", "--run-dir",
                                                  str(sweep_dir), "--resume"])
    assert other.exit_code == 2 and "holds another sweep" in other.output


@pytest.mark.parametrize("override,rerun", [
    ("prompt.user=Real or fake? <image>", {"data", "eval"}),  # both read the prompt from the resolved recipe
    ("data.split.seed=7", {"data"}),
    ("eval.max_new_tokens=17", {"eval"}),
])
def test_forced_resume_reruns_stages_whose_recipe_content_changed(tmp_path, override, rerun):
    """Issue 19 item 1: data and eval name the resolved recipe by path only; their plan digest must still change
    when the recipe content they read changes, and the manifest must name the recipe the run dir now holds."""
    run = RunDir(tmp_path / "run")
    run_pipeline(smoke(), run, Options(echo=False), launch=FakeFrameworks(run.path))
    again = FakeFrameworks(run.path)
    changed = smoke(override)
    assert run_pipeline(changed, run, Options(echo=False, resume=True, force=True), launch=again) == 0
    ran = {p.stage for p in again.calls}
    assert ran == rerun  # the fake data stage writes the same exports: sft and grpo inputs are unchanged
    manifest = run.load()
    assert manifest["recipe"]["digest"] == changed.digest() == load_recipe(run.path / "recipe.resolved.yaml").digest()
    assert manifest["recipe"]["overrides"] == [override]
    # and resuming again with the new recipe runs nothing
    third = FakeFrameworks(run.path)
    assert run_pipeline(changed, run, Options(echo=False, resume=True), launch=third) == 0 and third.calls == []


def test_an_external_eval_set_is_part_of_the_eval_plan_digest(tmp_path):
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text('{"file_path": "a.png", "label": 1}\n')
    run = RunDir(tmp_path / "run")
    recipe = smoke(f"eval.dataset={eval_set}")
    opts = Options(echo=False, stages=("eval",))
    assert run_pipeline(recipe, run, opts, launch=FakeFrameworks(run.path)) == 0
    eval_set.write_text('{"file_path": "b.png", "label": 0}\n')  # same path, other content
    again = FakeFrameworks(run.path)
    assert run_pipeline(recipe, run, Options(echo=False, stages=("eval",), resume=True), launch=again) == 0
    assert again.calls and all(p.stage == "eval" for p in again.calls)


def test_eval_sets_add_the_suite_step_with_every_evaluated_model(tmp_path):
    sets = '[{"name": "holmes", "kind": "folders", "path": "TestSet", "label_convention": "folders", ' \
           '"label_folders": {"0_real": "real", "1_fake": "fake"}}]'
    run = RunDir(tmp_path / "run")
    fake = FakeFrameworks(run.path)
    assert run_pipeline(smoke(f"eval.sets={sets}"), run, Options(echo=False), launch=fake) == 0
    manifest = run.load()
    suite = [p for p in fake.calls if p.argv[:3] == ["fakehr-orchestra", "eval", "suite"]]
    assert len(suite) == 1 and suite[0].argv[-2:] == ["--out", str(run.stage_dir("eval") / "suite")]
    models = [suite[0].argv[i + 1] for i, a in enumerate(suite[0].argv) if a == "--model"]
    assert models == [f"sft={manifest['stages']['sft']['artifacts']['checkpoint']['path']}",
                      f"grpo={manifest['stages']['grpo']['artifacts']['checkpoint']['path']}"]
    # without eval.sets there is no suite step
    plain = FakeFrameworks(run.path)
    assert run_pipeline(smoke(), RunDir(tmp_path / "plain"), Options(echo=False), launch=plain) == 0
    assert not any(p.argv[:3] == ["fakehr-orchestra", "eval", "suite"] for p in plain.calls)
