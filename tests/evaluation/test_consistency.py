"""Logical consistency in evaluation: `eval consistency` asks a real HTTP critic (tests/rewards/critic_server.py) with
the recipe's template and client bounds, only about answers with reasoning; `eval score --consistency` and `eval
report` show the mean with a bootstrap CI overall and per category; without a critic the report says why not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from fakehr_orchestra.cli import cli
from tests.conftest import ROOT
from tests.rewards.critic_server import CriticServer

RECIPE = str(ROOT / "recipes" / "fakevlm_r1.yaml")


def think(words: str, answer: str = "Fake") -> str:
    return f"<think>\n[Why fake] {words}\n[If real] a lens does that too\n</think>\n<answer>{answer}</answer>"


def judge(n: int, body: dict[str, Any]) -> tuple[int, str, float]:
    """Scores by what the reasoning says (requests arrive in any order); 'junk' gets a reply with no score."""
    text = json.dumps(body)
    if "junk" in text:
        return 200, "I cannot tell.", 0.0
    return 200, ("<answer>0.9</answer>" if "firm-clue" in text else "\\box{0.3}"), 0.0


@pytest.fixture()
def predictions(tmp_path: Path) -> Path:
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(image)
    rows = [
        {"key": "a1", "file_path": str(image), "label": "fake", "pred": "fake", "mode": "think", "category": "face",
         "response": think("firm-clue one")},
        {"key": "a2", "file_path": str(image), "label": "real", "pred": "fake", "mode": "think", "category": "face",
         "response": think("weak clue", "Fake")},
        {"key": "a3", "file_path": str(image), "label": "real", "pred": "real", "mode": "think", "category": "scene",
         "response": think("firm-clue two", "Real")},
        {"key": "a4", "file_path": str(image), "label": "fake", "pred": "fake", "mode": "think", "category": "scene",
         "response": think("junk")},
        {"key": "a5", "file_path": str(image), "label": "fake", "pred": "fake", "mode": "no_think",
         "category": "scene", "response": "<answer>Fake</answer>"},
        {"key": "a6", "file_path": str(tmp_path / "gone.png"), "label": "real", "pred": None, "mode": None,
         "category": "face", "response": "", "error": "image not readable"},
    ]
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_consistency_scored_reported_per_model_and_category(predictions: Path, tmp_path: Path) -> None:
    cons, metrics, report = tmp_path / "cons.json", tmp_path / "m.json", tmp_path / "report"
    with CriticServer(judge, models=("thinking-reward-model",)) as server:
        out = run("eval", "consistency", RECIPE, "critic.mode=external", f"critic.url={server.base_url}",
                  "critic.retries=0", "--predictions", str(predictions), "--out", str(cons))
    # only the four answers with reasoning were sent, each with the recipe's template (SophiaVL-R1's prompt)
    assert len(server.requests) == 4
    for body in server.requests:
        assert body["model"] == "thinking-reward-model" and body["temperature"] == 0.0 and "max_tokens" not in body
        text, image = body["messages"][1]["content"]
        assert text["text"].startswith("You are an expert reasoning evaluator.")
        assert "Question: <image>Is this image real or fake?" in text["text"]
        assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert "scored 3 (mean 0.7000), fell back on 1" in out.output
    statuses = {r["key"]: r["status"] for r in json.loads(cons.read_text())["rows"]}
    assert statuses == {"a1": "scored", "a2": "scored", "a3": "scored", "a4": "fallback", "a5": "no_reasoning",
                        "a6": "image_error"}

    run("eval", "score", str(predictions), "--consistency", str(cons), "--out", str(metrics), "--bootstrap", "200")
    m = json.loads(metrics.read_text())
    assert m["overall"]["consistency"] == pytest.approx(0.7)  # (0.9 + 0.3 + 0.9) / 3: fallback and others left out
    lo, hi = m["overall"]["consistency_ci"]
    assert 0.3 <= lo <= 0.7 <= hi <= 0.9
    assert (m["overall"]["consistency_scored"], m["overall"]["consistency_not_scored"]) == (3, 3)
    faces, scenes = m["groups"]["category"]["values"]["face"], m["groups"]["category"]["values"]["scene"]
    assert faces["consistency"] == pytest.approx(0.6) and scenes["consistency"] == pytest.approx(0.9)
    assert m["consistency"]["groups"]["category"]["scene"]["no_reasoning"] == 1

    run("eval", "report", str(metrics), "--names", "grpo", "--out", str(report))
    md = (report / "report.md").read_text()
    assert "| logical consistency (critic, mean) | 0.7 |" in md
    assert "consistency CI" in md and "| consistency: answers scored | 3 |" in md
    assert "| category | n | accuracy | real_recall | fake_recall | unparseable | think_rate | mean_response_tokens " \
           "| consistency |" in md
    assert "| face | 3 |" in md and md.split("| face | 3 |")[1].split("\n")[0].rstrip().endswith("| 0.6 |")
    assert "critic `thinking-reward-model` (template sophiavl_r1)" in md
    assert "1 without a score from the critic (fallback), 1 without reasoning, 1 image errors" in md


def test_without_a_critic_the_report_says_not_computed(predictions: Path, tmp_path: Path) -> None:
    cons, metrics, report = tmp_path / "cons.json", tmp_path / "m.json", tmp_path / "report"
    out = run("eval", "consistency", RECIPE, "critic.mode=off", "--predictions", str(predictions), "--out", str(cons))
    assert "not computed: no critic configured" in out.output
    run("eval", "score", str(predictions), "--consistency", str(cons), "--out", str(metrics))
    m = json.loads(metrics.read_text())
    assert m["consistency"] == {"computed": False, "reason": "no critic configured (critic.mode is off)"}
    assert "consistency" not in m["overall"]
    run("eval", "report", str(metrics), "--names", "sft", "--out", str(report))
    md = (report / "report.md").read_text()
    assert "- sft: logical consistency not computed: no critic configured (critic.mode is off)" in md
    assert "| logical consistency (critic, mean) | n/a |" in md


def test_scores_for_other_predictions_are_refused(predictions: Path, tmp_path: Path) -> None:
    cons = tmp_path / "cons.json"
    cons.write_text(json.dumps({"computed": True, "rows": [{"key": "zzz", "status": "scored", "score": 1.0}]}))
    result = CliRunner().invoke(cli, ["eval", "score", str(predictions), "--consistency", str(cons), "--out",
                                      str(tmp_path / "m.json")])
    assert result.exit_code == 2 and "consistency scores are for other images" in result.output
    assert not (tmp_path / "m.json").exists()
