"""Targeted behaviour of the SFT and GRPO memory models (each term appears where the frameworks create it)."""

from __future__ import annotations

from fakehr_orchestra.estimate import activations as act
from fakehr_orchestra.estimate.gpus import lookup
from fakehr_orchestra.estimate.memory_grpo import GrpoSettings, estimate_grpo, kv_bytes_per_token
from fakehr_orchestra.estimate.memory_sft import SftSettings, estimate_sft, longest_samples
from fakehr_orchestra.estimate.models import KNOWN
from fakehr_orchestra.estimate.zero import PRESETS

Q7 = KNOWN["qwen2.5-vl-7b-instruct"]
H100 = lookup("h100-80gb")
GIB = 2 ** 30
BASE = SftSettings(nodes=1, gpus_per_node=8, tuner="full", freeze_vit=False, freeze_aligner=False,
                   deepspeed=PRESETS["zero2"], max_length=8192, max_pixels=1003520, response_tokens=512)


def _term(est, name):
    return sum(t.bytes for ph in est.phases for t in ph.terms if t.name == name) / len(est.phases)


def test_per_token_layer_bytes_follow_the_derivation():
    """activations.py at bf16 for Qwen2.5-VL-7B: two RMSNorms (4h + 4h + 4 each), q k v out (2q + 2kv) x 2, the
    log-sum-exp (4 x 28 heads), mrope cos/sin (2 x 2 x 128), SwiGLU 8i; the vision block 20h + 14h + 8i + heads +
    rope. (benchmarks/calibrate_memory.py --formulas checks the same formulas against autograd.)"""
    t = Q7.text
    assert act.text_layer(t) == 2 * (8 * 3584 + 4) + 2 * (2 * 3584 + 2 * 512) + 4 * 28 + 4 * 128 + 8 * 18944
    assert act.vision_block(Q7.vision) == 2 * (8 * 1280 + 4) + 14 * 1280 + 4 * 16 + 8 * 3420 + 8 * 80
    q3 = KNOWN["qwen3-vl-8b-instruct"].vision
    assert act.vision_block(q3) == 2 * (4 * 1152 + 8) + 14 * 1152 + 4 * 16 + 4 * 4304 + 8 * 72


def test_gradient_checkpointing_keeps_only_layer_inputs():
    on = estimate_sft(Q7, BASE, H100)
    off = estimate_sft(Q7, BASE.with_(gradient_checkpointing=False), H100)
    assert _term(off, "activations, LLM") / _term(on, "activations, LLM") == act.text_layer(Q7.text) / (2 * 3584)
    assert off.needed > on.needed


def test_logits_only_at_labels_unless_logits_to_keep_is_off_and_never_with_liger():
    keep = estimate_sft(Q7, BASE, H100)
    full = estimate_sft(Q7, BASE.with_(logits_to_keep=False), H100)
    liger = estimate_sft(Q7, BASE.with_(use_liger_kernel=True, logits_to_keep=False), H100)
    rows = 8192 * Q7.text.vocab * 10
    assert abs(_term(full, "logits + loss") * len(full.phases) - rows) < 1
    assert full.needed > keep.needed > liger.needed - 1


def test_eager_attention_adds_the_score_matrix():
    eager = estimate_sft(Q7, BASE.with_(attn_impl="eager"), H100)
    assert eager.needed - estimate_sft(Q7, BASE, H100).needed > 28 * 8192 ** 2 * 6 / 28  # at least one layer's


def test_frozen_vit_keeps_no_vision_activations():
    est = estimate_sft(Q7, BASE.with_(freeze_vit=True), H100)
    assert _term(est, "activations, vision tower") == 0
    assert _term(estimate_sft(Q7, BASE, H100), "activations, vision tower") > 0


def test_longest_sample_is_max_length_spent_two_ways():
    a, b = longest_samples(Q7, BASE)
    assert a.tokens == b.tokens == 8192
    assert a.image_tokens == 1003520 // 784 and b.label_tokens == 512


def test_kv_cache_per_token_shards_kv_heads_then_replicates():
    assert kv_bytes_per_token(Q7, 1) == 2 * 28 * 4 * 128 * 2
    assert kv_bytes_per_token(Q7, 4) == 2 * 28 * 1 * 128 * 2
    assert kv_bytes_per_token(Q7, 8) == kv_bytes_per_token(Q7, 4)  # 4 kv heads: replicated past TP 4


def test_rollout_engine_too_small_for_one_sequence_is_a_failure():
    s = GrpoSettings(gpus_per_node=8, tp=1, gpu_memory_utilization=0.2, max_prompt=8192, max_response=8192)
    est = estimate_grpo(Q7, s, H100)
    assert not est.fits and est.failures
    assert est.failures[0][1].endswith("rollout.gpu_memory_utilization")


def test_free_cache_engine_releases_the_reservation_outside_the_rollout():
    s = GrpoSettings(gpus_per_node=8, ppo_micro_batch_size_per_gpu=2, log_prob_micro=4, ref_log_prob_micro=4,
                     free_cache_engine=False, gpu_memory_utilization=0.6, max_prompt=2048, max_response=2048)
    held, freed = estimate_grpo(Q7, s, H100), estimate_grpo(Q7, s.with_(free_cache_engine=True), H100)
    upd = [p for p in held.phases if p.name.startswith("update")][0]
    assert any(t.name == "vLLM reservation" for t in upd.outside)
    assert not any(p.outside for p in freed.phases if not p.name.startswith("rollout"))
    assert freed.needed < held.needed


def test_param_offload_leaves_only_vllm_in_the_rollout():
    s = GrpoSettings(gpus_per_node=8, param_offload=True, optimizer_offload=True)
    roll = estimate_grpo(Q7, s, H100).phases[0]
    assert roll.allocated == 0 and roll.outside[0].name == "vLLM reservation"
