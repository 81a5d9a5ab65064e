"""The CLI: light to start, exact output formats, and user mistakes as one clear message with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from tests.conftest import RECIPES, ROOT

HEAVY = ("torch", "swift", "verl", "ray", "transformers", "vllm")


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["render", "--help"],
                                  ["render", "recipes/fake_hr1.yaml", "--stage", "sft"],
                                  ["render", "recipes/fake_hr1.yaml", "--stage", "grpo", "-p", "smoke",
                                   "--format", "json"]])
def test_help_and_render_import_no_framework(args):
    code = ("import sys\nfrom fakehr_orchestra.cli import cli\n"
            f"try:\n    cli.main({args!r}, prog_name='fakehr-orchestra')\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\n")
    loaded = _modules_after(code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy


def test_render_json_has_argv_env_cwd():
    result = CliRunner().invoke(cli, ["render", str(RECIPES / "fake_hr1.yaml"), "--stage", "sft", "--format", "json",
                                      "--versions", "swift=4.6"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["argv"][:2] == ["swift", "sft"] and "--tuner_type" in plan["argv"]
    assert plan["env"]["NPROC_PER_NODE"] == "16" and plan["cwd"] == "."


def test_render_shell_says_what_it_translated():
    result = CliRunner().invoke(cli, ["render", str(RECIPES / "fake_hr1.yaml"), "--stage", "sft",
                                      "--versions", "swift=4.6"])
    assert result.exit_code == 0
    assert "# translated: swift flag train_type -> tuner_type" in result.output
    assert "# from the environment at launch: WORLD_SIZE, RANK, MASTER_ADDR" in result.output


@pytest.mark.parametrize("content,args,expect", [
    ("name: x\nsft:\n  model: a\n   x: 1\n", [], "malformed YAML"),
    ("name: x\nmethod: fake_hr1\nclustr: {}\n", [], "did you mean 'cluster'?"),
    ("name: x\nmethod: fake_hr1\ncluster: {gpus_per_node: lots}\n", [], "cluster.gpus_per_node"),
    ("extends: missing.yaml\n", [], "extended recipe not found"),
    ("name: x\nmethod: fake_hr1\n", ["cluster.nodez=2"], "did you mean 'cluster.nodes'?"),
])
def test_bad_input_is_one_clear_error_and_exit_2(tmp_path, content, args, expect):
    path = tmp_path / "r.yaml"
    path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "render", str(path), "--stage", "sft", *args],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert expect in proc.stderr, proc.stderr
    assert str(path) in proc.stderr or (args and "override" in proc.stderr), proc.stderr  # names where it is
    assert "Traceback" not in proc.stderr + proc.stdout


def test_render_of_a_missing_stage_is_a_clear_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\nmethod: fake_hr1\n")
    result = CliRunner().invoke(cli, ["render", str(path), "--stage", "grpo"])
    assert result.exit_code == 2 and "has no 'grpo' section" in result.output


def test_recipes_ls_show_cp(tmp_path):
    runner = CliRunner()
    listing = runner.invoke(cli, ["recipes", "ls"]).output
    assert "fake_hr1" in listing and "fakevlm_r1" in listing and "profile smoke" in listing
    shown = runner.invoke(cli, ["recipes", "show", "fake_hr1", "-p", "smoke", "vars.fixtures=/fx"])
    assert shown.exit_code == 0 and "model: /fx/model" in shown.output
    dest = tmp_path / "mine.yaml"
    assert runner.invoke(cli, ["recipes", "cp", "fakevlm_r1", str(dest)]).exit_code == 0
    assert dest.read_text() == (RECIPES / "fakevlm_r1.yaml").read_text()
    assert runner.invoke(cli, ["recipes", "cp", "fakevlm_r1", str(dest)]).exit_code == 2
    assert "_common" not in listing  # a shared base, not a method
    # the copy loads from its own folder: its base is ${shipped:...}, the named profile found among the shipped ones
    copied = runner.invoke(cli, ["recipes", "show", str(dest), "-p", "smoke", "vars.fixtures=/fx"])
    assert copied.exit_code == 0 and "model: /fx/model" in copied.output, copied.output
    assert runner.invoke(cli, ["recipes", "cp", "smoke", str(tmp_path / "profiles") + "/"]).exit_code == 0
    assert (tmp_path / "profiles" / "smoke.yaml").read_text() == (RECIPES / "profiles" / "smoke.yaml").read_text()


def test_recipes_show_explain_prints_the_schema_descriptions():
    out = CliRunner().invoke(cli, ["recipes", "show", "fake_hr1", "--explain"])
    assert out.exit_code == 0, out.output
    assert "cluster.slurm.time = None  # sbatch --time" in out.output
    assert "grpo.reward.path = '" in out.output and "# the reward plugin file" in out.output
