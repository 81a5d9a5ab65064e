"""Plans quote only at the shell boundary: the shell form, run by bash, gives back exactly the argv and env."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.engines.plan import MissingEnvError, Plan
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES

NASTY = ["it's", 'say "hi"', "$HOME", "a b", "back\\slash\\n", "*", "", "new\nline", "${NOT_A_REF}", "ünï"]


def _argv_seen_by_bash(plan: Plan, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    probe = [sys.executable, "-c", "import json,os,sys; print(json.dumps([sys.argv[1:], dict(os.environ)]))"]
    shell_plan = Plan(stage=plan.stage, argv=probe + plan.argv, env=plan.env, env_refs=plan.env_refs)
    out = subprocess.run(["bash", "-c", shell_plan.to_shell()], env=environ, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_shell_form_round_trips_awkward_values():
    plan = Plan(stage="t", argv=NASTY, env={"A": "x y", "B": "it's"})
    argv, env = _argv_seen_by_bash(plan, {"PATH": "/usr/bin:/bin"})
    assert argv == NASTY
    assert env["A"] == "x y" and env["B"] == "it's"


def test_launch_refs_expand_in_shell_and_in_resolve():
    plan = Plan(stage="t", argv=["--n", "${WORLD_SIZE}", "k=${RANK}/x"], env={"NNODES": "${WORLD_SIZE}"},
                env_refs=["WORLD_SIZE", "RANK"])
    environ = {"PATH": "/usr/bin:/bin", "WORLD_SIZE": "4", "RANK": "it's 1"}
    argv, env = _argv_seen_by_bash(plan, environ)
    assert argv == ["--n", "4", "k=it's 1/x"] and env["NNODES"] == "4"
    resolved = plan.resolve(environ)
    assert resolved.argv == argv and resolved.env == {"NNODES": "4"} and resolved.env_refs == []


def test_resolve_names_every_missing_variable():
    plan = Plan(stage="sft", argv=["${A}", "${B}"], env_refs=["A", "B"])
    with pytest.raises(MissingEnvError, match="A, B"):
        plan.resolve({})


def test_rendered_seed_sft_survives_the_shell():
    plan = render(load_recipe(RECIPES / "fake_hr1.yaml"), "sft", {"swift": "4.6"})
    environ = {"PATH": "/usr/bin:/bin", "WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "10.0.0.1"}
    argv, env = _argv_seen_by_bash(plan, environ)
    assert argv == plan.resolve(environ).argv
    assert env["NNODES"] == "2" and env["MASTER_ADDR"] == "10.0.0.1"


def test_json_round_trip():
    plan = render(load_recipe(RECIPES / "fake_hr1.yaml"), "grpo", {"verl": "0.9"})
    assert Plan.from_dict(json.loads(plan.to_json())) == plan


# ------------------------------------------------------------------ the facts a plan carries (no argv re-parsing)

def test_swift_plan_carries_engine_world_output_and_the_recipe_key_of_every_flag():
    recipe = load_recipe(RECIPES / "fake_hr1.yaml")
    plan = render(recipe, "sft", {"swift": "4.6"})
    assert (plan.engine, plan.entrypoint, plan.launcher) == ("swift", "swift sft", "torchrun")
    assert plan.options == plan.argv[2:] and plan.argv[:2] == ["swift", "sft"]
    assert plan.output_dir == recipe.model.sft.output_dir
    assert (plan.nnodes, plan.procs_per_node) == ("${WORLD_SIZE}", "16")
    # a translated flag still names the key the recipe wrote (train_type, README spelling)
    assert plan.origin("--tuner_type", "?") == "sft.args.train_type"
    assert plan.origin("--model", "?") == "sft.model" and plan.origin("--dataset", "?") == "sft.dataset"
    assert plan.origin("env:NNODES", "?") == "cluster.nodes"
    flags = [a for a in plan.options if a.startswith("--")]
    assert all(f in plan.origins for f in flags), [f for f in flags if f not in plan.origins]
    assert plan.world({"WORLD_SIZE": "2"}) == (2, 16)
    with pytest.raises(MissingEnvError):
        plan.world({})


def test_verl_plan_carries_ray_world_and_origins_and_renders_a_node_count_once():
    recipe = load_recipe(RECIPES / "fake_hr1.yaml")
    plan = render(recipe, "grpo", {"verl": "0.9"})
    assert (plan.engine, plan.entrypoint, plan.launcher, plan.head) == ("verl", "verl.trainer.main_ppo", "ray", 3)
    assert plan.output_dir == "${model_output_path}"
    assert (plan.nnodes, plan.procs_per_node) == ("1", "16")
    assert plan.origin("reward.custom_reward_function.path", "?") == "grpo.reward.path"
    assert plan.origin("+reward.custom_reward_function.reward_kwargs.w_format", "?") == "grpo.reward.kwargs.w_format"
    assert plan.origin("actor_rollout_ref.rollout.n", "?") == "grpo.overrides.actor_rollout_ref.rollout.n"
    keys = [a.split("=", 1)[0].lstrip("+") for a in plan.options]
    assert all(k in plan.origins for k in keys)
    four = render(recipe, "grpo", {"verl": "0.9"}, nodes=4)
    assert four.nnodes == "4" and [a for a in four.argv if a.startswith("trainer.nnodes=")] == ["trainer.nnodes=4"]
    assert four.origin("trainer.nnodes", "?") == "--nodes"


def test_old_plan_files_without_facts_still_load():
    plan = Plan.from_dict({"stage": "sft", "argv": ["swift", "sft"], "env": {}, "cwd": "."})
    assert plan.launcher == "local" and plan.origins == {} and plan.output_dir is None
