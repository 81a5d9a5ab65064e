"""The eval verbs' errors: a clear message and exit 2, never a traceback, and nothing loaded or written."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from tests.conftest import ROOT

RECIPE = str(ROOT / "recipes" / "fake_hr1.yaml")


def test_infer_reports_every_bad_row_before_loading_a_model(tmp_path):
    data = tmp_path / "eval.jsonl"
    data.write_text(json.dumps({"file_path": "nope.png", "label": "fake"}) + "\n" +
                    json.dumps({"file_path": "x.png", "label": "maybe"}) + "\n")
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(cli, ["eval", "infer", RECIPE, "-p", "smoke", "--model", str(tmp_path),
                                      "--data", str(data), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "eval.jsonl:1" in result.output and "image not found" in result.output
    assert "eval.jsonl:2" in result.output and "'maybe'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_infer_without_an_eval_set(tmp_path):
    result = CliRunner().invoke(cli, ["eval", "infer", RECIPE, "--model", str(tmp_path)])
    assert result.exit_code == 2 and "pass --data" in result.output


def test_score_and_report_errors(tmp_path):
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"key": "a", "label": "fake", "pred": "fake"}) + "\n")
    (tmp_path / "p.jsonl.meta.json").write_text(json.dumps({"rows": 3, "settings": {"bootstrap_samples": 7}}))
    result = CliRunner().invoke(cli, ["eval", "score", str(pred), "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 2 and "1 of 3 images answered" in result.output
    result = CliRunner().invoke(cli, ["eval", "score", str(pred), "--out", str(tmp_path / "m.json"),
                                      "--allow-incomplete"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["bootstrap"]["samples"] == 7  # the recipe's value, recorded by `eval infer`
    result = CliRunner().invoke(cli, ["eval", "report", str(tmp_path / "m.json"), "--names", "a,b",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "2 names for 1 metrics files" in result.output
