"""The critic section: one place for where the critic is; the `swift deploy` plan; the URL in both GRPO plans;
what `run --dry-run` shows. Pure rendering: nothing is started here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fakehr_orchestra.engines import RenderError, render
from fakehr_orchestra.recipe import RecipeError, load_recipe
from tests.conftest import RECIPES, ROOT

VLM = RECIPES / "fakevlm_r1.yaml"


def test_full_recipe_renders_swift_deploy_on_its_own_gpus() -> None:
    plan = render(load_recipe(VLM), "critic")
    assert plan.stage == "critic" and plan.env == {"CUDA_VISIBLE_DEVICES": "6,7"}
    # served as SophiaVL-R1 serves its thinking reward model (thinking_reward_model.sh: vLLM, this served name,
    # --max_model_len 32768); the weights' path is the user's to set
    assert plan.argv == ["swift", "deploy", "--model", "./SophiaVL-R1-Thinking-Reward-Model-3B", "--infer_backend",
                         "vllm", "--served_model_name", "thinking-reward-model", "--host", "127.0.0.1", "--port",
                         "8000", "--vllm_max_model_len", "32768", "--vllm_gpu_memory_utilization", "0.9",
                         "--vllm_tensor_parallel_size", "1", "--vllm_data_parallel_size", "2"]
    server = load_recipe(VLM).model.critic.server
    assert server.gpus() == 2 and server.gpu_memory_utilization == 0.9  # the GPU share, as data


def test_smoke_profile_serves_the_tiny_model_on_cpu(tmp_path: Path) -> None:
    plan = render(load_recipe(VLM, [f"vars.fixtures={tmp_path}"], profile="smoke"), "critic")
    assert plan.argv[:12] == ["swift", "deploy", "--model", f"{tmp_path}/model", "--infer_backend", "transformers",
                              "--served_model_name", "tiny-critic", "--host", "127.0.0.1", "--port", "8011"]
    assert "--max_length" in plan.argv and "--vllm_tensor_parallel_size" not in plan.argv
    assert plan.argv[plan.argv.index("--template") + 1] == "qwen2_5_vl"
    assert "CUDA_VISIBLE_DEVICES" not in plan.env and plan.env["HF_HUB_OFFLINE"] == "1"


def test_the_url_reaches_the_reward_of_both_grpo_engines() -> None:
    swift = render(load_recipe(VLM, ["critic.server.port=8123"], profile="smoke"), "grpo")
    kwargs = json.loads(swift.env["FAKEHR_REWARD_KWARGS"])
    assert kwargs["critic_base_url"] == "http://127.0.0.1:8123/v1" and kwargs["critic_model"] == "tiny-critic"
    assert (kwargs["critic_concurrency"], kwargs["critic_retries"], kwargs["critic_max_tokens"]) == (4, 1, 8)
    # verl (Ray): reward kwargs are Hydra overrides, merged by verl into every reward call on every worker
    verl = render(load_recipe(VLM), "grpo")
    args = [a for a in verl.argv if "reward_kwargs.critic_" in a]
    assert "+reward.custom_reward_function.reward_kwargs.critic_base_url=http://127.0.0.1:8000/v1" in args
    assert "+reward.custom_reward_function.reward_kwargs.critic_model=thinking-reward-model" in args
    # asked as SophiaVL-R1 asks: its template, the recipe's question, no reply limit (null reaches the reward as None)
    assert "+reward.custom_reward_function.reward_kwargs.critic_template=sophiavl_r1" in args
    assert "+reward.custom_reward_function.reward_kwargs.critic_max_tokens=null" in args
    assert "+reward.custom_reward_function.reward_kwargs.critic_question='<image>Is this image real or fake?'" in args
    assert kwargs["critic_template"] == "sophiavl_r1" and kwargs["critic_question"] == "<image>Is this image real or fake?"
    assert verl.env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5"  # training GPUs; the critic has 6,7


def test_external_url_may_come_from_the_launch_environment() -> None:
    recipe = load_recipe(VLM, ["critic.mode=external", "critic.url=http://${env:CRITIC_HOST}:9000/v1"],
                         profile="smoke")
    plan = render(recipe, "grpo")
    assert "CRITIC_HOST" in plan.env_refs
    kwargs = json.loads(plan.resolve({"CRITIC_HOST": "gpu-node-7"}).env["FAKEHR_REWARD_KWARGS"])
    assert kwargs["critic_base_url"] == "http://gpu-node-7:9000/v1"
    with pytest.raises(RenderError, match="critic.mode is external: there is no critic server"):
        render(recipe, "critic")


def test_off_passes_no_critic_kwargs_and_other_recipes_stay_valid() -> None:
    plan = render(load_recipe(VLM, ["critic.mode=off"], profile="smoke"), "grpo")
    assert not [k for k in json.loads(plan.env["FAKEHR_REWARD_KWARGS"]) if k.startswith("critic_")]
    hr1 = load_recipe(RECIPES / "fake_hr1.yaml")  # no critic section: off by default
    assert hr1.model.critic.mode == "off"
    assert not [a for a in render(hr1, "grpo").argv if "critic_base_url" in a]


def test_the_critic_lives_in_one_place(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe(VLM, ["+grpo.reward.kwargs.critic_base_url=http://x:1/v1"])
    text = str(err.value)
    assert "grpo.reward.kwargs" in text and "critic_base_url" in text and "top-level `critic:` section" in text
    with pytest.raises(RecipeError, match="critic.mode is external but critic.url is not set"):
        load_recipe(VLM, ["critic.mode=external"])
    with pytest.raises(RecipeError, match="did you mean 'critic.server.max_model_len'"):
        load_recipe(VLM, ["+critic.server.max_model_length=4"])
    with pytest.raises(RenderError, match="critic.server.args.port: set by the critic section itself"):
        render(load_recipe(VLM, ["+critic.server.args.port=1"]), "critic")
    # YAML 1.1 reads a bare `off` as false
    recipe = tmp_path / "r.yaml"
    recipe.write_text(VLM.read_text().replace("  mode: server\n", "  mode: off\n", 1))
    assert load_recipe(recipe).model.critic.mode == "off"


def test_dry_run_shows_the_critic_command_and_where_it_runs(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "run", str(VLM), "--dry-run", "--run-dir",
                          str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grpo = out.stdout[out.stdout.index("## stage grpo"):out.stdout.index("## stage merge")]
    assert "# service critic: started before the stage's steps, stopped (its whole process tree)" in grpo
    assert "#   runs on this node (the one running 'fakehr-orchestra run'), GPUs CUDA_VISIBLE_DEVICES=6,7" in grpo
    assert "#   serves 'thinking-reward-model' at http://127.0.0.1:8000/v1" in grpo
    assert "CUDA_VISIBLE_DEVICES=6,7 \\\n  swift deploy \\\n  --model ./SophiaVL-R1" in grpo
    assert grpo.index("swift deploy") < grpo.index("# step grpo")
    assert not (tmp_path / "run").exists()  # a dry run writes nothing
    shell = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "render", str(VLM), "--stage", "critic"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shell.returncode == 0 and "--vllm_data_parallel_size 2" in shell.stdout
