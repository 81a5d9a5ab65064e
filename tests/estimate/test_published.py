"""Published data points: configurations that ran estimate as fitting, configurations reported to run out of memory
estimate as not fitting. Each cites its source and what it says; the recipes restate the published settings in this
project's recipe form (verl keys under grpo.overrides, ms-swift flags under sft.args)."""

from __future__ import annotations

import pytest

from fakehr_orchestra.estimate.gpus import lookup
from fakehr_orchestra.estimate.recipe_estimate import estimate_recipe
from fakehr_orchestra.estimate.settings import Options
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES
from tests.estimate.helpers import recipe

GIB = 2 ** 30
A = "actor_rollout_ref."


def _stage(rec, gpu, stage, **opts):
    report = estimate_recipe(rec, lookup(gpu), Options(**opts), (stage,))
    est = report.stages[0].estimate
    assert est is not None, report.stages[0].skipped
    return est


@pytest.mark.parametrize("gpu", ["h100-80gb", "a100-80gb", "h20-96gb"])
def test_seed_sft_on_16_gpus_fits(gpu):
    """Fake-HR1's README SFT command (recipes/fake_hr1.yaml, sft stage, verbatim): Qwen2.5-VL-7B full fine-tuning,
    ZeRO-2, 16 GPUs per node, max_length 8192, max_pixels 12845056, gradient checkpointing. It is the seed's published
    training command, so it ran; the README does not name the GPU, so every 80/96 GB part is checked."""
    rec = load_recipe(str(RECIPES / "fake_hr1.yaml"), (), None)
    est = _stage(rec, gpu, "sft")
    assert est.fits, est.needed / GIB
    assert est.facts["world"] == 16


VERL_EXAMPLE = {  # verl examples/grpo_trainer/run_qwen2_5_vl-7b.sh (volcengine/verl @ b178a3cd, 2026-01-29)
    "algorithm.adv_estimator": "grpo", "data.train_batch_size": 512, "data.max_prompt_length": 1024,
    "data.max_response_length": 2048, A + "model.use_remove_padding": True, A + "model.use_fused_kernels": True,
    A + "actor.ppo_mini_batch_size": 128, A + "actor.ppo_micro_batch_size_per_gpu": 10,
    A + "actor.use_kl_loss": True, A + "model.enable_gradient_checkpointing": True,
    A + "actor.fsdp_config.param_offload": False, A + "actor.fsdp_config.optimizer_offload": False,
    A + "rollout.log_prob_micro_batch_size_per_gpu": 20, A + "rollout.tensor_model_parallel_size": 2,
    A + "rollout.gpu_memory_utilization": 0.6, A + "rollout.enforce_eager": False,
    A + "rollout.free_cache_engine": True, A + "rollout.n": 5, A + "ref.log_prob_micro_batch_size_per_gpu": 20,
    A + "ref.fsdp_config.param_offload": True, "trainer.n_gpus_per_node": 8, "trainer.nnodes": 1,
}


def test_verl_qwen25_vl_7b_grpo_example_fits_on_80gb(tmp_path):
    """verl's published 7B GRPO set-up (examples/grpo_trainer/run_qwen2_5_vl-7b.sh: geo3k, 8 GPUs on one node,
    the configuration verl ships as its Qwen2.5-VL example) fits on an 80 GB GPU."""
    est = _stage(recipe(tmp_path, grpo=VERL_EXAMPLE), "h100-80gb", "grpo")
    assert est.fits, est.needed / GIB
    assert est.facts["replicas"] == 4


def test_pr284_offload_is_what_lets_gpu_memory_utilization_reach_0_9(tmp_path):
    """verl PR #284 ('support offload parameter and optimizer during rollout'): 'With
    actor_rollout_ref.actor.fsdp_config.param_offload=True and ...optimizer_offload=True, the GPU memory utilization
    can increase to 0.9'. Without the offload, 0.9 leaves no room for the resident actor during the rollout."""
    util = {**VERL_EXAMPLE, A + "rollout.gpu_memory_utilization": 0.9}
    without = _stage(recipe(tmp_path, grpo=util), "h100-80gb", "grpo")
    assert not without.fits and without.peak.name.startswith("rollout")
    offload = {**util, A + "actor.fsdp_config.param_offload": True, A + "actor.fsdp_config.optimizer_offload": True}
    assert _stage(recipe(tmp_path, grpo=offload, name="b.yaml"), "h100-80gb", "grpo").fits


EASYR1 = {  # EasyR1 examples/config.yaml + examples/qwen2_5_vl_7b_geo3k_grpo.sh (hiyouga/EasyR1 @ b44b311b)
    "data.train_batch_size": 512,  # rollout_batch_size ("equivalent to verl's data.train_batch_size")
    "data.max_prompt_length": 2048, "data.max_response_length": 2048,
    A + "actor.ppo_mini_batch_size": 128,  # global_batch_size
    A + "actor.ppo_micro_batch_size_per_gpu": 1,  # micro_batch_size_per_device_for_update
    A + "rollout.log_prob_micro_batch_size_per_gpu": 2,  # micro_batch_size_per_device_for_experience
    A + "ref.log_prob_micro_batch_size_per_gpu": 2, A + "actor.use_kl_loss": True,
    A + "model.enable_gradient_checkpointing": True, A + "actor.fsdp_config.param_offload": True,
    A + "actor.fsdp_config.optimizer_offload": True, A + "rollout.n": 5, A + "rollout.gpu_memory_utilization": 0.6,
    A + "rollout.tensor_model_parallel_size": 2, A + "rollout.enforce_eager": False,
    "trainer.n_gpus_per_node": 8, "trainer.nnodes": 1,
}


@pytest.mark.parametrize("gpu", ["a100-80gb", "a100-40gb"])
def test_easyr1_qwen25_vl_7b_grpo_fits(tmp_path, gpu):
    """EasyR1's published 7B GRPO set-up (README 'Run Qwen2.5-VL GRPO on Geometry3K', 8 GPUs) with its
    examples/config.yaml, in verl's key names (EasyR1's own comments give the equivalences). Its README's hardware
    table says 7B GRPO full fine-tuning (AMP) needs 8*40GB: fits on 40 GB and on 80 GB. The images are capped by its
    max_pixels 4194304, given here as the processor's limit."""
    rec = recipe(tmp_path, grpo=EASYR1)
    report = estimate_recipe(rec, lookup(gpu), Options(), ("grpo",))
    read = report.stages[0]
    from fakehr_orchestra.estimate.memory_grpo import estimate_grpo
    est = estimate_grpo(read.model, read.settings.with_(max_pixels=4194304), lookup(gpu))
    assert est.fits, est.needed / GIB


def test_ms_swift_caption_example_fits_its_measured_22gib(tmp_path):
    """ms-swift examples/train/multimodal/caption.sh (modelscope/ms-swift @ 3602360a) says '# 22GiB': Qwen2.5-VL-7B
    LoRA r8, one GPU, no DeepSpeed, MAX_PIXELS=1003520, max_length 2048, frozen ViT and merger. The estimate (an
    upper bound: every sample at max_length) fits a 24 GB GPU and stays within 30% of the measured figure."""
    rec = recipe(tmp_path, nodes=1, gpus_per_node=1, sft_args={
        "tuner_type": "lora", "torch_dtype": "bfloat16", "per_device_train_batch_size": 1, "lora_rank": 8,
        "lora_alpha": 32, "target_modules": "all-linear", "freeze_vit": True, "freeze_aligner": True,
        "gradient_accumulation_steps": 16, "max_length": 2048, "max_pixels": 1003520})
    est = _stage(rec, "rtx4090-24gb", "sft", response_tokens=512)
    assert est.fits
    assert 0.7 * 22 <= est.needed / GIB <= 1.3 * 22


def test_ms_swift_qwen3_vl_moe_zero3_example_within_its_measured_42gib(tmp_path):
    """ms-swift examples/models/qwen3_vl/zero3.sh says '# 2 * 42GiB': Qwen3-VL-30B-A3B LoRA r8 (all-linear), ZeRO-3 on
    2 GPUs, batch 16, max_length 2048, IMAGE_MAX_TOKEN_NUM=1024, liger kernel, flash attention, padding_free."""
    rec = recipe(tmp_path, model="Qwen3-VL-30B-A3B-Instruct", nodes=1, gpus_per_node=2, sft_args={
        "tuner_type": "lora", "torch_dtype": "bfloat16", "per_device_train_batch_size": 16, "attn_impl": "flash_attn",
        "padding_free": True, "lora_rank": 8, "freeze_vit": True, "freeze_aligner": True,
        "gradient_checkpointing": True, "max_length": 2048, "deepspeed": "zero3", "use_liger_kernel": True,
        "max_pixels": 1024 * 32 * 32})
    est = _stage(rec, "a100-80gb", "sft", response_tokens=512)
    assert est.fits
    assert 0.7 * 42 <= est.needed / GIB <= 1.3 * 42


SWIFT3_LORA = {  # ms-swift issue #5292 (2025-08-06; same user and data as #5199, on two RTX A6000 48 GB)
    "model_type": "qwen2_5_vl", "train_type": "lora", "torch_dtype": "bfloat16", "num_train_epochs": 1,
    "per_device_train_batch_size": 1, "learning_rate": 1e-4, "lora_rank": 8, "lora_alpha": 32,
    "target_modules": "all-linear", "gradient_accumulation_steps": 16, "max_length": 30480, "deepspeed": "zero3",
    "max_pixels": 602112,  # MAX_PIXELS=602112 in the command's environment
}


def test_ms_swift_5292_lora_on_two_a6000_does_not_fit(tmp_path):
    """ms-swift issues #5292 / #5199 ('lora微调qwen2_5vl oom'): Qwen2.5-VL-7B LoRA, ZeRO-3, 2 x RTX A6000, max_length
    30480 ran out of memory on ms-swift 3.x, whose log shows '[INFO:swift] use_logits_to_keep: False' (ms-swift
    computes logits for every position of a multimodal model before transformers 5, swift/trainers/mixin.py
    get_use_logits_to_keep). With full-sequence logits the estimate does not fit."""
    rec = recipe(tmp_path, nodes=1, gpus_per_node=2, sft_args={**SWIFT3_LORA, "use_logits_to_keep": False})
    est = _stage(rec, "a6000-48gb", "sft")
    assert not est.fits
    assert est.peak.dominant().name == "logits + loss"
