"""GRPO with verl (FSDP actor, colocated vLLM rollout), per GPU, phase by phase.

verl 0.9.1's hybrid engine puts the actor, the reference and the rollout engine on the same GPUs and switches
between them (verl PR #284: "During rollout, only rollout model and KVCache are in the GPU memory [with offload]...
During actor update, the actor model, optimizer are stored on GPU"):
- rollout: vLLM's reservation (gpu_memory_utilization x GPU memory: weights / TP, activation peak, KV cache) next to
  whatever the actor keeps resident (FSDP shards of the fp32 parameters unless param_offload, Adam unless
  optimizer_offload). vLLM refuses to start when less memory is free than it is asked to reserve, and fails when its
  KV cache cannot hold one sequence of prompt + response.
- log-prob passes (old policy by the actor, reference): forward only, in micro batches of
  log_prob_micro_batch_size_per_gpu.
- update: the actor's FSDP states (fp32 parameters, gradients, Adam: 16 bytes/param over all GPUs), the gathered
  units, and a micro batch's activations.
With free_cache_engine the rollout engine sleeps (KV cache discarded, weights offloaded) outside the rollout;
without it, its reservation stays through the other phases. The reference model is forward-only: verl 0.9.1 wraps it
with CPUOffload(offload_params=True) whatever ref.fsdp_config.param_offload says
(verl/workers/engine/fsdp/transformer_impl.py `_build_fsdp_module`: forward_only -> CPUOffload), so only the unit
being computed is on the GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from . import activations as act
from .breakdown import GIB, Phase, StageEstimate, Term
from .gpus import Gpu
from .images import image_tokens
from .models import ModelSpec
from .trainable import resolve

OV = "grpo.overrides.actor_rollout_ref."
CUDA_GRAPHS_GIB = 1.0  # vLLM CUDA graphs (enforce_eager false): stand-in until calibrated


@dataclass(frozen=True)
class GrpoSettings:
    nnodes: int = 1
    gpus_per_node: int = 8
    train_batch_size: int = 1024  # verl 0.9.1 defaults: verl/trainer/config/_generated_ppo_trainer.yaml
    n: int = 1
    max_prompt: int = 512
    max_response: int = 512
    ppo_mini_batch_size: int = 256
    ppo_micro_batch_size_per_gpu: int | None = None
    ppo_epochs: int = 1
    use_dynamic_bsz: bool = False
    ppo_max_token_len_per_gpu: int = 16384
    log_prob_micro: int | None = None  # rollout.log_prob_micro_batch_size_per_gpu (old log-prob, actor)
    ref_log_prob_micro: int | None = None
    tp: int = 2
    gpu_memory_utilization: float = 0.5
    free_cache_engine: bool = True
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256
    enforce_eager: bool = False
    param_offload: bool = False
    optimizer_offload: bool = False
    ref_needed: bool = True  # use_kl_loss or use_kl_in_reward
    gradient_checkpointing: bool = True
    use_fused_kernels: bool = False
    calculate_entropy: bool = False  # entropy_coeff != 0 or calculate_entropy
    lora_rank: int = 0
    model_dtype_bytes: int = 4  # actor fsdp_config.model_dtype fp32
    max_pixels: int | None = None  # the processor's (verl resizes with the model's processor)
    images_per_prompt: int = 1
    prompt_text_tokens: int = 64

    @property
    def world(self) -> int:
        return max(self.nnodes, 1) * max(self.gpus_per_node, 1)

    @property
    def seq(self) -> int:
        return self.max_prompt + self.max_response

    def with_(self, **changes: object) -> "GrpoSettings":
        return replace(self, **changes)  # type: ignore[arg-type]


def _micro_tokens(s: GrpoSettings, micro: int | None, budget: int, image: int, text: int) -> tuple[int, int, str]:
    """(tokens, visual tokens) of one micro batch. A fixed micro batch holds `micro` sequences of prompt + response,
    each with its images. Dynamic batching packs sequences up to the token budget: at worst each is only its prompt
    (images included) and one response token, so visual tokens are at most budget x image / (image + text + 1)."""
    if s.use_dynamic_bsz:
        visual = math.ceil(budget * image / (image + text + 1)) if image else 0
        return max(budget, s.seq), visual, f"use_dynamic_bsz: up to {budget:,} tokens"
    m = micro or 1
    return m * s.seq, m * image, f"{m} x ({s.max_prompt:,} + {s.max_response:,}) tokens"


def kv_bytes_per_token(spec: ModelSpec, tp: int) -> float:
    t = spec.text
    heads = max(math.ceil(t.kv_heads / tp), 1)
    return 2 * t.layers * heads * t.hd * 2  # K and V, bf16


def estimate_grpo(spec: ModelSpec, s: GrpoSettings, gpu: Gpu) -> StageEstimate:
    t, v = spec.text, spec.vision
    p = spec.params()
    n = s.world
    a = 2  # FSDP mixed precision computes in bf16 (param_dtype bf16)
    tr = resolve(spec, "lora" if s.lora_rank else "full", False, False if not s.lora_rank else True, False,
                 s.lora_rank)
    mdt = s.model_dtype_bytes
    params = Term("actor parameters (FSDP shard)", mdt * p.total / n,
                  f"{mdt} B (model_dtype) x {p.total:,} / {n} GPUs", OV + "actor.fsdp_config.param_offload")
    grads = Term("actor gradients (FSDP shard)", mdt * tr.trainable / n, f"{mdt} B x trainable / {n}", None)
    optim = Term("actor Adam states (FSDP shard)", 8 * tr.trainable / n, f"8 B (fp32 m, v) x trainable / {n}",
                 OV + "actor.fsdp_config.optimizer_offload")
    root = p.embeddings + p.vision - p.vision_block * v.depth + p.aligner + t.hidden
    unit = max(p.decoder_layer, p.vision_block)
    gathered = Term("FSDP gathered units", a * (root + 2 * unit),
                    f"bf16 root unit (embeddings, lm_head, patch embedding, mergers: {root:,} params) + the layer "
                    "being computed and the one prefetched", None)

    per_image = min(image_tokens(s.max_pixels, spec.family), max(s.max_prompt - s.prompt_text_tokens, 0))
    img = min(s.images_per_prompt * per_image, max(s.max_prompt - s.prompt_text_tokens, 0))
    text = s.prompt_text_tokens
    merge2 = v.merge * v.merge

    # ------------------------------------------------------------------ rollout engine
    util = s.gpu_memory_utilization
    reserve = util * gpu.memory_bytes
    replicas = max(n // max(s.tp, 1), 1)
    weights = 2 * p.total / s.tp
    vit_prof = act.vision_forward_working(v, a) * image_tokens(s.max_pixels, spec.family) * v.merge ** 2 / s.tp
    llm_prof = act.text_forward_working(t, a) * s.max_num_batched_tokens / s.tp
    sampler = s.max_num_seqs * t.vocab * 4 * 2
    graphs = 0.0 if s.enforce_eager else CUDA_GRAPHS_GIB * GIB
    vllm_fixed = weights + max(vit_prof, llm_prof) + sampler + graphs
    kv_free = reserve - vllm_fixed
    per_tok = kv_bytes_per_token(spec, s.tp)
    kv_tokens = max(int(kv_free // per_tok), 0)
    seqs_per_replica = math.ceil(s.train_batch_size * s.n / replicas)
    concurrent = min(seqs_per_replica, s.max_num_seqs)
    demand = concurrent * s.seq
    failures: list[tuple[str, str | None]] = []
    if kv_free <= 0:
        failures.append((f"vLLM's reservation ({util} x {gpu.memory_gib:g} GiB = {reserve / GIB:.1f} GiB) does not "
                         f"cover its weights / TP ({weights / GIB:.1f} GiB) and activation peak: no room for the KV "
                         "cache", OV + "rollout.gpu_memory_utilization"))
    elif kv_tokens < s.seq:
        failures.append((f"vLLM's KV cache holds {kv_tokens:,} tokens, less than one sequence "
                         f"(max_prompt_length + max_response_length = {s.seq:,}): vLLM refuses to start",
                         OV + "rollout.gpu_memory_utilization"))
    waves = math.ceil(demand / kv_tokens) if kv_tokens else 0
    vllm_term = Term("vLLM reservation", reserve, f"gpu_memory_utilization {util} x {gpu.memory_gib:g} GiB: weights/TP "
                     f"{weights / GIB:.1f} GiB, profiled activations {max(vit_prof, llm_prof) / GIB:.1f} GiB, sampler "
                     f"{sampler / GIB:.1f} GiB, CUDA graphs {graphs / GIB:.1f} GiB, "
                     f"KV cache {max(kv_free, 0) / GIB:.1f} GiB",
                     OV + "rollout.gpu_memory_utilization")
    idle_vllm = [] if s.free_cache_engine else [vllm_term]

    resident = [params] if not s.param_offload else []
    if not s.optimizer_offload:
        resident.append(optim)
    # vLLM's own CUDA context is inside its reservation; asleep, it keeps only that context (a second one here)
    idle_contexts = 2 if s.free_cache_engine else 1
    phases: list[Phase] = [Phase("rollout (vLLM generating)", resident or [Term("actor offloaded", 0.0, "", None)],
                                 contexts=1, outside=[vllm_term])]

    # ------------------------------------------------------------------ log-prob passes (forward only)
    logit_bytes = a + (8 if s.calculate_entropy else 0)
    for name, micro, key in (("old log-prob (actor)", s.log_prob_micro, "rollout.log_prob_micro_batch_size_per_gpu"),
                             ("reference log-prob", s.ref_log_prob_micro, "ref.log_prob_micro_batch_size_per_gpu")):
        if name.startswith("reference") and not s.ref_needed:
            continue
        tokens, visual, how = _micro_tokens(s, micro, s.ppo_max_token_len_per_gpu, img, text)
        fwd = max(act.text_forward_working(t, a) * tokens, act.vision_forward_working(v, a) * visual * merge2)
        terms = [Term("forward working set", fwd, f"one layer at a time, {how}", OV + key),
                 Term("logits", 0.0 if s.use_fused_kernels else tokens * t.vocab * logit_bytes,
                      f"{tokens:,} tokens x vocab {t.vocab:,} x {logit_bytes} B", OV + key), gathered]
        if name.startswith("old"):
            terms = ([params] if not s.param_offload else []) + ([optim] if not s.optimizer_offload else []) + terms
        else:  # the actor stays as it is during the reference pass; the reference itself is CPU-offloaded
            terms = resident + terms
        phases.append(Phase(name, terms, contexts=idle_contexts, outside=idle_vllm))

    # ------------------------------------------------------------------ update
    tokens, visual, how = _micro_tokens(s, s.ppo_micro_batch_size_per_gpu, s.ppo_max_token_len_per_gpu, img, text)
    patches = visual * merge2
    llm_kept, vit_kept = act.stored_activations(spec, tokens, patches, s.gradient_checkpointing,
                                                s.gradient_checkpointing, tr.vision_trainable, a)
    work = max(act.text_backward_working(t, a) * tokens, act.vision_backward_working(v, a) * patches)
    update = [params, grads, optim, gathered,
              Term("activations (update micro batch)", llm_kept + vit_kept,
                   f"{how}; {patches:,} patches; {'checkpointed' if s.gradient_checkpointing else 'all layers kept'}",
                   OV + "actor.ppo_micro_batch_size_per_gpu"),
              Term("logits", 0.0 if s.use_fused_kernels else tokens * t.vocab * logit_bytes,
                   f"{tokens:,} tokens x vocab {t.vocab:,} x {logit_bytes} B (use_fused_kernels avoids them)",
                   OV + "actor.ppo_micro_batch_size_per_gpu"),
              Term("backward working set", work, "one layer recomputed + its gradient buffers", None)]
    phases.append(Phase("update (actor forward + backward)", update, contexts=idle_contexts, outside=idle_vllm))
    end = [params, grads, optim, Term("root unit gradients at reduce-scatter", 6 * root,
                                      "unsharded bf16 gradients + their fp32 reduce copy of the root unit", None)]
    phases.append(Phase("end of backward (root unit reduce-scatter)", end, contexts=idle_contexts,
                        outside=idle_vllm))

    facts = {"world": n, "replicas": replicas, "tp": s.tp, "kv_cache_tokens": kv_tokens,
             "kv_cache_gib": max(kv_free, 0) / GIB, "rollout_tokens_per_replica": demand,
             "rollout_waves": waves, "image_tokens_per_prompt": img, "trainable": tr.trainable}
    assumptions = []
    if kv_tokens and demand > kv_tokens:
        assumptions.append(f"vLLM's KV cache holds {kv_tokens:,} tokens per replica but {concurrent} concurrent "
                           f"sequences need up to {demand:,}: generation runs in about {waves} waves (slower, not OOM)")
    return StageEstimate("grpo", gpu, phases, assumptions=assumptions, facts=facts, failures=failures)
