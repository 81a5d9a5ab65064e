"""The demo learns, and each method's RL stage does what its reward asks: real pipelines (data -> swift sft -> swift
GRPO -> eval -> report) on the tiny world of tinyworld/tiny_images.py, on CPU, shared by every test here.

- The accuracy floor: SFT >= 90% accurate and >= 95% well-formed on the held-out split, GRPO within 3 points.
- Fake-HR1 (HGRPO learns when to think): the demo's SFT set answers 3 in 4 easy (GenImage) training images with a
  short reasoning (the fixture's annotations), so the SFT model thinks on the easy images too. After GRPO with the
  hybrid bonus the easy think-rate is at most half of SFT's and at most 10%, accuracy holds and answers are
  shorter. The control, the same GRPO with the bonus weight at 0 from the same SFT model, keeps thinking: the
  effect is the bonus's.
- FakeVLM-R1 (the dialectic moves): half of its SFT pairs are one-sided (the fixture's annotations); GRPO raises the
  share of fully paired answers by at least 20 points; the control (dialectic weight 0) does not raise it.
- Both methods on the shipped seed and one other (Fake-HR1: the split seed; FakeVLM-R1, whose split is FakeClue's
  released one: GRPO's data seed).
- Not asserted: that Fake-HR1 keeps reasoning on the hard images. In the tiny world answering them without a
  reasoning is as accurate (docs/demo.md), so the hybrid bonus rightly teaches no-think there too.
- A flipped label convention misses the floor; the curves are ms-swift's own logged steps; vLLM's CPU build answers
  as the transformers backend.

The SFT of each seed runs once: its run dir is copied after SFT and the copy resumed with the control's override
(`--resume --force`), so effect and control start from the same model. The four pipelines run side by side.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import RECIPES, ROOT, framework_env, require_executable, require_module

pytestmark = pytest.mark.integration
FLOOR, WELL_FORMED, GRPO_SLACK = 0.90, 0.95, 0.03
EASY_SFT_THINK = 0.5  # the SFT model must think on at least half of the easy images for the effect to mean anything
CONTROL_NOISE = 0.15  # how far a behaviour may drift under GRPO when its reward weight is 0
PAIRED_RISE = 0.20  # FakeVLM-R1: how far GRPO must raise the fully paired share (issue figure: 20 points)
# FakeVLM-R1's SFT model garbles 2 of its 32 held-out answers since half its training pairs are one-sided (measured
# 2026-12-07: 93.75% well-formed); GRPO brings it to 100%
VLM_WELL_FORMED = 0.90


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakehr_orchestra", *args], cwd=ROOT, env=framework_env(),
                          capture_output=True, text=True, timeout=timeout)


def _fixtures() -> Path:
    require_module("swift")
    require_executable("swift")
    from fakehr_orchestra.tinyworld import build_tiny

    return Path(build_tiny(ROOT / ".cache" / "demo", per_class=32)["model"]).parent


def _run(recipe: str, run_dir: Path, *args: str) -> None:
    done = _cli("run", str(RECIPES / recipe), "-p", "demo", f"vars.fixtures={_fixtures()}", *args,
                "--run-dir", str(run_dir), "--skip-validate", timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]


def _result(run_dir: Path, models: tuple[str, ...] = ("sft", "grpo")) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    metrics = {name: json.loads((run_dir / "eval" / name / "metrics.json").read_text()) for name in models}
    return {"run": run_dir, "fixtures": _fixtures(), "manifest": manifest, "metrics": metrics}


def _effect_and_controls(recipe: str, base: Path, *args: str, branches: dict[str, tuple[str, ...]]) -> dict:
    """data + SFT once, then GRPO + eval per branch (its overrides) and for the effect, each from that same SFT
    model. A run dir's plans hold its own path, so a copy elsewhere would train its SFT again: each branch runs in
    a copy of the SFT-only run dir put back at the original path (`--resume --force`: data and SFT are verified
    and skipped), then moved aside. The effect runs last and stays in place, so its manifest's paths hold.
    Returns {"effect": result, <branch>: result}."""
    run, snapshot = base / "run", base / "after_sft"
    _run(recipe, run, *args, "--stages", "data,sft")
    shutil.copytree(run, snapshot, symlinks=True)
    out = {}
    for name, overrides in branches.items():
        if not run.exists():
            shutil.copytree(snapshot, run, symlinks=True)
        _run(recipe, run, *args, *overrides, "--resume", "--force")
        out[name] = _result(run)
        sft = out[name]["manifest"]["stages"]["sft"]
        assert sft["status"] == "done" and not (run / "sft.superseded-1").exists(), "the branch retrained SFT"
        run.rename(base / name)
    shutil.copytree(snapshot, run, symlinks=True)
    _run(recipe, run, *args, "--resume", "--force")
    out["effect"] = _result(run)
    return out


HR1_CONTROL = ("grpo.reward.kwargs.hybrid_w_mode=0",)
VLM_CONTROL = ("grpo.reward.kwargs.w_dialectic=0",)


SEEDS = (0, 1)  # the shipped seed and one other


# The pipelines of this module, each a chain of subprocesses (data, SFT, then GRPO + eval per branch), run all at
# once: their training runs on one thread each (the smoke profile, which the demo extends, sets OMP_NUM_THREADS=1),
# so one chain alone leaves a core of a 2-core CI machine idle; side by side the module's wall time is about half
# the sum of its pipelines (measured: 684 s for the four, 1145 s at the last stop for three of them one by one).


def _pipelines(base: Path) -> dict[str, Callable[[], dict]]:
    """name -> the function that runs it, effect and control each: Fake-HR1 on split seeds 0 (the demo's own) and 1;
    FakeVLM-R1 (its split is FakeClue's released one) on GRPO data seeds 0 (the demo's own) and 1, the order in
    which GRPO meets the prompts."""
    hr1 = {f"hr1_seed{seed}": partial(_effect_and_controls, "fake_hr1.yaml", base / f"hr1_seed{seed}",
                                      f"data.split.seed={seed}", branches={"control": HR1_CONTROL})
           for seed in SEEDS}
    vlm = {f"vlm_seed{seed}": partial(_effect_and_controls, "fakevlm_r1.yaml", base / f"vlm_seed{seed}",
                                      f"grpo.swift_args.data_seed={seed}", branches={"control": VLM_CONTROL})
           for seed in SEEDS}
    return {**hr1, **vlm}


@pytest.fixture(scope="module")
def pipelines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every pipeline a selected test of this module needs, side by side."""
    wanted = {fixture for item in request.session.items if item.module is request.module
              for fixture in item.fixturenames}
    names = [name for name in _pipelines(Path()) if name.split("_")[0] in wanted
             or (name == "hr1_seed0" and "demo" in wanted)]
    _fixtures()  # the shared fixture is built once, before the pipelines read it
    runs = _pipelines(tmp_path_factory.mktemp("demo"))
    with ThreadPoolExecutor(max(1, len(names))) as pool:
        futures = {name: pool.submit(runs[name]) for name in names}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def hr1(pipelines: dict) -> dict:
    """Fake-HR1 on split seeds 0 (the demo's own) and 1: effect and control each."""
    return {seed: pipelines[f"hr1_seed{seed}"] for seed in SEEDS}


@pytest.fixture(scope="module")
def demo(pipelines: dict) -> dict:
    return pipelines["hr1_seed0"]["effect"]


@pytest.fixture(scope="module")
def vlm(pipelines: dict) -> dict:
    """FakeVLM-R1 on GRPO data seeds 0 (the demo's own) and 1: effect and control each."""
    return {seed: pipelines[f"vlm_seed{seed}"] for seed in SEEDS}


def _floors(metrics: dict, well_formed: float = WELL_FORMED) -> None:
    sft, grpo = metrics["sft"], metrics["grpo"]
    assert sft["overall"]["accuracy"] >= FLOOR, sft["overall"]
    assert sft["overall"]["well_formed_rate"] >= well_formed, sft["overall"]
    assert grpo["overall"]["accuracy"] >= sft["overall"]["accuracy"] - GRPO_SLACK, grpo["overall"]


def test_the_demo_learns_past_the_floor(demo):
    _floors(demo["metrics"])
    by_source = demo["metrics"]["sft"]["groups"]["source"]["values"]
    assert set(by_source) == {"genimage", "fakeclue"}
    report = (Path(demo["manifest"]["stages"]["eval"]["artifacts"]["report"]["path"]) / "report.md").read_text()
    assert "training_curves.png" in report and "## Training curves" in report
    assert "think_rate genimage" in report and "think_rate fakeclue" in report  # per source, per step


def _by_source(metrics: dict) -> dict:
    return metrics["groups"]["source"]["values"]


@pytest.mark.parametrize("seed", [0, 1])
def test_hgrpo_learns_when_to_think_and_the_control_does_not(hr1, seed):
    """Easy images: think-rate at most half of SFT's and at most 10% after GRPO; accuracy within 3 points; shorter
    answers. With the hybrid bonus weight at 0 (same SFT model, same GRPO otherwise) the easy think-rate stays."""
    effect, control = hr1[seed]["effect"]["metrics"], hr1[seed]["control"]["metrics"]
    _floors(effect)
    sft, grpo, ctrl = _by_source(effect["sft"]), _by_source(effect["grpo"]), _by_source(control["grpo"])
    assert sft["genimage"]["think_rate"] >= EASY_SFT_THINK, sft  # the premise: the SFT model thinks on easy images
    assert grpo["genimage"]["think_rate"] <= min(0.10, sft["genimage"]["think_rate"] / 2), (sft, grpo)
    assert effect["grpo"]["mean_response_tokens"] < effect["sft"]["mean_response_tokens"]
    assert ctrl["genimage"]["think_rate"] >= sft["genimage"]["think_rate"] - CONTROL_NOISE, (sft, ctrl)
    assert control["grpo"]["overall"]["accuracy"] >= effect["sft"]["overall"]["accuracy"] - GRPO_SLACK


def test_a_flipped_label_convention_misses_the_floor(demo, tmp_path):
    """The trained SFT model, its eval set rewritten with FakeClue-style 0/1 labels, read as one_is_fake."""
    run = demo["run"]
    flipped = tmp_path / "eval_01.jsonl"
    rows = [json.loads(line) for line in (run / "data" / "eval.jsonl").read_text().splitlines() if line.strip()]
    flipped.write_text("".join(json.dumps({**r, "label": 0 if r["label"] == "fake" else 1}) + "\n" for r in rows))
    model = demo["manifest"]["stages"]["sft"]["artifacts"]["checkpoint"]["path"]
    pred, metrics = tmp_path / "pred.jsonl", tmp_path / "metrics.json"
    common = [str(RECIPES / "fake_hr1.yaml"), "-p", "demo", f"vars.fixtures={demo['fixtures']}"]
    done = _cli("eval", "infer", *common, "eval.label_convention=one_is_fake", "--model", model,
                "--data", str(flipped), "--out", str(pred), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _cli("eval", "score", str(pred), "--out", str(metrics), timeout=300).returncode == 0
    overall = json.loads(metrics.read_text())["overall"]
    assert overall["well_formed_rate"] >= WELL_FORMED  # the model answers as trained ...
    assert overall["accuracy"] < FLOOR and overall["accuracy"] <= 1 - demo["metrics"]["sft"]["overall"]["accuracy"] + 1e-9
    # ... and the flip shows: every answer that was right is now wrong


def _swift_steps(checkpoint: str) -> list[dict]:
    rows = [json.loads(line) for line in (Path(checkpoint).parent / "logging.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r and "train_runtime" not in r]


def test_curves_are_the_frameworks_logged_steps(demo):
    stages = demo["manifest"]["stages"]
    for stage in ("sft", "grpo"):
        curves = [json.loads(line) for line in Path(stages[stage]["artifacts"]["curves"]["path"]).read_text()
                  .splitlines()]
        logged = _swift_steps(stages[stage]["artifacts"]["checkpoint"]["path"])
        assert [c["step"] for c in curves] == [int(r["global_step/max_steps"].split("/")[0]) for r in logged]
        assert [c["loss"] for c in curves] == pytest.approx([r["loss"] for r in logged])
        assert [c["lr"] for c in curves] == pytest.approx([r["learning_rate"] for r in logged])
    sft = [json.loads(line) for line in (demo["run"] / "curves" / "sft.jsonl").read_text().splitlines()]
    assert sft[-1]["loss"] < sft[0]["loss"] / 4  # the SFT curve shows the learning
    grpo = [json.loads(line) for line in (demo["run"] / "curves" / "grpo.jsonl").read_text().splitlines()]
    logged = _swift_steps(stages["grpo"]["artifacts"]["checkpoint"]["path"])
    assert [c["reward"] for c in grpo] == pytest.approx([r["reward"] for r in logged])
    assert [c["response_length"] for c in grpo] == pytest.approx([r["completions/mean_length"] for r in logged])
    assert all({"acc", "format"} <= set(c["reward_components"]) and c["think_rate"] is not None for c in grpo)
    # each step's think-rate per source (the data_source column of the GRPO rows reaches the reward trace)
    assert all(set(c["think_rate_by_source"]) <= {"genimage", "fakeclue"} for c in grpo)
    assert {s for c in grpo for s in c["think_rate_by_source"]} == {"genimage", "fakeclue"}


@pytest.mark.parametrize("seed", SEEDS)
def test_fakevlm_r1_grpo_pairs_the_reasoning_up_and_the_control_does_not(vlm, seed):
    """FakeVLM-R1's SFT model (half its training pairs one-sided) leaves most answers unpaired; GRPO raises the fully
    paired share by at least PAIRED_RISE, its accuracy not lower by more than 3 points; with the dialectic weight at
    0 (same SFT model, same GRPO otherwise) it does not rise."""
    effect, control = vlm[seed]["effect"]["metrics"], vlm[seed]["control"]["metrics"]
    _floors(effect, well_formed=VLM_WELL_FORMED)
    _floors(control, well_formed=VLM_WELL_FORMED)
    sft, grpo, ctrl = (effect["sft"]["paired_share"], effect["grpo"]["paired_share"],
                       control["grpo"]["paired_share"])
    assert sft <= 0.8, sft  # the premise: the SFT model leaves part of its reasoning unpaired
    assert grpo >= sft + PAIRED_RISE, (sft, grpo)
    assert ctrl <= sft + CONTROL_NOISE, (sft, ctrl)


def test_fakevlm_r1_reports_its_critic_skipped_and_the_paired_share(vlm):
    run = vlm[0]["effect"]
    assert set(run["metrics"]["sft"]["groups"]["source"]["values"]) == {"fakeclue_test"}  # FakeClue's test.json
    meta = json.loads((run["run"] / "curves" / "grpo.meta.json").read_text())
    assert list(meta["skipped_components"]) == ["consistency"]  # no critic endpoint in the demo
    assert {"acc", "format", "dialectic", "length"} <= set(meta["components"])
    report = (Path(run["manifest"]["stages"]["eval"]["artifacts"]["report"]["path"]) / "report.md").read_text()
    assert "reward: consistency | 0 | skipped" in report
    assert "fully paired reasoning" in report and "| grpo | paired_rate |" in report


def test_vllm_answers_as_the_transformers_backend_on_the_trained_model(demo, tmp_path):
    """vLLM's CPU build (`make venv`; the vLLM version the GPU set pins) evaluates the demo's SFT checkpoint: on
    greedy settings its answers equal the transformers backend's (the demo's eval stage) and its P(fake) agrees.
    vLLM's kernels differ from transformers' in float rounding, so a near-tie between two tokens could break the other
    way: at most 1 answer in 40 may differ, and the verdicts' accuracy stays within one image. (Measured on the demo's
    split: 80 of 80 answers equal, P(fake) within 1e-7.)"""
    require_module("vllm")
    run = demo["run"]
    model = demo["manifest"]["stages"]["sft"]["artifacts"]["checkpoint"]["path"]
    pred = tmp_path / "vllm.jsonl"
    done = _cli("eval", "infer", str(RECIPES / "fake_hr1.yaml"), "-p", "demo", f"vars.fixtures={demo['fixtures']}",
                "--model", model, "--data", str(run / "data" / "eval.jsonl"), "--out", str(pred), "--backend", "vllm",
                timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    ours = {r["key"]: r for r in map(json.loads, (run / "eval" / "sft" / "predictions.jsonl").read_text().splitlines())}
    theirs = {r["key"]: r for r in map(json.loads, pred.read_text().splitlines())}
    assert set(ours) == set(theirs)
    differ = [k for k in ours if ours[k]["response"] != theirs[k]["response"]]
    assert len(differ) <= len(ours) // 40, [(ours[k]["response"], theirs[k]["response"]) for k in differ]
    right = {name: sum(r["pred"] == r["label"] for r in rows.values()) for name, rows in
             (("transformers", ours), ("vllm", theirs))}
    assert abs(right["transformers"] - right["vllm"]) <= 1, right
    both = [k for k in ours if k not in differ and ours[k]["prob_fake"] is not None]
    assert both and all(abs(ours[k]["prob_fake"] - theirs[k]["prob_fake"]) < 1e-4 for k in both)


def test_perturbations_on_the_trained_model_hit_only_what_destroys_the_artifact(demo, tmp_path):
    """The demo's SFT model on its held-out GenImage images under `eval.perturbations`: "none" equals the demo's own
    eval; blur and downscale erase the tiny world's pixel checkerboard and the model then misses the fakes; JPEG at
    quality 10 keeps it (measured: 88-114% of its amplitude survives, docs/evaluation.md), and the answers hold.
    Measured on a model trained the same way: none 100%, jpeg:10 100%, blur:1 50%, downscale:0.5 50%."""
    run = demo["run"]
    model = demo["manifest"]["stages"]["sft"]["artifacts"]["checkpoint"]["path"]
    sets = [{"name": "genimage", "kind": "genimage", "path": str(demo["fixtures"] / "data" / "GenImage"),
             "label_convention": "genimage", "split": "test"}]
    done = _cli("eval", "suite", str(RECIPES / "fake_hr1.yaml"), "-p", "demo", f"vars.fixtures={demo['fixtures']}",
                f"eval.sets={json.dumps(sets)}", 'eval.perturbations=["none", "jpeg:10", "blur:1"]', "data.workers=1",
                "--model", f"sft={model}", "--out", str(tmp_path / "suite"), timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    accuracy = json.loads((tmp_path / "suite" / "suite.json").read_text())["by_perturbation"]["sft"]
    demo_genimage = demo["metrics"]["sft"]["groups"]["source"]["values"]["genimage"]["accuracy"]
    assert abs(accuracy["none"] - demo_genimage) <= 1 / 64 + 1e-9, (accuracy, demo_genimage)
    assert accuracy["jpeg:10"] >= accuracy["none"] - 0.05, accuracy
    assert accuracy["blur:1"] <= accuracy["none"] - 0.25, accuracy
    ours = {r["key"]: r["response"] for r in map(json.loads, (run / "eval" / "sft" / "predictions.jsonl").read_text()
                                                 .splitlines())}
    suite = [json.loads(line) for line in (tmp_path / "suite" / "sft" / "genimage" / "predictions.jsonl").read_text()
             .splitlines()]
    # "none": the same answers image by image, but for a near-tie that other batch padding may break the other way
    differ = [r["key"] for r in suite if ours[r["key"]] != r["response"]]
    assert len(suite) == 64 and len(differ) <= 1, differ
