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
from tests.conftest import require_module

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
                                answer_format="fake_hr1", response_prefix="<think>\n")
    _check(rows)
    assert rows[0]["reward_components"] == {"acc": 0.5, "format": 1.0}
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
                                response_prefix="<think>\n")
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
