"""`eval score --protocol fakevlm` against FakeVLM's published parsing, reimplemented here from its script, and
AP against scikit-learn."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, average_precision_score, recall_score

from fakehr_orchestra.answers import parse_answer
from fakehr_orchestra.cli import cli
from fakehr_orchestra.evaluation.protocols import FakeVLMParser


def fakevlm_published(responses: list[str], seed: int) -> list[int]:
    """opendatalab/FakeVLM scripts/eval_vllm.py (commit fdcdcf1), its parsing loop as written there (1 = real,
    0 = fake); only the global `random` is replaced by a seeded generator."""
    rng = random.Random(seed)
    pred_cls = []
    for response in responses:
        if 'real' in response.split('.')[0].lower():
            pred_cls.append(1)
        elif 'fake' in response.split('.')[0].lower():
            pred_cls.append(0)
        else:
            try:
                if 'real' in response.split('.')[1].lower():
                    pred_cls.append(1)
                elif 'fake' in response.split('.')[1].lower():
                    pred_cls.append(0)
                else:
                    pred_cls.append(rng.choice([0, 1]))
            except Exception:
                pred_cls.append(rng.choice([0, 1]))
    return pred_cls


CRAFTED = [
    ("fake", "The texture is unrealistic. This image is fake."),   # substring: reads as real
    ("fake", ""),                                                 # empty: coin flip
    ("real", "Hard to say. It looks real to me."),                # second sentence decides
    ("fake", "Hard to say. Maybe. It is fake."),                  # verdict in the third sentence: coin flip
    ("fake", "no verdict at all"),                                # no '.': IndexError in theirs, coin flip
    ("real", "Both real and fake cues."),                         # 'real' is tested first
    ("fake", "<think>[Why fake] odd hands</think>\n<answer>Fake</answer>"),
    ("real", "<think>\n\n</think>\n\nreal"),
    ("fake", "<think>\nthe lighting is unrealistic\n</think>\n\nfake"),  # strict: fake; FakeVLM: real
    ("real", "FAKE."),
    ("real", "REAL"),
    ("fake", "..."),                                              # empty sentences: coin flip
]


def crafted_rows() -> list[dict]:
    rng = random.Random(7)
    rows = []
    for i, (label, response) in enumerate(CRAFTED * 5):
        rows.append({"key": f"img{i}.png", "label": label, "response": response,
                     "category": "a" if i % 3 else "b", "prob_fake": rng.random()})
    for i in range(40):  # junk answers: many coin flips, so the seeded stream's order matters
        label = "fake" if i % 2 else "real"
        rows.append({"key": f"junk{i}.png", "label": label, "response": rng.choice(["", "hmm", "x. y. z"]),
                     "category": "b", "prob_fake": rng.random()})
    for row in rows:
        parsed = parse_answer(row["response"], "fake_hr1")
        row.update(pred=parsed.label, mode=parsed.mode, well_formed=parsed.well_formed)
    return rows


def test_parser_equals_the_published_loop():
    responses = [r for _, r in CRAFTED] * 3 + ["", "a. b", "real", "x.fake"]
    for seed in (0, 1, 5):
        parser = FakeVLMParser(seed)
        ours = [parser(r) for r in responses]
        theirs = ["real" if p == 1 else "fake" for p in fakevlm_published(responses, seed)]
        assert ours == theirs
    assert FakeVLMParser(0)("The texture is unrealistic. This image is fake.") == "real"


@pytest.mark.parametrize("seed", [0, 3])
def test_score_protocol_fakevlm_beside_strict(tmp_path, seed):
    rows = crafted_rows()
    pred = tmp_path / "p.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runner = CliRunner()
    plain, paper = tmp_path / "plain.json", tmp_path / "paper.json"
    result = runner.invoke(cli, ["eval", "score", str(pred), "--out", str(plain), "--bootstrap", "0",
                                 "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["eval", "score", str(pred), "--out", str(paper), "--bootstrap", "0",
                                 "--seed", str(seed), "--protocol", "fakevlm"])
    assert result.exit_code == 0, result.output
    assert "fakevlm parsing (paper-comparable)" in result.output
    m0, m = json.loads(plain.read_text()), json.loads(paper.read_text())
    assert m["overall"]["strict"] == m0["overall"]["strict"]  # the strict figures are untouched

    y = [1 if r["label"] == "real" else 0 for r in rows]  # FakeVLM's coding: 1 = real
    theirs = fakevlm_published([r["response"] for r in rows], seed)
    fv = m["overall"]["fakevlm"]
    assert fv["accuracy"] == pytest.approx(accuracy_score(y, theirs))
    assert fv["real_recall"] == pytest.approx(recall_score(y, theirs, pos_label=1))
    assert fv["fake_recall"] == pytest.approx(recall_score(y, theirs, pos_label=0))
    guesses = sum(1 for r in rows
                  if not any(w in s.lower() for s in r["response"].split(".")[:2] for w in ("real", "fake")))
    assert fv["guessed"] == guesses > 40
    assert fv["accuracy"] != m["overall"]["strict"]["accuracy"]
    # per category, as FakeVLM's calculate_results_acc reports them (total_accuracy per cate)
    for cate in ("a", "b"):
        idx = [i for i, r in enumerate(rows) if r["category"] == cate]
        expected = sum(y[i] == theirs[i] for i in idx) / len(idx)
        got = m["groups"]["category"]["values"][cate]["fakevlm_accuracy"]
        assert got == pytest.approx(expected)
    # AP beside AUC, from P(fake) with fake as the positive class
    ap = average_precision_score([1 - v for v in y], [r["prob_fake"] for r in rows])
    assert m["overall"]["ap"] == pytest.approx(ap) and m0["overall"]["ap"] == pytest.approx(ap)

    result = runner.invoke(cli, ["eval", "report", str(plain), str(paper), "--names", "strict_only,with_paper",
                                 "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Strict and paper-protocol figures" in md
    strict_row = next(line for line in md.splitlines() if line.startswith("| accuracy: strict"))
    paper_row = next(line for line in md.splitlines() if line.startswith("| accuracy: fakevlm parsing"))
    assert f"{100 * m['overall']['strict']['accuracy']:.2f}%" in strict_row
    assert f"{100 * fv['accuracy']:.2f}%" in paper_row and "n/a" in paper_row  # the plain run has none
    assert "| AP (average precision, fake) |" in md


def test_protocol_needs_the_raw_response(tmp_path):
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"key": "a", "label": "fake", "pred": "fake"}) + "\n")
    result = CliRunner().invoke(cli, ["eval", "score", str(pred), "--out", str(tmp_path / "m.json"),
                                      "--protocol", "fakevlm"])
    assert result.exit_code == 2 and "no raw 'response'" in result.output
