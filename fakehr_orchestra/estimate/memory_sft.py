"""SFT with ms-swift (`swift sft`), per GPU: model states by tuner, precision and ZeRO stage; activations of the
longest sample (text + image tokens) with or without gradient checkpointing; the logits the loss needs.

One training step has two moments whose memory adds up differently; the peak is the larger:
- end of forward: model states + kept activations + the logits and their loss (fp32 upcast + log-softmax);
- backward: model states + kept activations + one layer recomputed and back-propagated (checkpointing) or the
  gradient buffers of the layer being back-propagated.
The longest sample is max_length tokens, because ms-swift drops longer ones (truncation_strategy 'delete'); it is
taken two ways, image-heavy (the largest image max_pixels allows) and answer-heavy (the longest answer, which decides
the logits), and whichever needs more memory is the estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import activations as act
from .breakdown import Phase, StageEstimate, Term
from .gpus import Gpu
from .images import MIN_TOKENS, image_tokens
from .models import ModelSpec
from .trainable import Trainable, resolve
from .zero import ZeroConfig, model_state_bytes


@dataclass(frozen=True)
class SftSettings:
    nodes: int = 1
    gpus_per_node: int = 1
    tuner: str = "lora"  # ms-swift 4.6 default tuner_type
    freeze_llm: bool = False  # ms-swift defaults (swift/arguments/tuner_args.py)
    freeze_vit: bool = True
    freeze_aligner: bool = True
    lora_rank: int = 8
    lora_dropout: float = 0.05
    dtype_bytes: int = 2  # torch_dtype (bfloat16 from the Qwen configs when unset)
    deepspeed: ZeroConfig = field(default_factory=lambda: ZeroConfig(None))
    gradient_checkpointing: bool = True  # ms-swift default (swift/trainers/arguments.py)
    vit_gradient_checkpointing: bool | None = None  # None: follows gradient_checkpointing (ms-swift)
    max_length: int | None = None  # None: the model's max_position_embeddings (ms-swift)
    max_pixels: int | None = None  # None: qwen_vl_utils' IMAGE_MAX_TOKEN_NUM cap
    images_per_sample: int = 1
    prompt_tokens: int = 64  # text of system + user prompt with the chat template
    response_tokens: int = 1024  # stand-in for the longest answer (the data is not read)
    batch: int = 1  # per_device_train_batch_size (padded to its longest sample)
    attn_impl: str = "sdpa"
    use_liger_kernel: bool = False
    logits_to_keep: bool = True  # ms-swift >= 4 with transformers >= 5: logits only where labels are

    @property
    def world(self) -> int:
        return max(self.nodes, 1) * max(self.gpus_per_node, 1)

    @property
    def vit_checkpointing(self) -> bool:
        vgc = self.vit_gradient_checkpointing
        return self.gradient_checkpointing if vgc is None else vgc

    def with_(self, **changes: object) -> "SftSettings":
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Sample:
    tokens: int
    image_tokens: int
    label_tokens: int
    kind: str


def longest_samples(spec: ModelSpec, s: SftSettings) -> list[Sample]:
    """The longest sample ms-swift keeps is max_length tokens (longer ones are dropped); it can spend them on the
    largest image max_pixels allows or on the longest answer (labels: they decide the logits), text filling the
    rest. Both are estimated; the worse one is the answer."""
    limit = s.max_length or spec.text.max_positions
    per_image = image_tokens(s.max_pixels, spec.family)
    images = s.images_per_sample
    room = max(limit - s.prompt_tokens, 2)
    img_a = min(images * per_image, room - 1)
    resp_a = max(min(s.response_tokens, room - img_a), 1)
    resp_b = max(min(s.response_tokens, room - images * MIN_TOKENS), 1)
    img_b = max(min(images * per_image, room - resp_b), 0)
    return [Sample(limit, img_a, resp_a, "image-heavy"), Sample(limit, img_b, resp_b, "answer-heavy")]


def ddp_states(trainable: int, frozen: int, dtype_bytes: int, world: int) -> tuple[float, str]:
    """No DeepSpeed: the model in torch_dtype, gradients in the same dtype, torch AdamW's two states in the
    parameter dtype (torch/optim/adamw.py zeros_like(param)); DDP keeps a second copy of the gradients in its
    buckets (gradient_as_bucket_view defaults to False) when there is more than one process."""
    b = dtype_bytes
    buckets = b * trainable if world > 1 else 0
    total = b * (trainable + frozen) + b * trainable + 2 * b * trainable + buckets
    ddp = f" + {b} DDP buckets" if world > 1 else ""
    return total, f"no DeepSpeed: {b} weights + {b} grads + {2 * b} AdamW{ddp} bytes/trainable param, {b}/frozen"


def fp32_zero_states(zc: ZeroConfig, trainable: int, frozen: int, world: int) -> tuple[float, str]:
    """torch_dtype float32 under DeepSpeed (no 16-bit copies): 4 params + 4 grads + 8 Adam, sharded by stage."""
    n = max(world, 1)
    stage = zc.stage or 0
    params = 4 * (trainable + frozen) / (n if stage == 3 else 1)
    grads = 4 * trainable / (n if stage >= 2 else 1)
    optim = 0 if zc.offload_optimizer else 8 * trainable / (n if stage >= 1 else 1)
    return params + grads + optim, f"fp32 under ZeRO-{stage}: 4 params + 4 grads + 8 Adam, sharded by stage"


def estimate_sft(spec: ModelSpec, s: SftSettings, gpu: Gpu) -> StageEstimate:
    tr: Trainable = resolve(spec, s.tuner, s.freeze_llm, s.freeze_vit, s.freeze_aligner, s.lora_rank)
    p = spec.params()
    a = s.dtype_bytes
    zc = s.deepspeed
    if zc.stage is None:
        states, formula = ddp_states(tr.trainable, tr.frozen, a, s.world)
    elif a == 4:
        states, formula = fp32_zero_states(zc, tr.trainable, tr.frozen, s.world)
    else:
        states, formula = model_state_bytes(zc, tr.trainable, tr.frozen, p.largest_layer, s.world)
    base = [Term("model states", states, f"{formula}; {tr.note}; N={s.world}", "sft.args.deepspeed")]
    if zc.reduce_bucket:
        base.append(Term("DeepSpeed buckets", 2 * zc.reduce_bucket,
                         "reduce_bucket_size + allgather_bucket_size = 2e8 + 2e8 16-bit elements (swift zero2.json)",
                         "sft.args.deepspeed"))

    best: StageEstimate | None = None
    for sample in longest_samples(spec, s):
        est = _sample_estimate(spec, s, gpu, tr, base, sample, a)
        if best is None or est.needed > best.needed:
            best = est
    assert best is not None
    return best


def _sample_estimate(spec: ModelSpec, s: SftSettings, gpu: Gpu, tr: Trainable, base: list[Term], sample: Sample,
                     a: int) -> StageEstimate:
    t, v = spec.text, spec.vision
    b = s.batch
    tokens = b * sample.tokens
    patches = b * sample.image_tokens * v.merge * v.merge
    gc, vgc = s.gradient_checkpointing, s.vit_checkpointing
    llm_kept, vit_kept = act.stored_activations(spec, tokens, patches, gc, vgc, tr.vision_trainable, a)
    why_gc = "layer input only (gradient checkpointing)" if gc else "every layer's activations"
    per_token = act.text_layer_checkpointed(t, a) if gc else act.text_layer(t, a)
    kept = [Term("activations, LLM", llm_kept,
                 f"{t.layers} layers x {tokens:,} tokens x {per_token:,.0f} "
                 f"B ({why_gc})", "sft.args.gradient_checkpointing" if not gc else "sft.args.max_length")]
    if vit_kept:
        kept.append(Term("activations, vision tower", vit_kept,
                         f"{v.depth} blocks x {patches:,} patches ({'checkpointed' if vgc else 'all kept'}; "
                         f"images at max_pixels={s.max_pixels or 'default'})", "sft.args.max_pixels"))
    if s.lora_dropout > 0 and (tr.lora_inputs_llm or tr.lora_inputs_vit):
        layers = 1 if gc else t.layers
        blocks = 1 if vgc else v.depth
        extra = (a + 1) * (layers * tr.lora_inputs_llm * tokens + blocks * tr.lora_inputs_vit * patches)
        kept.append(Term("LoRA dropout", extra, f"lora_dropout={s.lora_dropout}: each adapted linear keeps its "
                         f"dropped input and mask ({a + 1} B per input element)", "sft.args.lora_dropout"))
    if s.attn_impl == "eager":
        layers = 1 if gc else t.layers
        eager = layers * b * act.eager_attention(t, sample.tokens, a)
        if tr.vision_trainable and patches:
            per_image = act.vision_eager_attention(v, sample.image_tokens * v.merge * v.merge, a)
            eager += b * per_image / (v.depth if vgc else 1)
        kept.append(Term("eager attention scores", eager, "attn_impl eager keeps heads x seq^2 softmax per layer",
                         "sft.args.attn_impl"))

    if s.use_liger_kernel:
        logits = Term("logits", 0.0, "use_liger_kernel: fused linear cross-entropy, logits never materialised",
                      "sft.args.use_liger_kernel")
    else:
        rows = b * sample.label_tokens if s.logits_to_keep else tokens
        why = ("logits only at label positions (ms-swift use_logits_to_keep)" if s.logits_to_keep
               else "logits for every position (use_logits_to_keep off)")
        logits = Term("logits + loss", rows * t.vocab * (a + 8), f"{rows:,} rows x vocab {t.vocab:,} x ({a} logits + 4 "
                      f"fp32 upcast + 4 log-softmax) B; {why}", "sft.args.max_length")
    working = act.text_backward_working(t, a) * tokens
    if tr.vision_trainable and patches:
        working = max(working, act.vision_backward_working(v, a) * patches)
    work = Term("backward working set", working, "one layer recomputed + its gradient buffers" if gc else
                "gradient buffers of the layer being back-propagated", "sft.args.max_length")
    phases = [Phase("end of forward (logits and loss)", base + kept + [logits]),
              Phase("backward (one layer at a time)", base + kept + [work])]
    facts = {"sample": sample.kind, "sequence_tokens": sample.tokens, "image_tokens": sample.image_tokens,
             "label_tokens": sample.label_tokens, "batch": b, "world": s.world, "trainable": tr.trainable,
             "frozen": tr.frozen, "tuner": tr.note, "zero": s.deepspeed.label}
    return StageEstimate("sft", gpu, phases, facts=facts)
