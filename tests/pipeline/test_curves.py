"""Training curves are read from the frameworks' own logs: a verl log written by verl's own logger classes
(verl.utils.tracking: console, file and tensorboard backends) and rollout dump (RayPPOTrainer._write_generations)
reads back step for step and value for value, whichever logger is on; ms-swift rows map field by field. (verl
cannot train on this CPU machine, so its logs come from its logger classes fed with metric dicts named as its
trainer names them; the ms-swift side is checked against a real run in tests/integration/test_demo.py.)"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from fakehr_orchestra.pipeline import curves
from tests.conftest import ROOT, require_module

VERL_STEPS = {
    1: {"actor/pg_loss": 0.25, "actor/lr": 1e-6, "actor/grad_norm": 1.5, "critic/score/mean": 0.4,
        "response_length/mean": 17.0, "actor/kl_loss": 0.001, "timing_s/step": 3.2},
    2: {"actor/pg_loss": -0.125, "actor/lr": 1e-6, "actor/grad_norm": 0.75, "critic/score/mean": 0.9,
        "response_length/mean": 12.5, "actor/kl_loss": 0.002, "timing_s/step": 3.1},
}


def _verl_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backends: list[str]) -> str:
    require_module("verl")
    from verl.utils.tracking import Tracking

    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "verl_metrics.jsonl"))
    monkeypatch.setenv("TENSORBOARD_DIR", str(tmp_path / "tensorboard"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tracker = Tracking("p", "e", default_backend=backends)
        for step, data in VERL_STEPS.items():
            tracker.log(data=data, step=step)
        tracker.finish()
    return out.getvalue()


def _check(rows: list[dict]) -> None:
    assert [r["step"] for r in rows] == list(VERL_STEPS)
    for row, data in zip(rows, VERL_STEPS.values()):
        assert row["loss"] == pytest.approx(data["actor/pg_loss"]) and row["lr"] == pytest.approx(data["actor/lr"])
        assert row["reward"] == pytest.approx(data["critic/score/mean"])
        assert row["response_length"] == pytest.approx(data["response_length/mean"])
        assert row["kl"] == pytest.approx(data["actor/kl_loss"]) and row["token_acc"] is None


@pytest.mark.parametrize("backends", [["console"], ["file"], ["tensorboard"], ["console", "file", "tensorboard"]])
def test_verl_metrics_from_each_of_its_loggers(tmp_path, monkeypatch, backends):
    console = _verl_logs(tmp_path, monkeypatch, backends)
    log = tmp_path / "grpo.log"
    log.write_text("some other output\n" + console + "step:not a metric line\n")
    rows, meta = curves.collect("grpo", "verl", checkpoint=None, log_file=log,
                                verl_file=tmp_path / "verl_metrics.jsonl", tb_dir=tmp_path / "tensorboard")
    _check(rows)
    assert meta["steps"] == 2 and "reward_components" in meta["not_collected"]


def test_verl_without_a_readable_logger_says_so(tmp_path):
    rows, meta = curves.collect("grpo", "verl", log_file=tmp_path / "none.log", verl_file=tmp_path / "none.jsonl")
    assert rows == [] and "trainer.logger" in meta["not_collected"]["metrics"]


def test_swift_without_its_logging_file_is_an_error(tmp_path):
    with pytest.raises(curves.CurvesError, match="logging.jsonl"):
        curves.collect("sft", "swift", checkpoint=str(tmp_path / "v0" / "checkpoint-2"))


def test_verl_rollout_dumps_give_components_and_think_rate(tmp_path, monkeypatch):
    console = _verl_logs(tmp_path, monkeypatch, ["console"])
    (tmp_path / "grpo.log").write_text(console)
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    outputs = {1: ["\n\n</think>\n\nfake", "\nA faint grid.\n</think>\n\nreal"], 2: ["\n\n</think>\n\nreal"] * 2}
    for step, outs in outputs.items():
        RayPPOTrainer._write_generations(["p"] * 2, outs, ["fake", "real"], [1.5, 0.5],
                                         {"acc": [1.0, 0.0], "format": [1.0, 1.0], "think": [0.0, 1.0]},
                                         str(tmp_path / "rollouts"), step)
    rows, meta = curves.collect("grpo", "verl", log_file=tmp_path / "grpo.log", rollout_dir=tmp_path / "rollouts",
                                answer_format="fake_hr1", response_prefix="<think>\n", components=["acc", "format"])
    _check(rows)
    assert rows[0]["reward_components"] == {"acc": 0.5, "format": 1.0}  # think: a flag, not a component
    assert rows[0]["think_rate"] == 0.5 and rows[1]["think_rate"] == 0.0


def test_swift_logging_rows_map_field_by_field(tmp_path):
    out = tmp_path / "v0-x"
    (out / "checkpoint-4").mkdir(parents=True)
    lines = [
        {"loss": 2.0, "grad_norm": 1.0, "learning_rate": 0.003, "token_acc": 0.5, "epoch": 0.1,
         "global_step/max_steps": "2/4"},
        {"loss": 1.0, "grad_norm": 0.5, "learning_rate": 0.003, "token_acc": 0.75, "epoch": 0.2,
         "global_step/max_steps": "4/4"},
        {"train_runtime": 9.0, "train_loss": 1.5, "global_step/max_steps": "4/4"},
    ]
    (out / "logging.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"torn')
    rows, meta = curves.collect("sft", "swift", checkpoint=str(out / "checkpoint-4"))
    assert [(r["step"], r["loss"], r["lr"], r["token_acc"]) for r in rows] == [(2, 2.0, 0.003, 0.5),
                                                                               (4, 1.0, 0.003, 0.75)]
    assert meta["sources"]["metrics"] == str(out / "logging.jsonl")


def test_swift_grpo_components_need_one_batch_per_step(tmp_path):
    out = tmp_path / "v0-x"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "logging.jsonl").write_text("".join(json.dumps(
        {"loss": 0.0, "reward": 1.0, "completions/mean_length": 11.0, "global_step/max_steps": f"{s}/2"}) + "\n"
        for s in (1, 2)))
    trace = tmp_path / "trace"
    trace.mkdir()
    for n, (acc, completion) in enumerate([(1.0, "\nwhy\n</think>\n\nfake"), (0.0, "\n\n</think>\n\nreal")], 1):
        (trace / f"77-{n}.json").write_text(json.dumps({"completions": [completion],
                                                        "results": [{"score": acc, "acc": acc, "format": 1.0}]}))
    rows, meta = curves.collect("grpo", "swift", checkpoint=str(out / "checkpoint-2"), trace_dir=trace,
                                response_prefix="<think>\n", components=["acc", "format"])
    assert [(r["reward_components"]["acc"], r["think_rate"], r["response_length"]) for r in rows] == \
        [(1.0, 1.0, 11.0), (0.0, 0.0, 11.0)]
    (trace / "77-3.json").write_text(json.dumps({"completions": [], "results": []}))
    rows, meta = curves.collect("grpo", "swift", checkpoint=str(out / "checkpoint-2"), trace_dir=trace)
    assert "3 scored batches for 2 steps" in meta["not_collected"]["reward_components"]
    assert all(r["reward_components"] == {} for r in rows)


def test_curves_spec_with_equals_in_the_run_and_the_path(tmp_path):
    """A sweep point's run dir is named like 'learning_rate=1e-4': the spec's label ends at the '=' before the file."""
    from fakehr_orchestra.evaluation.report import read_curves

    path = tmp_path / "learning_rate=1e-4" / "curves" / "sft.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"step": 1, "loss": 2.0}\n')
    got = [(run, stage, len(rows)) for run, stage, rows in read_curves([f"sft={path}",
                                                                         f"learning_rate=1e-4/sft={path}"])]
    assert got == [("run", "sft", 1), ("learning_rate=1e-4", "sft", 1)]


# ------------------------------------------------------------------------------------------------ components
SHIPPED = ROOT / "rewards"


def _swift_grpo(tmp_path: Path, results: list[list[dict]]) -> tuple[Path, Path]:
    """An ms-swift GRPO output (logging.jsonl, one row per step) and the reward adapter's trace, one batch a step."""
    out = tmp_path / "v0-x"
    (out / f"checkpoint-{len(results)}").mkdir(parents=True)
    (out / "logging.jsonl").write_text("".join(json.dumps(
        {"loss": 0.0, "reward": 1.0, "completions/mean_length": 8.0, "global_step/max_steps": f"{s}/{len(results)}"})
        + "\n" for s in range(1, len(results) + 1)))
    trace = tmp_path / "trace"
    trace.mkdir()
    for n, batch in enumerate(results, 1):
        (trace / f"9-{n}.json").write_text(json.dumps({"completions": ["\n\n</think>\n\nfake"] * len(batch),
                                                       "results": batch}))
    return out / f"checkpoint-{len(results)}", trace


def test_components_are_what_the_reward_declares(tmp_path):
    """Fake-HR1 with its hybrid manager: acc, format and the hybrid bonus are components; the manager's bookkeeping
    (group size, preferred mode, group complete) and the plugin's flags and counts are not, though numeric."""
    declared = curves.declared_components([SHIPPED / "fake_hr1.py", SHIPPED / "hybrid_manager.py"])
    assert declared == ["acc", "format", "hybrid_bonus"]
    result = {"score": 2.0, "acc": 1.0, "format": 1.0, "think": 0.0, "no_think": 1.0, "parse_failure": 0.0,
              "reasoning_words": 0.0, "hybrid_bonus": 0.5, "hybrid_group_size": 4.0, "hybrid_preferred": 0.0,
              "hybrid_group_complete": 1.0}
    checkpoint, trace = _swift_grpo(tmp_path, [[result] * 4, [dict(result, acc=0.0, hybrid_bonus=0.0)] * 4])
    rows, meta = curves.collect("grpo", "swift", checkpoint=str(checkpoint), trace_dir=trace,
                                response_prefix="<think>\n", components=declared)
    assert [r["reward_components"] for r in rows] == [{"acc": 1.0, "format": 1.0, "hybrid_bonus": 0.5},
                                                      {"acc": 0.0, "format": 1.0, "hybrid_bonus": 0.0}]
    assert meta["components"] == declared and "skipped_components" not in meta


def test_a_declared_component_no_sample_carries_is_reported_skipped(tmp_path):
    """FakeVLM-R1 without a critic endpoint: consistency is declared but never scored; the meta and the report
    say it was skipped (and the report does not plot it as a flat line)."""
    from fakehr_orchestra.evaluation.metrics import score_file
    from fakehr_orchestra.evaluation.report import build_report

    declared = curves.declared_components([SHIPPED / "fakevlm_r1.py"])
    assert declared == ["acc", "format", "dialectic", "length", "consistency"]
    result = {"score": 0.9, "acc": 1.0, "format": 1.0, "dialectic": 1.0, "length": 0.5, "pairs": 1.0,
              "reasoning_words": 20.0, "parse_failure": 0.0}
    checkpoint, trace = _swift_grpo(tmp_path, [[result] * 2])
    rows, meta = curves.collect("grpo", "swift", checkpoint=str(checkpoint), trace_dir=trace,
                                answer_format="fakevlm_r1", components=declared)
    assert set(rows[0]["reward_components"]) == {"acc", "format", "dialectic", "length"}
    assert list(meta["skipped_components"]) == ["consistency"]
    path = curves.write(tmp_path / "run", "grpo", rows, meta)
    preds = tmp_path / "pred.jsonl"
    preds.write_text("".join(json.dumps({"file_path": f"i{i}.png", "label": lab, "pred": lab, "response": lab})
                             + "\n" for i, lab in enumerate(["real", "fake"])))
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(score_file(preds, samples=0)))
    written = build_report([metrics], ["grpo"], tmp_path / "report", curves=[f"grpo={path}"])
    text = written["markdown"].read_text()
    assert "| reward: consistency | 0 | skipped |" in text.replace("run | grpo ", "")
    report = json.loads(written["json"].read_text())
    assert list(report["curves"][0]["skipped_components"]) == ["consistency"]


def test_a_reward_that_declares_nothing_has_every_numeric_key_but_score(tmp_path):
    plugin = tmp_path / "mine.py"
    plugin.write_text("def compute_score(**kw):\n    return {'score': 1.0}\n")
    assert curves.declared_components([plugin]) is None
    checkpoint, trace = _swift_grpo(tmp_path, [[{"score": 1.0, "acc": 1.0, "flag": True, "note": "x"}]])
    rows, meta = curves.collect("grpo", "swift", checkpoint=str(checkpoint), trace_dir=trace, components=None)
    assert rows[0]["reward_components"] == {"acc": 1.0}
    assert "declares no COMPONENTS" in meta["components"]


@pytest.mark.parametrize("plugin", ["fake_hr1", "fakevlm_r1"])
def test_the_shipped_rewards_declare_keys_they_return(plugin):
    """A declared component the plugin never returns would always read as skipped."""
    from fakehr_orchestra.plugins import load_plugin_file

    module = load_plugin_file(SHIPPED / f"{plugin}.py")
    if plugin == "fake_hr1":
        result = module.score_response("\n\n</think>\n\nfake", "fake", w_correct=1.0, w_format=0.5)
        assert set(module.COMPONENTS) <= set(result)
    else:  # consistency comes only with a critic
        result = module.score_rules("<think>[Why fake] a [If real] b</think><answer>Fake</answer>", "fake")
        assert set(module.COMPONENTS) - {"consistency"} <= set(result)
