"""`validate` against the REAL installed ms-swift and verl (their parsers and Hydra config, not copies).

Broken recipes: the smoke recipe plus one mistake each (override lists below), each with the message it must give.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, require_module

from .conftest import PLUGINS

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require_module("swift")
    require_module("verl")
    require_module("hydra")


def check(overrides: list[str], stages: tuple[str, ...], profile: str | None = "smoke", recipe: str = "fake_hr1",
          **kw):
    from fakehr_orchestra.preflight import validate
    from fakehr_orchestra.recipe import load_recipe
    return validate(load_recipe(RECIPES / f"{recipe}.yaml", overrides, profile), stages, **kw)


def messages(report, level: str = "error") -> list[str]:
    return [f"{f.key}: {f.message} | {f.fix}" for f in report.findings if f.level == level]


# (id, extra overrides, stages, key of the one expected error, words the message must contain)
BROKEN = [
    ("misspelt verl key", ["+grpo.overrides.data.max_promt_length=1024"], ("grpo",),
     "grpo.overrides.data.max_promt_length", ["has no config key 'data.max_promt_length'", "not in struct",
                                              "did you mean 'data.max_prompt_length'"]),
    ("misspelt swift flag", ["+sft.args.learning_rat=1e-4"], ("sft",), "sft.args.learning_rat",
     ["--learning_rat is not a flag of ms-swift", "did you mean 'learning_rate'"]),
    ("bad choice value", ["sft.args.torch_dtype=bf17"], ("sft",), "sft.args.torch_dtype",
     ["invalid choice: 'bf17'", "bfloat16"]),
    ("indivisible batch sizes", ["grpo.overrides.trainer.n_gpus_per_node=4", "grpo.overrides.data.train_batch_size=5",
                                 "grpo.overrides.actor_rollout_ref.rollout.n=2",
                                 "grpo.overrides.actor_rollout_ref.actor.ppo_mini_batch_size=2"], ("grpo",),
     "grpo.overrides.data.train_batch_size",
     ["real_train_batch_size (10) must be divisible by minimal possible batch size (4)"]),
    ("TP not dividing GPUs", ["grpo.overrides.trainer.n_gpus_per_node=4",
                              "grpo.overrides.actor_rollout_ref.rollout.tensor_model_parallel_size=3"], ("grpo",),
     "grpo.overrides.actor_rollout_ref.rollout.tensor_model_parallel_size",
     ["rollout world_size: 4 is not divisible by infer_world_size: 3"]),
    ("image budget over max_prompt_length", ["grpo.overrides.data.max_prompt_length=40"], ("grpo",),
     "grpo.overrides.data.max_prompt_length",
     ["sampled rows", "exceed data.max_prompt_length 40", "filter_overlong_prompts drops them silently"]),
    ("missing data file", ["sft.dataset=[.cache/tiny/data/no_such.jsonl]"], ("sft",), "sft.dataset.0",
     ["dataset .cache/tiny/data/no_such.jsonl does not exist"]),
    ("reward without compute_score", [f"grpo.reward.path={PLUGINS / 'no_compute_score.py'}"], ("grpo",),
     "grpo.reward.name", ["has no function 'compute_score'", "['score']"]),
    # fake_hr1 also exports NNODES=${cluster.nodes} to the verl driver: one mistake, seen from both places
    ("node count mismatch", ["cluster.nodes=2"], ("grpo",), ["grpo.overrides.trainer.nnodes", "grpo.env.NNODES"],
     ["cluster.nodes is 2 but grpo.overrides.trainer.nnodes is 1"]),
]


@pytest.mark.parametrize("name,extra,stages,key,words", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_recipe_gives_its_message(smoke_verl, name, extra, stages, key, words):
    report = check(smoke_verl + extra, stages)
    errors = [f for f in report.errors]
    keys = key if isinstance(key, list) else [key]
    assert [f.key for f in errors] == keys, messages(report)  # exactly the one planted mistake
    text = errors[0].message + " " + (errors[0].fix or "")
    for word in words:
        assert word in text, text
    assert errors[0].file, errors[0]  # every error says where it is: a recipe file or the command-line override
    assert errors[0].file.endswith(("fake_hr1.yaml", "smoke.yaml")) or "override" in errors[0].file, errors[0].file


def test_smoke_verl_base_is_clean(smoke_verl):
    """The base the broken cases start from has no error, so each case's error is the planted one."""
    report = check(smoke_verl, ("sft", "grpo"))
    assert report.ok, messages(report)


@pytest.mark.parametrize("recipe", ["fake_hr1", "fakevlm_r1"])
def test_shipped_smoke_profiles_validate_clean(tiny, recipe, monkeypatch):
    monkeypatch.chdir(ROOT)
    report = check([], ("sft", "grpo"), recipe=recipe)
    assert report.ok, messages(report)
    assert report.warnings == [], messages(report, "warning")  # fakevlm_r1's smoke serves a tiny critic
    if recipe == "fakevlm_r1":
        assert "critic: swift deploy flags against ms-swift 4.6.0" in report.checked


def test_fakevlm_r1_without_critic_warns_and_with_one_does_not(tiny, monkeypatch):
    """The plugin's own preflight() hook: the consistency component is off without an endpoint."""
    monkeypatch.chdir(ROOT)
    off = check(["critic.mode=off"], ("grpo",), recipe="fakevlm_r1")
    assert any("no critic endpoint (critic.mode is off)" in f.message for f in off.warnings)
    on = check([], ("grpo",), recipe="fakevlm_r1")  # the smoke profile's critic server
    assert not any("critic" in f.message for f in on.warnings)


def test_external_critic_is_called_once(tiny, monkeypatch):
    """mode external: validate asks the endpoint as the reward will (models list + a judged request with an
    image); a dead one is an error at critic.url, a scoreless reply a warning."""
    from tests.rewards.critic_server import CriticServer, fixed

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CRITIC_API_KEY", "test-key")  # unset, validate warns (tests/rewards/test_plugin_faults.py)
    ext = ["critic.mode=external", "critic.served_model_name=judge"]
    with CriticServer(fixed('{"score": 0.6}')) as server:
        good = check([*ext, f"critic.url={server.base_url}"], ("grpo",), recipe="fakevlm_r1")
    assert good.ok and len(server.requests) == 1, messages(good)
    assert any(c.startswith(f"critic: ready: {server.base_url} lists 'judge'") for c in good.checked)
    with CriticServer(fixed("blah")) as server:
        junk = check([*ext, f"critic.url={server.base_url}"], ("grpo",), recipe="fakevlm_r1")
    assert junk.ok and [f.key for f in junk.warnings] == ["critic.served_model_name"]
    assert "without a score" in junk.warnings[0].message
    dead = check([*ext, "critic.url=http://127.0.0.1:9/v1"], ("grpo",), recipe="fakevlm_r1")
    assert [f.key for f in dead.errors] == ["critic.url"] and "cannot connect" in dead.errors[0].message


def test_critic_server_mistakes(tiny, monkeypatch):
    monkeypatch.chdir(ROOT)
    flag = check(["+critic.server.args.max_batchsize=4"], ("grpo",), recipe="fakevlm_r1")
    assert [f.key for f in flag.errors] == ["critic.server.args.max_batchsize"], messages(flag)
    assert "not a flag of `swift deploy`" in flag.errors[0].message and "max_batch_size" in flag.errors[0].fix
    cpu = check(["critic.server.backend=vllm"], ("grpo",), recipe="fakevlm_r1")
    assert [f.key for f in cpu.errors] == ["critic.server.backend"], messages(cpu)
    missing = check(["critic.server.model=./no-such-critic"], ("grpo",), recipe="fakevlm_r1")
    assert [f.key for f in missing.errors] == ["critic.server.model"], messages(missing)
    # the full recipe: the critic's GPUs must not be training GPUs too
    overlap = check(["critic.server.cuda_visible_devices=5,6"], ("grpo",), profile=None, recipe="fakevlm_r1",
                    remote_data=True)
    assert [f.key for f in overlap.errors] == ["critic.server.cuda_visible_devices"], messages(overlap)
    assert "GPU(s) 5 serve the critic and train GRPO" in overlap.errors[0].message
    multi = check(["cluster.nodes=2", "grpo.overrides.trainer.nnodes=2"], ("grpo",), profile=None,
                  recipe="fakevlm_r1", remote_data=True, verl_own_checks=False)
    assert "critic.url" in [f.key for f in multi.errors], messages(multi)


def test_fakevlm_r1_full_recipe_validates_with_remote_data(monkeypatch):
    monkeypatch.chdir(ROOT)
    report = check([], ("sft", "grpo"), profile=None, recipe="fakevlm_r1", remote_data=True)
    assert report.ok, messages(report)


def test_shipped_fake_hr1_validates_and_the_readme_batch_size_does_not(monkeypatch):
    """The README's GRPO sets ppo_mini_batch_size 128 > train_batch_size 32, which verl's own ActorConfig.validate
    rejects; the shipped recipe uses 32 (commented) and validates clean (data live on the cluster)."""
    monkeypatch.chdir(ROOT)
    report = check([], ("sft", "grpo"), profile=None, remote_data=True)
    assert report.ok, messages(report)
    # launch-time refs are warnings, never errors
    assert any("from the environment at launch" in f.message for f in report.warnings)
    readme = check(["grpo.overrides.actor_rollout_ref.actor.ppo_mini_batch_size=128"], ("sft", "grpo"),
                   profile=None, remote_data=True)
    assert [f.key for f in readme.errors] == ["grpo.overrides.actor_rollout_ref.actor.ppo_mini_batch_size"]


def test_seed_as_written_reports_the_version_errors(monkeypatch):
    """Must-show 1: the seed's names on ms-swift 4.x / verl 0.9, untranslated."""
    monkeypatch.chdir(ROOT)
    report = check([], ("sft", "grpo"), profile=None, translate=False, remote_data=True)
    by_key = {f.key: f for f in report.errors}
    train_type = by_key["sft.args.train_type"]
    assert "--train_type is not a flag of ms-swift 4." in train_type.message
    assert "tuner_type" in train_type.fix and train_type.line is not None
    reward = by_key["grpo.reward.path"]
    assert reward.message.startswith("'custom_reward_function.path', 'custom_reward_function.name'")
    assert "compose in verl 0.9" in reward.message and "ignored" in reward.message and "default reward" in reward.message
    assert "reward.custom_reward_function.path" in reward.fix
    assert by_key["grpo.reward.manager.name"].message.startswith("'reward_model.reward_manager'")
    assert any(f.key == "sft.env.SIZE_FACTOR" and "$SIZE_FACTOR has no effect on ms-swift 4." in f.message
               for f in report.warnings)


def test_launch_environment_fills_refs(monkeypatch):
    """At launch the env is known: WORLD_SIZE=2 against trainer.nnodes=1 becomes a definite error."""
    monkeypatch.chdir(ROOT)
    report = check(["grpo.overrides.actor_rollout_ref.actor.ppo_mini_batch_size=32"], ("grpo",), profile=None,
                   remote_data=True, environ={"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "h",
                                              "model_path": "m", "train_file_path": "t", "model_output_path": "o"})
    assert "cluster.nodes is 2 but grpo.overrides.trainer.nnodes is 1" in " ".join(messages(report))


def test_cli_json_and_exit_codes(smoke_verl):
    cmd = [str(Path(sys.executable).parent / "fakehr-orchestra"), "validate", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke",
           "--stage", "sft", "--json"]
    bad = subprocess.run(cmd + ["sft.args.torch_dtype=bf17"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1, bad.stderr[-2000:]
    data = json.loads(bad.stdout)
    assert data["ok"] is False and data["errors"][0]["key"] == "sft.args.torch_dtype"
    assert data["errors"][0]["line"] is None and "override" in data["errors"][0]["file"]
    good = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0 and json.loads(good.stdout)["ok"] is True, good.stdout + good.stderr[-2000:]


def test_verls_own_validate_config_runs(smoke_verl):
    """A rule only verl's validate_config knows (not restated here) still surfaces, in verl's words."""
    report = check(smoke_verl + ["+grpo.overrides.actor_rollout_ref.rollout.log_prob_micro_batch_size=2"], ("grpo",))
    [error] = report.errors
    assert error.message.startswith("verl's validate_config") and "You have set both" in error.message
    fast = check(smoke_verl + ["+grpo.overrides.actor_rollout_ref.rollout.log_prob_micro_batch_size=2"], ("grpo",),
                 verl_own_checks=False)
    assert fast.ok  # the flag really decides whether verl's own check runs


def test_cli_runs_verls_own_check_in_a_child(smoke_verl):
    """A fresh CLI process has verl not imported: its validate_config runs in the child (VerlValidator)."""
    cmd = [str(Path(sys.executable).parent / "fakehr-orchestra"), "validate", str(RECIPES / "fake_hr1.yaml"),
           "-p", "smoke", "--stage", "grpo", "--json", *smoke_verl,
           "+grpo.overrides.actor_rollout_ref.rollout.log_prob_micro_batch_size=2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    [error] = json.loads(proc.stdout)["errors"]
    assert error["message"].startswith("verl's validate_config") and "You have set both" in error["message"]


def test_swift_group_reward_needs_whole_groups_per_call(tiny, monkeypatch):
    """ms-swift scores per_device_train_batch_size x steps_per_generation samples per call and groups by position:
    the hybrid bonus is refused when a call cannot hold whole groups, or the group size is left to a default."""
    monkeypatch.chdir(ROOT)
    cut = check(["grpo.swift_args.per_device_train_batch_size=6"], ("grpo",))
    assert any(f.key == "grpo.swift_args.per_device_train_batch_size" and "multiple of num_generations=4"
               in f.message for f in cut.errors), messages(cut)
    ok = check(["grpo.swift_args.per_device_train_batch_size=2", "grpo.swift_args.gradient_accumulation_steps=2"],
               ("grpo",))
    assert not any(f.key.startswith("grpo.swift_args") for f in ok.errors), messages(ok)
    unset = check(["~grpo.swift_args.num_generations"], ("grpo",))
    assert any(f.key == "grpo.swift_args.num_generations" for f in unset.errors), messages(unset)
    from fakehr_orchestra.recipe.errors import RecipeError

    with pytest.raises(RecipeError, match="response_prefix: the plan passes it to the reward"):
        check(["+grpo.reward.kwargs.response_prefix=x"], ("grpo",))


# ----------------------------------------------------------------------------------- grpo.val_files as declared

VAL = "/nonexistent/val.parquet"


def _val_errors(report) -> list[str]:
    return [f"{f.message} | {f.fix}" for f in report.errors if f.key == "grpo.val_files.0"]


@pytest.mark.parametrize("stages", [("grpo",), ("data", "sft", "grpo")], ids=["stage alone", "pipeline run"])
def test_a_missing_val_file_is_an_error_naming_the_key_and_the_fix(smoke_verl, stages):
    """verl reads data.val_files at start-up: a declared val file that is not there is an error, whether the GRPO
    stage runs alone or after the data stage (a val file of the user's own is not replaced by the data stage's)."""
    report = check(smoke_verl + [f"grpo.val_files=[{VAL}]"], stages)
    [error] = _val_errors(report)
    assert f"val file {VAL} does not exist" in error and "grpo_val.parquet" in error and "--remote-data" in error
    remote = check(smoke_verl + [f"grpo.val_files=[{VAL}]"], stages, remote_data=True, verl_own_checks=False)
    assert not _val_errors(remote)
    assert any(f.key == "grpo.val_files.0" and "--remote-data" in f.message for f in remote.warnings)


def test_a_missing_val_file_is_an_error_after_the_data_stage_ran(smoke_verl, tmp_path):
    """The data stage's exports in data.workdir (its val parquet included) do not stand in for a declared val
    file elsewhere; the data stage's own val file (the shipped `${data.workdir}/grpo_val.parquet`) is checked as
    the real parquet it wrote."""
    from fakehr_orchestra.data.stage import prepare
    from fakehr_orchestra.recipe import load_recipe

    workdir = [f"data.workdir={tmp_path / 'data'}"]
    arts = prepare(load_recipe(RECIPES / "fake_hr1.yaml", workdir, "smoke").model, tmp_path / "data", workers=1)
    assert Path(arts["val_parquet"]).is_file()
    missing = check(smoke_verl + workdir + [f"grpo.val_files=[{VAL}]"], ("data", "sft", "grpo"),
                    verl_own_checks=False)
    assert len(_val_errors(missing)) == 1, messages(missing)
    own = check(smoke_verl + workdir + [f"grpo.val_files=[{tmp_path / 'data' / 'grpo_val.parquet'}]"],
                ("data", "sft", "grpo"), verl_own_checks=False)
    assert own.ok and not [f for f in own.findings if f.key.startswith("grpo.val_files")], messages(own, "warning")
    # the GRPO stage alone reads the declared file: there, a non-parquet val file is caught by its content
    bad = check(smoke_verl + [f"grpo.val_files=[{arts['sft']}]"], ("grpo",), verl_own_checks=False)
    assert any("is not a parquet file verl can read" in m for m in _val_errors(bad)), messages(bad)
