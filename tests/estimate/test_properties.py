"""Monotone behaviour the estimate must have whatever the settings (hypothesis draws them): more GPUs under ZeRO-2/3
or FSDP lower the sharded terms; larger images, sequences, micro batches or rollout.n never lower the memory; LoRA
without dropout never needs more than full fine-tuning with the same flags."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fakehr_orchestra.estimate.gpus import lookup
from fakehr_orchestra.estimate.images import DEFAULT_MAX_TOKENS, pixels_per_token
from fakehr_orchestra.estimate.memory_grpo import GrpoSettings, estimate_grpo
from fakehr_orchestra.estimate.memory_sft import SftSettings, estimate_sft
from fakehr_orchestra.estimate.models import KNOWN
from fakehr_orchestra.estimate.zero import PRESETS, ZeroConfig

GPU = lookup("h100-80gb")
SPECS = [KNOWN[n] for n in ("qwen2.5-vl-3b-instruct", "qwen2.5-vl-7b-instruct", "qwen3-vl-8b-instruct",
                            "qwen3-vl-30b-a3b-instruct")]
specs = st.sampled_from(SPECS)
zero = st.sampled_from([ZeroConfig(None), *PRESETS.values()])
pixels = st.one_of(st.none(), st.integers(3136, 20_000_000))

sft = st.builds(
    SftSettings, nodes=st.integers(1, 8), gpus_per_node=st.sampled_from([1, 2, 4, 8, 16]),
    tuner=st.sampled_from(["full", "lora", "lora_llm"]), freeze_llm=st.booleans(), freeze_vit=st.booleans(),
    freeze_aligner=st.booleans(), lora_rank=st.sampled_from([8, 64]), lora_dropout=st.sampled_from([0.0, 0.05]),
    dtype_bytes=st.sampled_from([2, 4]), deepspeed=zero, gradient_checkpointing=st.booleans(),
    vit_gradient_checkpointing=st.one_of(st.none(), st.booleans()), max_length=st.integers(256, 65536),
    max_pixels=pixels, images_per_sample=st.integers(1, 3), prompt_tokens=st.integers(16, 512),
    response_tokens=st.integers(1, 4096), batch=st.integers(1, 8), attn_impl=st.sampled_from(["sdpa", "eager"]),
    use_liger_kernel=st.booleans(), logits_to_keep=st.booleans())

grpo = st.builds(
    GrpoSettings, nnodes=st.integers(1, 4), gpus_per_node=st.sampled_from([2, 4, 8]),
    train_batch_size=st.sampled_from([8, 32, 128, 512]), n=st.integers(1, 16), max_prompt=st.integers(256, 16384),
    max_response=st.integers(64, 8192), ppo_micro_batch_size_per_gpu=st.integers(1, 16),
    use_dynamic_bsz=st.booleans(), ppo_max_token_len_per_gpu=st.integers(4096, 65536),
    log_prob_micro=st.integers(1, 32), ref_log_prob_micro=st.integers(1, 32), tp=st.sampled_from([1, 2]),
    gpu_memory_utilization=st.floats(0.3, 0.9), free_cache_engine=st.booleans(), param_offload=st.booleans(),
    optimizer_offload=st.booleans(), ref_needed=st.booleans(), gradient_checkpointing=st.booleans(),
    use_fused_kernels=st.booleans(), calculate_entropy=st.booleans(), max_pixels=pixels,
    images_per_prompt=st.integers(1, 2))

EXAMPLES = settings(max_examples=150, deadline=None)


def _pixels(spec, max_pixels):
    """None means the processor's default cap (qwen_vl_utils IMAGE_MAX_TOKEN_NUM tokens)."""
    return DEFAULT_MAX_TOKENS * pixels_per_token(spec.family) if max_pixels is None else max_pixels


def _states(est):
    return sum(t.bytes for t in est.phases[0].terms if t.name == "model states")


@EXAMPLES
@given(specs, sft, st.integers(1, 8), st.sampled_from(["zero2", "zero3", "zero2_offload", "zero3_offload"]))
def test_more_nodes_under_zero2_or_3_lower_the_sharded_states(spec, s, more, name):
    s = s.with_(deepspeed=PRESETS[name])
    few, many = estimate_sft(spec, s, GPU), estimate_sft(spec, s.with_(nodes=s.nodes + more), GPU)
    assert _states(many) <= _states(few)
    if not PRESETS[name].offload_optimizer and few.facts["trainable"] > 0:
        assert _states(many) < _states(few)
    assert many.needed <= few.needed + 1


@EXAMPLES
@given(specs, sft, pixels, pixels)
def test_larger_max_pixels_never_lowers_sft_memory(spec, s, a, b):
    lo, hi = sorted([a, b], key=lambda x: _pixels(spec, x))
    assert estimate_sft(spec, s.with_(max_pixels=lo), GPU).needed <= \
        estimate_sft(spec, s.with_(max_pixels=hi), GPU).needed + 1


@EXAMPLES
@given(specs, sft, st.integers(256, 65536), st.integers(0, 16384))
def test_longer_max_length_never_lowers_sft_memory(spec, s, length, more):
    assert estimate_sft(spec, s.with_(max_length=length), GPU).needed <= \
        estimate_sft(spec, s.with_(max_length=length + more), GPU).needed + 1


@EXAMPLES
@given(specs, sft, st.integers(1, 8))
def test_larger_micro_batch_never_lowers_sft_memory(spec, s, more):
    assert estimate_sft(spec, s, GPU).needed <= estimate_sft(spec, s.with_(batch=s.batch + more), GPU).needed + 1


@EXAMPLES
@given(specs, sft)
def test_lora_without_dropout_never_exceeds_full_fine_tuning_by_more_than_its_adapters(spec, s):
    """The bound this test found to be the true one: LoRA keeps every base weight plus its adapters, and what it
    saves (gradients and optimizer states of the base) is sharded by ZeRO, so with the optimizer offloaded, or a
    small trained part spread over many GPUs, the adapters' own weights (a few MB to a few hundred MB) can outweigh
    the savings. LoRA dropout (ms-swift default 0.05) keeps a dropped copy of each adapted input, which can exceed
    them at long sequences without checkpointing: docs/estimate.md says so."""
    full = estimate_sft(spec, s.with_(tuner="full"), GPU)
    lora = estimate_sft(spec, s.with_(tuner="lora", lora_dropout=0.0), GPU)
    adapters = s.dtype_bytes * lora.facts["trainable"] * 1.05
    assert lora.needed <= full.needed + adapters + 1


@EXAMPLES
@given(specs, grpo, st.integers(0, 16), st.integers(0, 8), st.integers(0, 4096), st.integers(0, 4096))
def test_larger_rollout_batch_micro_batch_and_lengths_never_lower_grpo_memory(spec, s, dn, dm, dp, dr):
    bigger = s.with_(n=s.n + dn, ppo_micro_batch_size_per_gpu=s.ppo_micro_batch_size_per_gpu + dm,
                     log_prob_micro=s.log_prob_micro + dm, ref_log_prob_micro=s.ref_log_prob_micro + dm,
                     max_prompt=s.max_prompt + dp, max_response=s.max_response + dr)
    small, big = estimate_grpo(spec, s, GPU), estimate_grpo(spec, bigger, GPU)
    assert small.needed <= big.needed + 1
    assert big.facts["rollout_tokens_per_replica"] >= small.facts["rollout_tokens_per_replica"]
    assert small.fits or not big.fits


@EXAMPLES
@given(specs, grpo, pixels, pixels)
def test_larger_max_pixels_never_lowers_grpo_memory(spec, s, a, b):
    lo, hi = sorted([a, b], key=lambda x: _pixels(spec, x))
    assert estimate_grpo(spec, s.with_(max_pixels=lo), GPU).needed <= \
        estimate_grpo(spec, s.with_(max_pixels=hi), GPU).needed + 1


@EXAMPLES
@given(specs, grpo, st.integers(1, 4))
def test_more_nodes_lower_the_fsdp_shards(spec, s, more):
    def shards(est):
        return sum(t.bytes for ph in est.phases for t in ph.terms if "FSDP shard" in t.name)
    few, many = estimate_grpo(spec, s, GPU), estimate_grpo(spec, s.with_(nnodes=s.nnodes + more), GPU)
    assert shards(many) < shards(few)
