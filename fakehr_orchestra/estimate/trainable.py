"""Which parameters train: ms-swift's tuners and freeze flags (and verl's lora_rank) turned into counts.

ms-swift 4.6 (swift/arguments/tuner_args.py `_init_multimodal_full`, swift/model/model_arch.py for qwen2_vl /
qwen3_vl): with tuner_type full, freeze_llm freezes model.language_model + lm_head, freeze_vit freezes model.visual
(the merger included), freeze_aligner freezes the merger(s), and freeze_aligner false makes the merger trainable even
under freeze_vit. With LoRA, target_modules all-linear adds adapters to the LLM's linear layers (not lm_head), to the
ViT's unless freeze_vit, to the merger's unless freeze_aligner. tuner_type lora_llm (swift/tuner_plugin/lora_llm.py)
is LoRA on the LLM with the ViT and merger trained in full. MoE expert banks are parameters, not nn.Linear, so
all-linear adapts only the attention of an MoE layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import ModelSpec


@dataclass(frozen=True)
class Trainable:
    trainable: int  # parameters with gradients and optimizer states
    frozen: int  # weights only
    vision_trainable: bool  # the ViT blocks need their activations kept
    lora_inputs_llm: int  # per token per layer: summed input widths of adapted linears (LoRA dropout keeps these)
    lora_inputs_vit: int  # per patch per block
    note: str


def _lora_llm(spec: ModelSpec, r: int) -> tuple[int, int]:
    t = spec.text
    h, q, kv = t.hidden, t.q_dim, t.kv_dim
    per = r * ((h + q) + 2 * (h + kv) + (q + h))
    inputs = 3 * h + q
    if not t.experts:
        per += r * 3 * (h + t.intermediate)
        inputs += 2 * h + t.intermediate
    return t.layers * per, inputs


def _lora_vit(spec: ModelSpec, r: int) -> tuple[int, int]:
    v = spec.vision
    h, i = v.hidden, v.intermediate
    per = r * ((h + 3 * h) + (h + h))
    mlp = r * 3 * (h + i) if v.gated_mlp else r * 2 * (h + i)
    inputs = 2 * h + (2 * h + i if v.gated_mlp else h + i)
    return v.depth * (per + mlp), inputs


def _lora_aligner(spec: ModelSpec, r: int) -> int:
    v = spec.vision
    m = v.hidden * v.merge * v.merge
    return (1 + v.deepstack) * r * ((m + m) + (m + v.out_hidden))


def resolve(spec: ModelSpec, tuner: str, freeze_llm: bool, freeze_vit: bool, freeze_aligner: bool,
            lora_rank: int) -> Trainable:
    p = spec.params()
    if tuner == "full":
        trainable = ((0 if freeze_llm else p.llm) + (0 if freeze_vit else p.vision)
                     + (0 if freeze_aligner else p.aligner))
        parts = [n for n, off in (("LLM", freeze_llm), ("ViT", freeze_vit), ("merger", freeze_aligner)) if not off]
        return Trainable(trainable, p.total - trainable, not freeze_vit, 0, 0,
                         f"full: {' + '.join(parts) or 'nothing'} trained")
    if tuner not in ("lora", "lora_llm"):
        raise ValueError(f"tuner_type {tuner!r}: the estimator models full, lora and lora_llm")
    r = lora_rank
    lora, in_llm = (0, 0) if freeze_llm and tuner == "lora" else _lora_llm(spec, r)
    if tuner == "lora_llm":
        full = p.vision + p.aligner
        return Trainable(lora + full, p.total - full, True, in_llm, 0,
                         f"lora_llm: LoRA r={r} on the LLM ({lora:,} params), ViT + merger in full")
    vit, in_vit = (0, 0) if freeze_vit else _lora_vit(spec, r)
    ali = 0 if freeze_aligner else _lora_aligner(spec, r)
    where = [n for n, on in (("LLM", not freeze_llm), ("ViT", not freeze_vit), ("merger", not freeze_aligner)) if on]
    return Trainable(lora + vit + ali, p.total, not freeze_vit, in_llm, in_vit,
                     f"lora r={r} on {' + '.join(where) or 'nothing'} ({lora + vit + ali:,} params)")
