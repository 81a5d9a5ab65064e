"""Activation memory per token (LLM) and per patch (vision tower), as autograd keeps it in the transformers
implementations of Qwen2.5-VL and Qwen3-VL(-MoE) with flash / sdpa attention (no score matrix kept) and no dropout.

Every term below is a tensor that autograd saves for the backward pass (bytes; a = activation dtype size, h = hidden,
i = intermediate, q / kv = query / key-value widths, hd = head dim). benchmarks/calibrate_memory.py --formulas
captures what autograd saves (torch.autograd.graph.saved_tensors_hooks, parameters excluded) in one decoder layer
and one vision block of each family, and tests/estimate/test_calibration.py checks these formulas against it
exactly:
- RMSNorm (transformers Qwen2RMSNorm): pow() keeps the fp32 input (4h), weight * x keeps the normalised input cast
  back (a*h), the next linear keeps the output (a*h), plus the fp32 rsqrt (4): 4h + 2ah + 4, twice per layer.
- attention: flash / sdpa keeps q, k, v, the output and the fp32 log-sum-exp per head: a(2q + 2kv) + 4 heads.
  Qwen2.5-VL's multimodal RoPE cuts its cos/sin into per-layer copies (2 a hd); Qwen3's q_norm/k_norm keep fp32
  copies and the cast results: (4 + a)(q + kv) + 4 (heads + kv heads).
- SwiGLU MLP: the gate and up outputs, SiLU's output and the product: 4ai. An MoE layer (grouped_mm experts) keeps
  for each of its top-k experts the routed input and output copies (2ah) and the gate/up, SiLU and product (4a *
  moe_intermediate), plus the fp32 router softmax (4 experts) and routing indices (about 40 bytes per expert slot).
- vision blocks: Qwen2.5-VL (RMSNorm, SwiGLU): the two norms as above, q and k after RoPE, the fused qkv output that
  v is a view of (3ah), the output and proj's contiguous copy: 7ah + 4 heads, and 4ai; the block's RoPE cos/sin
  (fp32, 8 x head dim). Qwen3-VL: LayerNorm keeps input and output and fp32 mean and rstd (2ah + 8 each), fc1 /
  GELU / fc2 keep 2ai.
- gradient checkpointing (transformers GradientCheckpointingLayer, one checkpoint per decoder layer / vision block)
  keeps only each layer's input (a*h) and recomputes one layer at a time in the backward pass.
Eager attention keeps the softmax (fp32) and its a-byte copy: heads x s^2 x (4 + a) per layer.
What autograd saves is not all the allocator holds (gradient buffers, the caching allocator's blocks): the GPU
calibration in docs/estimate.md measures the whole step.
"""

from __future__ import annotations

from .models import ModelSpec, TextSpec, VisionSpec


def _mlp_width(t: TextSpec) -> int:
    return t.experts_per_token * t.moe_intermediate if t.experts else t.intermediate


def text_layer(t: TextSpec, a: int = 2) -> float:
    """Bytes kept for backward per token by one decoder layer."""
    norms = 2 * (4 * t.hidden + 2 * a * t.hidden + 4)
    attn = a * (2 * t.q_dim + 2 * t.kv_dim) + 4 * t.heads
    if t.qk_norm:
        attn += (4 + a) * (t.q_dim + t.kv_dim) + 4 * (t.heads + t.kv_heads)
    else:
        attn += 2 * a * t.hd  # Qwen2.5-VL's per-layer mrope cos/sin sections
    if t.experts:
        k = t.experts_per_token
        mlp = k * (2 * a * t.hidden + 4 * a * t.moe_intermediate + 40) + 4 * t.experts
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
    """Bytes kept for backward per patch by one vision block (its RoPE cos/sin included: fp32, head dim wide)."""
    h = v.hidden
    if v.layer_norm:
        norms = 2 * (2 * a * h + 8)
        mlp = 2 * a * v.intermediate
    else:
        norms = 2 * (4 * h + 2 * a * h + 4)
        mlp = 4 * a * v.intermediate
    rope = 8 * (h // v.heads)
    return norms + 7 * a * h + 4 * v.heads + mlp + rope


def vision_extra(v: VisionSpec, a: int = 2) -> float:
    """Per patch, kept once per image: the patch-embedding input and the merger(s). Qwen2.5-VL's merger: RMSNorm
    (4h + 2ah + 4), GELU's input and output (2ah). Qwen3-VL's: LayerNorm input and output, GELU's input and output
    (4ah), each deepstack merger 3ah (its input is a block output already kept), and the position-table
    interpolation's indices and weights (32)."""
    patch_in = a * 3 * v.temporal_patch * v.patch * v.patch
    if v.layer_norm:
        return patch_in + 4 * a * v.hidden + 2 + v.deepstack * (3 * a * v.hidden + 2) + \
            (32 if v.position_embeddings else 0)
    return patch_in + 4 * v.hidden + 4 * a * v.hidden + 4


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
