"""The critic server's GPU share in `estimate`: its vLLM reservation per GPU,
whether the judge's weights fit it, and whether training + critic GPUs fit the node they share."""

from __future__ import annotations

from fakehr_orchestra.estimate.critic import critic_lines
from fakehr_orchestra.estimate.gpus import lookup as lookup_gpu
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES

VLM = str(RECIPES / "fakevlm_r1.yaml")


def test_a_7b_judge_on_two_h100s_beside_six_training_gpus_fits() -> None:
    model = load_recipe(VLM, ["critic.server.model=Qwen2.5-VL-7B-Instruct"]).model
    lines = critic_lines(model, lookup_gpu("h100-80gb"), 6)
    assert lines[0].startswith("critic: vLLM server on 2 GPU(s)") and "0.9 x 79.1 GiB = 71.2 GiB" in lines[0]
    assert "weights 15.4 GiB per GPU" in lines[1] and ": fits" in lines[1]
    assert lines[2] == "critic: shares the GRPO node: 6 training + 2 critic GPUs of 8 per node: fits"


def test_a_72b_judge_on_one_40gb_gpu_and_an_overbooked_node_do_not_fit() -> None:
    model = load_recipe(VLM, ["critic.server.model=Qwen2.5-VL-72B-Instruct"]).model
    lines = critic_lines(model, lookup_gpu("a100-40gb"), 7)
    assert "does not fit; raise critic.server.gpu_memory_utilization or tensor_parallel_size" in lines[1]
    assert "7 training + 2 critic GPUs of 8 per node: does not fit" in lines[2]


def test_external_off_and_cpu_critics_take_no_gpu_share() -> None:
    gpu = lookup_gpu("h100-80gb")
    assert critic_lines(load_recipe(VLM, ["critic.mode=off"]).model, gpu, 6) == []
    external = load_recipe(VLM, ["critic.mode=external", "critic.url=http://judge:8000/v1"]).model
    assert critic_lines(external, gpu, 6) == ["critic: external at http://judge:8000/v1: runs outside these GPUs "
                                              "(not estimated)"]
    smoke = load_recipe(VLM, [], profile="smoke").model
    assert "transformers backend" in critic_lines(smoke, gpu, 1)[0]
    assert critic_lines(load_recipe(RECIPES / "fake_hr1.yaml", []).model, gpu, 6) == []
