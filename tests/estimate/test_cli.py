"""`fakehr-orchestra estimate`: both stages' verdicts for the seed recipe without importing torch or a framework,
JSON, what-if overrides, clear errors; and `validate`'s warning when the recipe declares its GPU."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.estimate.hook import check_memory
from fakehr_orchestra.preflight.context import Context
from fakehr_orchestra.preflight.report import Report
from fakehr_orchestra.recipe import load_recipe
from tests.cli.test_cli import HEAVY, _modules_after
from tests.conftest import RECIPES, ROOT

SEED = str(RECIPES / "fake_hr1.yaml")


def test_estimate_imports_no_framework():
    """Issue 15 item 4: `estimate recipes/fake_hr1.yaml --gpu h100-80gb` runs without torch (the time it takes is
    a benchmark figure, see docs/estimate.md, not a test)."""
    code = ("from fakehr_orchestra.cli import cli\n"
            "try:\n    cli.main(['estimate', 'recipes/fake_hr1.yaml', '--gpu', 'h100-80gb'], prog_name='x')\n"
            "except SystemExit as e:\n    assert e.code in (0, 1), e.code\n")
    loaded = _modules_after(code)
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []


def test_seed_recipe_prints_both_stages_verdicts():
    result = CliRunner().invoke(cli, ["estimate", SEED, "--gpu", "h100-80gb"])
    assert result.exit_code in (0, 1), result.output
    assert "[sft] fits:" in result.output
    assert "[grpo] does not fit:" in result.output and result.exit_code == 1
    assert "cheapest changes that fit" in result.output and "free_cache_engine: true" in result.output
    assert "cluster.nodes is ${env:WORLD_SIZE} (set at launch): assumed 1 node" in result.output


def test_json_and_what_if_override():
    result = CliRunner().invoke(cli, ["estimate", SEED, "--gpu", "h100-80gb", "--json", "--stage", "grpo",
                                      "grpo.overrides.actor_rollout_ref.rollout.free_cache_engine=true"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (grpo,) = data["stages"]
    assert grpo["verdict"] in ("fits", "tight") and grpo["model"]["params"]["total"] == 8_292_166_656
    assert {p["name"] for p in grpo["phases"]} >= {"rollout (vLLM generating)", "update (actor forward + backward)"}
    assert grpo["time"]["tokens_per_step"] == 32 * 8 * (8192 + 2048)


def test_gpu_memory_and_nodes_options():
    small = CliRunner().invoke(cli, ["estimate", SEED, "--gpu-memory-gb", "24", "--stage", "sft", "--json"])
    big = CliRunner().invoke(cli, ["estimate", SEED, "--gpu-memory-gb", "24", "--stage", "sft", "--json",
                                   "--nodes", "8"])
    a, b = json.loads(small.output)["stages"][0], json.loads(big.output)["stages"][0]
    assert b["needed_gib"] < a["needed_gib"] and b["facts"]["world"] == 128


def test_bad_gpu_and_missing_gpu_are_clear_errors():
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "estimate", SEED, "--gpu", "h100-8gb"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "did you mean 'h100-80gb'?" in proc.stderr and "Traceback" not in proc.stderr
    result = CliRunner().invoke(cli, ["estimate", SEED])
    assert result.exit_code == 2 and "name the GPU" in result.output


def test_unknown_cluster_gpu_is_a_recipe_error(tmp_path):
    result = CliRunner().invoke(cli, ["render", SEED, "--stage", "sft", "cluster.gpu=h100-90gb"])
    assert result.exit_code == 2 and "did you mean 'h100-80gb'?" in result.output


def _ctx(rec):
    return Context(rec, Report(recipe=str(rec.path)))


def test_validate_warns_at_the_dominant_key_when_a_declared_gpu_is_too_small():
    rec = load_recipe(SEED, ("cluster.gpu=rtx4090-24gb",), None)
    ctx = _ctx(rec)
    check_memory(ctx, ("sft", "grpo"))
    found = {f.stage: f for f in ctx.report.warnings if f.check == "memory"}
    assert set(found) == {"sft", "grpo"}
    sft = found["sft"]
    assert sft.key == "sft.args.deepspeed" and "does not fit" in sft.message and sft.line is not None
    assert sft.fix and "->" in sft.fix


def test_validate_records_a_fitting_estimate_and_is_silent_without_a_gpu():
    rec = load_recipe(SEED, ("cluster.gpu=h200-141gb",), None)
    ctx = _ctx(rec)
    check_memory(ctx, ("sft",))
    assert not ctx.report.findings and any("memory estimate" in c and "fits" in c for c in ctx.report.checked)
    ctx = _ctx(load_recipe(SEED, (), None))
    check_memory(ctx, ("sft", "grpo"))
    assert not ctx.report.findings and not ctx.report.checked
