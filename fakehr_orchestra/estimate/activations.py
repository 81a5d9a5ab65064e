"""Activation memory per token (LLM) and per patch (vision tower), as autograd keeps it in the transformers
implementations of Qwen2.5-VL and Qwen3-VL with flash / sdpa attention (no score matrix kept) and no dropout.

Derivation (bytes, a = activation dtype size, h = hidden, i = intermediate, q/kv = query/key-value widths):
- RMSNorm (transformers Qwen2RMSNorm): pow() keeps the fp32 input (4h), weight * x keeps the normalised input
  (a*h): 4h + a*h, twice per layer.
- attention: flash-attention keeps q, k, v and the output: a*(2q + 2kv); Qwen3's q_norm/k_norm add fp32 copies
  4*(q + kv). RoPE's multiplications keep only the shared cos/sin tables.
- SwiGLU MLP: SiLU keeps its input (a*i), the product keeps both factors (2*a*i), down_proj keeps its input (a*i):
  4*a*i. An MoE layer does this for each of its top-k experts plus a copy of the routed input (a*h each) and the
  fp32 router logits (4 * experts).
- vision blocks: the same terms with q = kv = h (Qwen2.5-VL: RMSNorm + SwiGLU: 20h + 8i at bf16); Qwen3-VL uses
  LayerNorm (keeps input and output: 2*a*h) and fc1/GELU/fc2 (2*a*i): 16h + 4i at bf16.
- gradient checkpointing (transformers GradientCheckpointingLayer, one checkpoint per decoder layer / vision block)
  keeps only each layer's input (a*h) and recomputes one layer at a time in the backward pass.
Eager attention keeps the softmax (fp32) and its a-byte copy: heads x s^2 x (4 + a) per layer.
These are the formulas the calibration harness (benchmarks/calibrate_memory.py) measures on a GPU.
"""

from __future__ import annotations

from .models import ModelSpec, TextSpec, VisionSpec


def _mlp_width(t: TextSpec) -> int:
    return t.experts_per_token * t.moe_intermediate if t.experts else t.intermediate


def text_layer(t: TextSpec, a: int = 2) -> float:
    """Bytes kept for backward per token by one decoder layer."""
    norms = 2 * (4 * t.hidden + a * t.hidden)
    attn = a * (2 * t.q_dim + 2 * t.kv_dim) + (4 * (t.q_dim + t.kv_dim) if t.qk_norm else 0)
    if t.experts:
        mlp = t.experts_per_token * (4 * a * t.moe_intermediate + a * t.hidden) + 4 * t.experts
    else:
        mlp = 4 * a * t.intermediate
    return norms + attn + mlp


def text_layer_checkpointed(t: TextSpec, a: int = 2) -> float:
    """Bytes kept per token per decoder layer under gradient checkpointing: the layer's input."""
    return a * t.hidden


def text_backward_working(t: TextSpec, a: int = 2) -> float:
    """Per token, while one layer is recomputed and back-propagated: its activations + gradient buffers."""
    return text_layer(t, a) + a * (2 * t.hidden + 2 * _mlp_width(t))


def text_forward_working(t: TextSpec, a: int = 2) -> float:
    """Per token, the largest set of tensors alive inside one layer in a forward pass without autograd."""
    return a * (2 * t.hidden + 3 * _mlp_width(t))


def eager_attention(t: TextSpec, seq: int, a: int = 2) -> float:
    """Per sequence and layer with attn_impl eager: the kept softmax (fp32) and its copy."""
    return t.heads * seq * seq * (4 + a)


def vision_block(v: VisionSpec, a: int = 2) -> float:
    """Bytes kept for backward per patch by one vision block."""
    if v.layer_norm:
        norms = 2 * (2 * a * v.hidden)
        mlp = 2 * a * v.intermediate
    else:
        norms = 2 * (4 * v.hidden + a * v.hidden)
        mlp = 4 * a * v.intermediate
    return norms + a * 4 * v.hidden + mlp


def vision_extra(v: VisionSpec, a: int = 2) -> float:
    """Per patch, kept once per image: patch-embedding input and the merger(s)."""
    patch_in = 3 * v.temporal_patch * v.patch * v.patch
    merger = (2 * a * v.hidden if v.layer_norm else 4 * v.hidden + a * v.hidden) + 3 * a * v.hidden
    return a * patch_in + merger * (1 + v.deepstack)


def vision_backward_working(v: VisionSpec, a: int = 2) -> float:
    return vision_block(v, a) + a * (2 * v.hidden + 2 * v.intermediate)


def vision_forward_working(v: VisionSpec, a: int = 2) -> float:
    return a * (5 * v.hidden + 3 * v.intermediate)


def vision_eager_attention(v: VisionSpec, patches: int, a: int = 2) -> float:
    """Per image with attn_impl eager, summed over blocks: full-attention blocks see all patches; Qwen2.5-VL's
    windowed blocks see 8 x 8-patch windows (window_size 112 px / patch 14)."""
    full = v.full_attention_blocks if v.full_attention_blocks is not None else v.depth
    window = 64
    per = v.heads * (4 + a)
    return full * per * patches * patches + (v.depth - full) * per * patches * min(window, patches)


def stored_activations(spec: ModelSpec, tokens: int, patches: int, checkpointing: bool, vit_checkpointing: bool,
                       vision_trainable: bool, a: int = 2) -> tuple[float, float]:
    """(LLM, vision) bytes kept across a training step's forward pass for `tokens` tokens and `patches` patches."""
    t, v = spec.text, spec.vision
    per_layer = text_layer_checkpointed(t, a) if checkpointing else text_layer(t, a)
    llm = t.layers * per_layer * tokens
    if not vision_trainable or patches == 0:
        return llm, 0.0
    per_block = a * v.hidden if vit_checkpointing else vision_block(v, a)
    return llm, (v.depth * per_block + vision_extra(v, a)) * patches
