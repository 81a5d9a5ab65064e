"""verl's half downstream of training, for real on CPU: a checkpoint written by verl's own FSDPCheckpointManager
(tests/integration/verl_checkpoint_child.py: the tiny model after a few optimizer steps, FSDP over gloo, in the layout
verl's trainer writes), then `run --stages merge,eval` on the run dir holding it: the pipeline's merge stage runs
verl's real `python -m verl.model_merger merge --backend fsdp`, eval loads the merged folder and ends in a report.

What stands in for what, and why: verl's GRPO workers cannot run without a GPU (no CPU platform, vLLM/SGLang
rollouts), so the GRPO stage's launcher is replaced by the child above (the stage's plan is verl's, its
trainer.default_local_dir is where the child saves), and the stage builder is told a GPU is there (stages.has_cuda_gpu)
so that the stage runs at all. Everything after it (finding the checkpoint, the merger, eval) is the real code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RECIPES, ROOT, framework_env, require_module

pytestmark = pytest.mark.integration
STEPS = 2
VERDICT = "\n</think>\n\nfake"  # a fake_hr1 answer after the prefilled "<think>\n": teacher-forced fake vs real


def _arg(argv: list[str], key: str) -> str:
    [value] = [a.split("=", 1)[1].strip("'") for a in argv if a.startswith(key + "=")]
    return value


@pytest.fixture(scope="module")
def verl_run(tiny: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_module("verl")
    from fakehr_orchestra.pipeline import stages
    from fakehr_orchestra.pipeline.rundir import RunDir
    from fakehr_orchestra.pipeline.runner import Options, run_pipeline
    from fakehr_orchestra.recipe import load_recipe

    overrides = ["grpo.engine=verl", f"vars.fixtures={Path(tiny['model']).parent}", f"eval.dataset={tiny['eval']}",
                 "eval.max_new_tokens=8"]  # the wiring and the weights, not long answers: keeps CI's 2 cores quick
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", overrides, profile="smoke")
    run = RunDir(tmp_path_factory.mktemp("verl") / "run")
    plans: list[list[str]] = []

    def grpo(plan: Any, log_path: Path, echo: bool = True) -> int:
        plans.append(plan.argv)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log:
            return subprocess.run([sys.executable, "-m", "tests.integration.verl_checkpoint_child", tiny["model"],
                                   _arg(plan.argv, "trainer.default_local_dir"), str(STEPS)], cwd=ROOT,
                                  env=framework_env(OMP_NUM_THREADS="1"), stdout=log, stderr=subprocess.STDOUT,
                                  timeout=300).returncode

    mp = pytest.MonkeyPatch()
    mp.setattr(stages, "has_cuda_gpu", lambda: True)
    try:
        assert run_pipeline(recipe, run, Options(echo=False, stages=("grpo",)), launch=grpo) == 0, \
            run.log("grpo").read_text()[-3000:]
    finally:
        mp.undo()
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "run", str(RECIPES / "fake_hr1.yaml"), "-p",
                           "smoke", *overrides, "--run-dir", str(run.path), "--stages", "merge,eval", "--resume",
                           "--skip-validate"], cwd=ROOT, env=framework_env(OMP_NUM_THREADS="2"), capture_output=True,
                          text=True, timeout=600)
    return {"run": run, "recipe": recipe, "proc": proc, "plans": plans}


def test_the_grpo_stage_finds_verls_checkpoint(verl_run: dict[str, Any]) -> None:
    """The checkpoint is verl's layout, written by verl's code, and the pipeline's artifact is the actor folder verl's
    own find_latest_ckpt_path leads to."""
    from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

    run = verl_run["run"]
    grpo_dir = run.stage_dir("grpo")
    assert _arg(verl_run["plans"][0], "trainer.default_local_dir") == str(grpo_dir)
    actor = Path(run.load()["stages"]["grpo"]["artifacts"]["checkpoint"]["path"])
    assert actor == Path(find_latest_ckpt_path(str(grpo_dir))) / "actor" == grpo_dir / f"global_step_{STEPS}" / "actor"
    for name in ("model_world_size_1_rank_0.pt", "optim_world_size_1_rank_0.pt", "extra_state_world_size_1_rank_0.pt",
                 "fsdp_config.json", "huggingface/config.json", "huggingface/generation_config.json"):
        assert (actor / name).is_file(), name


def test_merge_and_eval_on_the_verl_run_end_in_a_report(verl_run: dict[str, Any]) -> None:
    proc, run = verl_run["proc"], verl_run["run"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    stages = run.load()["stages"]
    actor = stages["grpo"]["artifacts"]["checkpoint"]["path"]
    merge = stages["merge"]
    assert merge["status"] == "done" and merge["inputs"] == {"local_dir": actor}
    merged = Path(merge["artifacts"]["model"]["path"])
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    log = run.log("merge").read_text()
    assert "python3 -m verl.model_merger merge" in log and "--backend fsdp" in log and f"--local_dir {actor}" in log
    assert "Saving model to" in log  # verl's merger's own output
    evaluation = stages["eval"]
    assert evaluation["status"] == "done" and evaluation["inputs"]["model.grpo"] == str(merged)
    report = Path(evaluation["artifacts"]["report"]["path"])
    assert report.is_dir() and any(report.iterdir())
    rows = [json.loads(line) for line in (run.stage_dir("eval") / "grpo" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all("error" not in r for r in rows)


def test_the_merged_model_answers_as_the_saved_actor(verl_run: dict[str, Any]) -> None:
    """verl's merger writes bfloat16 (base_model_merger.save_hf_model_and_tokenizer; fsdp_model_merger casts every
    shard to bf16), while the actor trains and is saved in float32. So: against the saved actor rounded to bf16 the
    merged model is exact (same weights, same logits); against the float32 actor its logits differ by bf16 rounding
    only, and its greedy answers (eval's own, from predictions.jsonl) and answer scores are the same."""
    import torch

    from fakehr_orchestra.evaluation.infer.prompting import load_image
    from fakehr_orchestra.evaluation.infer.settings import from_recipe
    from fakehr_orchestra.evaluation.infer.transformers_backend import TransformersBackend
    from fakehr_orchestra.evaluation.reader import read_eval_set

    assert verl_run["proc"].returncode == 0, verl_run["proc"].stdout[-3000:]
    run = verl_run["run"]
    stages = run.load()["stages"]
    actor = Path(stages["grpo"]["artifacts"]["checkpoint"]["path"])
    merged = stages["merge"]["artifacts"]["model"]["path"]
    saved = torch.load(actor / "model_world_size_1_rank_0.pt", map_location="cpu", weights_only=False)
    saved = {k: (v.to_local() if hasattr(v, "to_local") else v) for k, v in saved.items()}  # world size 1: whole
    assert all(v.dtype == torch.float32 for v in saved.values())

    backend = TransformersBackend(from_recipe(verl_run["recipe"], merged))  # eval's loader, float32 on CPU
    items = read_eval_set(verl_run["recipe"].model.eval.dataset)[::2]  # both labels, half the rows: CI's 2 cores
    assert {i.label for i in items} == {"real", "fake"}
    images = [load_image(i.file_path, backend.settings, backend.patch_size) for i in items]
    enc = backend._encode([backend.prompt] * len(items), images)

    def forward() -> tuple[Any, list[float | None]]:
        with torch.inference_mode():
            logits = backend.model(**enc).logits[:, -1].float()
        return logits, backend._answer_probs([VERDICT] * len(items), images)  # teacher-forced verdict at the answer

    merged_state = backend.model.state_dict()
    assert set(merged_state) == set(saved)
    merged_logits, merged_probs = forward()
    predictions = {json.loads(line)["key"]: json.loads(line)
                   for line in (run.stage_dir("eval") / "grpo" / "predictions.jsonl").read_text().splitlines()}

    backend.model.load_state_dict({k: v.bfloat16().float() for k, v in saved.items()})
    for key, value in backend.model.state_dict().items():
        assert torch.equal(value, merged_state[key]), key
    rounded_logits, rounded_probs = forward()
    torch.testing.assert_close(rounded_logits, merged_logits, rtol=0, atol=1e-6)

    backend.model.load_state_dict(saved)
    actor_logits, actor_probs = forward()
    assert not torch.equal(actor_logits, merged_logits)  # the float32 actor really is a different model here
    torch.testing.assert_close(actor_logits, merged_logits, rtol=0, atol=2e-2)
    assert actor_probs == pytest.approx(merged_probs, abs=1e-2) and None not in actor_probs
    answers = backend.generate(items)
    assert [g.text for g in answers] == [predictions[i.key]["response"] for i in items]


def test_run_resume_points_verls_own_resume_code_at_the_checkpoint(verl_run: dict[str, Any]) -> None:
    """The GRPO stage interrupted after verl saved: `run --resume` renders trainer.resume_mode=resume_path with the
    folder the pipeline found. verl's own resume code (PPOTrainer._load_checkpoint of the v1 trainer main_ppo runs),
    given the config composed from that plan, loads the actor from exactly that checkpoint; with the plan as first
    rendered (resume_mode left at verl's default, auto) verl's find_latest_ckpt_path picks the same folder. The
    trainer's worker group is a stand-in that records what it is asked to load (the real one is GPU workers)."""
    from types import SimpleNamespace

    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from fakehr_orchestra.pipeline import stages
    from fakehr_orchestra.pipeline.stages import REGISTRY, Wiring, build
    from fakehr_orchestra.rehearsal.verl_child import compose

    run, recipe = verl_run["run"], verl_run["recipe"]
    assert recipe.model.grpo.engine == "verl"
    point = REGISTRY["grpo"].resume_from("interrupted", run, recipe)
    assert point == {"grpo": str(run.stage_dir("grpo") / f"global_step_{STEPS}")}
    mp = pytest.MonkeyPatch()
    mp.setattr(stages, "has_cuda_gpu", lambda: True)
    try:
        plans = {name: build("grpo", Wiring(recipe, run, run.path / "recipe.resolved.yaml", {}, resume_from=resume,
                                            live=True), ("grpo",)).steps[0].plan
                 for name, resume in (("resumed", point), ("first", {}))}
    finally:
        mp.undo()
    import verl

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    for name, expected_mode in (("resumed", "resume_path"), ("first", "auto")):
        overrides = [o for o in plans[name].options if not o.startswith("hydra.")]  # main_ppo's own run dir
        cfg = compose(config_dir, overrides)
        assert cfg.trainer.resume_mode == expected_mode
        loaded: list[str] = []
        trainer = SimpleNamespace(config=cfg, use_critic=False, trainer_mode="sync", train_dataloader=None,
                                  actor_rollout_wg=SimpleNamespace(
                                      load_checkpoint=lambda local_path, sink=loaded, **_: sink.append(local_path)))
        PPOTrainer._load_checkpoint(trainer)
        assert loaded == [point["grpo"] + "/actor"], name
        assert trainer.global_steps == STEPS


@pytest.mark.parametrize("family", ["qwen3_vl", "qwen3_vl_moe"])
def test_qwen3_vl_families_merge_to_the_saved_actor(family: str, tmp_path: Path) -> None:
    """The other families the recipes train (families.py): verl's checkpoint manager saves the tiny Qwen3-VL (dense and
    MoE) and the pipeline's merge stage (its plan, run by the local launcher) merges it with verl's model_merger; the
    merged folder loads with eval's class and equals the saved actor rounded to bf16 (weights and logits)."""
    require_module("verl")
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from fakehr_orchestra.launch.local import run_plan
    from fakehr_orchestra.pipeline.artifacts import verl_latest_actor
    from fakehr_orchestra.pipeline.rundir import RunDir
    from fakehr_orchestra.pipeline.stages import Wiring, merge_stage
    from fakehr_orchestra.recipe import load_recipe
    from fakehr_orchestra.tinyworld import build_tiny

    tiny = build_tiny(ROOT / ".cache" / {"qwen3_vl": "tiny-qwen3vl", "qwen3_vl_moe": "tiny-qwen3vl-moe"}[family],
                      family=family)
    grpo_dir = tmp_path / "grpo"
    child = subprocess.run([sys.executable, "-m", "tests.integration.verl_checkpoint_child", tiny["model"],
                            str(grpo_dir), "1"], cwd=ROOT, env=framework_env(OMP_NUM_THREADS="1"), capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stdout[-2000:] + child.stderr[-3000:]
    actor = verl_latest_actor(grpo_dir)
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", ["grpo.engine=verl"], profile="smoke")
    run = RunDir(tmp_path / "run")
    stage = merge_stage(Wiring(recipe, run, run.path / "recipe.resolved.yaml", {"grpo": {"checkpoint": actor}},
                               live=True), ("merge",))
    assert stage.skip_reason is None and stage.inputs == {"local_dir": actor}
    [step] = stage.steps
    assert run_plan(step.plan, tmp_path / "merge.log", environ=framework_env(OMP_NUM_THREADS="1"), echo=False) == 0, \
        (tmp_path / "merge.log").read_text()[-3000:]
    merged = AutoModelForImageTextToText.from_pretrained(step.plan.output_dir, dtype=torch.float32)
    assert type(merged).__name__ == {"qwen3_vl": "Qwen3VLForConditionalGeneration",
                                     "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration"}[family]
    saved = torch.load(Path(actor) / "model_world_size_1_rank_0.pt", map_location="cpu", weights_only=False)
    state = merged.state_dict()
    assert set(state) == set(saved)
    for key, value in saved.items():
        assert torch.equal(state[key], value.bfloat16().float()), key
    reference = AutoModelForImageTextToText.from_pretrained(tiny["model"], dtype=torch.float32)
    reference.load_state_dict({k: v.bfloat16().float() for k, v in saved.items()})
    ids = AutoTokenizer.from_pretrained(step.plan.output_dir)("Is this image real or fake?", return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(merged(**ids).logits, reference(**ids).logits, rtol=0, atol=1e-6)
