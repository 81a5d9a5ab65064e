"""`eval score` / `eval report` on inputs `eval infer` did not write or that were damaged: nothing dropped or
double-counted silently, raw responses scored with the strict parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from fakehr_orchestra.cli import cli
from fakehr_orchestra.evaluation.metrics import score_file
from fakehr_orchestra.evaluation.reader import EvalDataError


def jsonl(path: Path, rows: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return path


ROWS = [{"key": f"i{i}.png", "label": lab, "pred": pred} for i, (lab, pred) in
        enumerate([("fake", "fake"), ("real", "real"), ("fake", "real"), ("real", "real")])]


@pytest.mark.parametrize("tail", ['{"key": "i9.png", "label": "fa', '{"key": "i9.png", "label": \n'])
def test_broken_last_row_without_meta_is_an_error(tmp_path: Path, tail: str) -> None:
    pred = jsonl(tmp_path / "p.jsonl", ROWS, tail)
    with pytest.raises(EvalDataError, match=r"p\.jsonl:5: not JSON"):
        score_file(pred, samples=0)


def test_corrupt_meta_is_a_clear_error(tmp_path: Path) -> None:
    pred = jsonl(tmp_path / "p.jsonl", ROWS)
    for text in ('{"rows": 4', "[]", '{"rows": "many"}', "\xff"):
        (tmp_path / "p.jsonl.meta.json").write_text(text, encoding="latin-1")
        result = CliRunner().invoke(cli, ["eval", "score", str(pred), "--out", str(tmp_path / "m.json")])
        assert result.exit_code == 2 and "p.jsonl.meta.json" in result.output, result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_pred_and_label_in_any_case(tmp_path: Path) -> None:
    rows = [{"key": "a", "label": "FAKE", "pred": "FAKE"}, {"key": "b", "label": "Real", "pred": " real "}]
    m = score_file(jsonl(tmp_path / "p.jsonl", rows), samples=0)
    assert m["overall"]["accuracy"] == 1.0 and m["overall"]["unparseable"] == 0


def test_rows_without_a_key_are_checked_for_duplicates(tmp_path: Path) -> None:
    rows = [{"label": r["label"], "pred": r["pred"], "response": f"r{i}"} for i, r in enumerate(ROWS)]
    with pytest.raises(EvalDataError, match="appears twice"):
        score_file(jsonl(tmp_path / "p.jsonl", rows * 2), samples=0)
    by_path = [{"file_path": r["key"], "label": r["label"], "pred": r["pred"]} for r in ROWS]
    with pytest.raises(EvalDataError, match="image i0.png appears twice"):
        score_file(jsonl(tmp_path / "q.jsonl", by_path * 2), samples=0)


def test_report_refuses_runs_on_different_eval_sets(tmp_path: Path) -> None:
    runner = CliRunner()
    for name, rows in (("a", ROWS), ("b", ROWS[:3]), ("c", ROWS[:3] + [{**ROWS[3], "key": "other.png"}])):
        jsonl(tmp_path / f"{name}.jsonl", rows)
        r = runner.invoke(cli, ["eval", "score", str(tmp_path / f"{name}.jsonl"), "--out", str(tmp_path / f"{name}.json"),
                                "--bootstrap", "0"])
        assert r.exit_code == 0, r.output
    for other, why in (("b", "different numbers of images"), ("c", "not the same images")):
        args = ["eval", "report", str(tmp_path / "a.json"), str(tmp_path / f"{other}.json"), "--out",
                str(tmp_path / f"r{other}")]
        r = runner.invoke(cli, args)
        assert r.exit_code == 2 and why in r.output and "--allow-different-eval-sets" in r.output, r.output
        r = runner.invoke(cli, args + ["--allow-different-eval-sets"])
        assert r.exit_code == 0 and "WARNING" in r.output
        assert "different eval sets" in (tmp_path / f"r{other}" / "report.md").read_text()


# responses from another tool: the traps the strict parser must not read as an answer
TRAPS = [
    ("fake", "<think>\n\n</think>\n\nfake", "fake"),
    ("real", "<think>\nlooks fine\n</think>\n\nreal", "real"),
    ("real", "real", "real"),
    ("fake", "<think>\n\n</think>\n\nunrealistic", None),  # contains 'real', is no answer
    ("real", "", None),  # empty answer
    ("fake", "<think>\n\n</think>\n\nreal or fake", None),
    ("fake", "<think>a</think><think>b</think>\n\nfake", "fake"),  # two think blocks: label parses, mode unknown
    ("real", "<think>\n\n</think>\n\nfake", "fake"),
]


def test_answer_format_scores_responses_only_with_seed_eval_set(tmp_path: Path) -> None:
    seed = jsonl(tmp_path / "eval.jsonl", [{"file_path": f"img{i}.jpg", "label": lab, "category": "c" + str(i % 2)}
                                           for i, (lab, _, _) in enumerate(TRAPS)])
    responses = jsonl(tmp_path / "out.jsonl", [{"file_path": f"img{i}.jpg", "response": text}
                                               for i, (_, text, _) in enumerate(TRAPS)])
    out = tmp_path / "m.json"
    result = CliRunner().invoke(cli, ["eval", "score", str(responses), "--out", str(out), "--answer-format",
                                      "fake_hr1", "--data", str(seed), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "strict (unparseable = wrong class)" in result.output
    m = json.loads(out.read_text())
    y = [1 if lab == "fake" else 0 for lab, _, _ in TRAPS]
    # strict parse: unparseable counts as the wrong class
    strict = [(1 if p == "fake" else 0) if p else 1 - t for (_, _, p), t in zip(TRAPS, y)]
    s = m["overall"]["strict"]
    assert s["accuracy"] == pytest.approx(accuracy_score(y, strict))
    assert s["precision"] == pytest.approx(precision_score(y, strict))
    assert s["f1"] == pytest.approx(f1_score(y, strict))
    assert s["fake_recall"] == pytest.approx(recall_score(y, strict))
    assert s["counting"].startswith("strict") and m["overall"]["counting"].startswith("lenient")
    assert m["overall"]["unparseable"] == 3 and m["overall"]["accuracy"] == pytest.approx(4 / 8)
    assert m["run"]["answer_format"] == "fake_hr1" and set(m["groups"]["category"]["values"]) == {"c0", "c1"}


def test_responses_need_a_format_labels_and_a_parse(tmp_path: Path) -> None:
    rows = [{"file_path": "a.jpg", "label": "fake", "response": "the answer is yes"},
            {"file_path": "b.jpg", "label": "real", "response": "maybe"}]
    pred = jsonl(tmp_path / "p.jsonl", rows)
    runner = CliRunner()
    r = runner.invoke(cli, ["eval", "score", str(pred), "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "--answer-format" in r.output
    r = runner.invoke(cli, ["eval", "score", str(pred), "--out", str(tmp_path / "m.json"), "--answer-format",
                            "fakevlm_r1"])
    assert r.exit_code == 2 and "none of the 2 responses parses as fakevlm_r1" in r.output
    assert not (tmp_path / "m.json").exists()
    nolabel = jsonl(tmp_path / "n.jsonl", [{"file_path": "a.jpg", "response": "real"}])
    r = runner.invoke(cli, ["eval", "score", str(nolabel), "--out", str(tmp_path / "m.json"), "--answer-format",
                            "fake_hr1"])
    assert r.exit_code == 2 and "--data" in r.output
    neither = jsonl(tmp_path / "x.jsonl", [{"file_path": "a.jpg", "label": "real"}])
    r = runner.invoke(cli, ["eval", "score", str(neither), "--out", str(tmp_path / "m.json")])
    assert r.exit_code == 2 and "neither a parsed answer" in r.output
