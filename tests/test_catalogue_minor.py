"""The minor catalogue cases: shipped references stay in the shipped tree, a recipe name cannot move the default
run dir, and `reward score` with a critic closes its HTTP session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.resources import ShippedFileError, shipped_file
from tests.conftest import RECIPES, ROOT
from tests.rewards.critic_server import CriticServer, fixed


@pytest.mark.parametrize("ref", ["rewards/../../../etc/hostname", "rewards/../recipes/fake_hr1.yaml/../../x",
                                 "launch/../../pyproject.toml"])
def test_a_shipped_reference_cannot_leave_its_folder(ref):
    with pytest.raises(ShippedFileError, match="leaves the shipped"):
        shipped_file(ref)


def test_a_shipped_reference_in_a_recipe_is_refused():
    res = CliRunner().invoke(cli, ["recipes", "show", str(RECIPES / "fake_hr1.yaml"),
                                   "grpo.reward.path=${shipped:rewards/../../../etc/hostname}"])
    assert res.exit_code == 2 and "leaves the shipped" in res.output, res.output


@pytest.mark.parametrize("name", ["../../../x", "a/b", "", ".hidden", "x\ny"])
def test_a_recipe_name_is_one_file_name_word(name):
    res = CliRunner().invoke(cli, ["recipes", "show", str(RECIPES / "fake_hr1.yaml"), f"name={json.dumps(name)}"])
    assert res.exit_code == 2 and "name" in res.output, res.output


def test_reward_score_with_a_critic_closes_its_session(tmp_path):
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"response": "<think>[Why fake] a [If real] b</think><answer>Fake</answer>",
                                     "ground_truth": "fake"}) + "\n")
    with CriticServer(fixed('{"score": 0.9}')) as server:
        proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "reward", "score",
                               str(ROOT / "rewards" / "fakevlm_r1.py"), str(responses), "--kwargs",
                               f"critic_base_url={server.base_url}", "--kwargs", "critic_model=judge",
                               "--kwargs", "length_min_words=1"],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "answered 1" in proc.stdout + proc.stderr
    assert "Unclosed" not in proc.stderr, proc.stderr
