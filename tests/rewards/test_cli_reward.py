"""`fakehr-orchestra reward score`: summary, per-record output, kwargs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from tests.conftest import ROOT

RECORDS = [
    {"response": "<think>\n\n</think>\n\nreal", "ground_truth": "real"},
    {"response": "<think>\nodd hands\n</think>\n\nfake", "ground_truth": 0,
     "extra_info": {"label_convention": "fakeclue"}},
    {"response": "unrealistic", "ground_truth": True},
]


def write(path: Path, rows: list) -> Path:  # type: ignore[type-arg]
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["reward", "score", *args], catch_exceptions=False)


def test_summary_and_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "scores.jsonl"
    result = run("fake_hr1:compute_score", str(write(tmp_path / "r.jsonl", RECORDS)), "--kwargs", "w_format=0.25",
                 "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["scored"] == 3 and summary["parse_failures"] == 1
    assert summary["components"]["score"]["mean"] == pytest.approx(2.5 / 3)
    assert summary["mode_mix"] == {"think": pytest.approx(1 / 3), "no_think": pytest.approx(1 / 3),
                                   "neither": pytest.approx(1 / 3)}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["score"] for r in rows] == [1.25, 1.25, 0.0] and rows[2]["line"] == 3


def test_text_summary_async_plugin(tmp_path: Path) -> None:
    rec = [{"response": "<think>[Why fake] a [If real] b</think><answer>Fake</answer>", "ground_truth": "fake"}]
    result = run(str(ROOT / "rewards/fakevlm_r1.py"), str(write(tmp_path / "r.jsonl", rec)),
                 "--kwargs", "length_min_words=1", "--kwargs", "critic_base_url=null")
    assert result.exit_code == 0, result.output
    assert "score" in result.output and "mean 1.0000" in result.output and "parse failures: 0" in result.output


def test_bad_records_and_bad_truth(tmp_path: Path) -> None:
    bad = run(str(ROOT / "rewards/fake_hr1.py"), str(write(tmp_path / "b.jsonl", ["{not json", {"response": "x"}])))
    assert bad.exit_code == 2 and ":1: not JSON" in bad.output and ":2: needs an object" in bad.output
    truth = run(str(ROOT / "rewards/fake_hr1.py"), str(write(tmp_path / "t.jsonl", [RECORDS[0], {
        "response": "real", "ground_truth": 1}])))
    assert truth.exit_code == 1 and "line 2" in truth.output and "declare its convention" in truth.output
    missing = run("rewards/nope.py", str(tmp_path / "t.jsonl"))
    assert missing.exit_code == 2 and "not found" in missing.output
    kw = run(str(ROOT / "rewards/fake_hr1.py"), str(tmp_path / "t.jsonl"), "--kwargs", "w_format=-1")
    assert kw.exit_code == 1 and "must be a finite number >= 0" in kw.output
