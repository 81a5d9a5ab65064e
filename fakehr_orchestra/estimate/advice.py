"""What to change when a stage does not fit: candidate changes, each re-estimated, cheapest first.

A change's cost is what it takes away, not what it costs to type: 1 = same training, a little slower (smaller micro
batch, fused kernels, tensor parallelism, releasing the rollout engine's memory between phases); 2 = slower
(gradient checkpointing, ZeRO-3, offloading the actor between phases); 3 = changes the data the model sees
(max_pixels, max_length, max_response_length); 4 = much slower or more hardware (optimizer/parameter offload to the
CPU, more nodes); 5 = changes the method (freezing the ViT, LoRA instead of full fine-tuning).
Single changes that make the stage fit are listed; when none does, the largest reductions are combined greedily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .breakdown import StageEstimate
from .gpus import Gpu
from .images import pixels_per_token
from .memory_grpo import GrpoSettings, estimate_grpo
from .memory_sft import SftSettings, estimate_sft
from .models import ModelSpec
from .zero import PRESETS

SFT = "sft.args."
GRPO = "grpo.overrides.actor_rollout_ref."


@dataclass(frozen=True)
class Change:
    key: str
    value: Any
    cost: int
    settings: Any
    why: str = ""

    @property
    def text(self) -> str:
        value = str(self.value).lower() if isinstance(self.value, bool) else self.value
        return f"{self.key}: {value}" + (f" ({self.why})" if self.why else "")


@dataclass
class Suggestion:
    changes: list[Change]
    estimate: StageEstimate

    @property
    def cost(self) -> int:
        return max(c.cost for c in self.changes)

    @property
    def text(self) -> str:
        return " and ".join(c.text for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"set": {c.key: c.value for c in self.changes}, "cost": self.cost,
                "needed_gib": round(self.estimate.needed / 2 ** 30, 2), "verdict": self.estimate.verdict}


def _halvings(value: int, floor: int) -> Iterator[int]:
    v = value // 2
    while v >= floor:
        yield v
        v //= 2


# ---------------------------------------------------------------------------------------------- SFT

def sft_changes(spec: ModelSpec, s: SftSettings, names: dict[str, str]) -> Iterator[Change]:
    if s.batch > 1:
        for b in _halvings(s.batch, 1):
            yield Change(SFT + "per_device_train_batch_size", b, 1, s.with_(batch=b),
                         "raise gradient_accumulation_steps to keep the global batch")
    if not s.use_liger_kernel:
        yield Change(SFT + "use_liger_kernel", True, 1, s.with_(use_liger_kernel=True), "needs liger-kernel installed")
    if s.attn_impl == "eager":
        yield Change(SFT + "attn_impl", "flash_attn", 1, s.with_(attn_impl="flash_attn"))
    if not s.gradient_checkpointing:
        yield Change(SFT + "gradient_checkpointing", True, 2, s.with_(gradient_checkpointing=True,
                                                                       vit_gradient_checkpointing=None))
    elif s.vit_gradient_checkpointing is False:
        yield Change(SFT + "vit_gradient_checkpointing", True, 2, s.with_(vit_gradient_checkpointing=True))
    zc = s.deepspeed
    if zc.stage is None or zc.stage < 3:
        yield Change(SFT + "deepspeed", "zero3", 2, s.with_(deepspeed=PRESETS["zero3"]))
    if zc.stage in (None, 0, 1):
        yield Change(SFT + "deepspeed", "zero2", 2, s.with_(deepspeed=PRESETS["zero2"]))
    if zc.stage == 2 and not zc.offload_optimizer:
        yield Change(SFT + "deepspeed", "zero2_offload", 4, s.with_(deepspeed=PRESETS["zero2_offload"]))
    if not (zc.stage == 3 and zc.offload_params):
        yield Change(SFT + "deepspeed", "zero3_offload", 4, s.with_(deepspeed=PRESETS["zero3_offload"]))
    ppt = pixels_per_token(spec.family)
    tokens = (s.max_pixels or 16384 * ppt) // ppt
    for t in _halvings(tokens, 256):
        yield Change("vision.max_pixels", t * ppt, 3, s.with_(max_pixels=t * ppt), f"{t:,} visual tokens per image")
    limit = s.max_length or spec.text.max_positions
    for length in _halvings(limit, 1024):
        yield Change(SFT + "max_length", length, 3, s.with_(max_length=length), "longer samples are dropped")
    if s.deepspeed.stage in (2, 3):
        yield Change("cluster.nodes", s.nodes * 2, 4, s.with_(nodes=s.nodes * 2), "ZeRO shards over more GPUs")
    if s.tuner != "lora" and not s.freeze_vit:
        yield Change(SFT + "freeze_vit", True, 5, s.with_(freeze_vit=True))
    if s.tuner == "full":
        yield Change(SFT + names.get("tuner", "tuner_type"), "lora", 5, s.with_(tuner="lora"))


# ---------------------------------------------------------------------------------------------- GRPO

def grpo_changes(spec: ModelSpec, s: GrpoSettings, names: dict[str, str]) -> Iterator[Change]:
    for key, attr in (("actor.ppo_micro_batch_size_per_gpu", "ppo_micro_batch_size_per_gpu"),
                      ("rollout.log_prob_micro_batch_size_per_gpu", "log_prob_micro"),
                      ("ref.log_prob_micro_batch_size_per_gpu", "ref_log_prob_micro")):
        value = getattr(s, attr)
        if value and value > 1 and not s.use_dynamic_bsz:
            for m in _halvings(value, 1):
                yield Change(GRPO + key, m, 1, s.with_(**{attr: m}))
    if not s.use_fused_kernels:
        yield Change(GRPO + "model.use_fused_kernels", True, 1, s.with_(use_fused_kernels=True),
                     "no logits materialised")
    if not s.free_cache_engine:
        yield Change(GRPO + "rollout.free_cache_engine", True, 1, s.with_(free_cache_engine=True),
                     "vLLM releases its memory outside the rollout")
    tp = s.tp * 2
    while tp <= s.gpus_per_node and s.world % tp == 0:
        yield Change(GRPO + "rollout.tensor_model_parallel_size", tp, 1, s.with_(tp=tp))
        tp *= 2
    util = round(s.gpu_memory_utilization, 2)
    for k in range(1, 9):
        for value in (round(util - 0.05 * k, 2), round(util + 0.05 * k, 2)):
            if 0.2 <= value <= 0.95:
                yield Change(GRPO + "rollout.gpu_memory_utilization", value, 1, s.with_(gpu_memory_utilization=value))
    if not s.gradient_checkpointing:
        yield Change(GRPO + "model.enable_gradient_checkpointing", True, 2, s.with_(gradient_checkpointing=True))
    if not s.param_offload:
        yield Change(GRPO + "actor.fsdp_config.param_offload", True, 2, s.with_(param_offload=True),
                     "off the GPU between phases")
    if not s.optimizer_offload:
        yield Change(GRPO + "actor.fsdp_config.optimizer_offload", True, 2, s.with_(optimizer_offload=True),
                     "off the GPU between phases")
    ppt = pixels_per_token(spec.family)
    tokens = (s.max_pixels or 16384 * ppt) // ppt
    for t in _halvings(min(tokens, s.max_prompt), 256):
        yield Change("vision.max_pixels", t * ppt, 3, s.with_(max_pixels=t * ppt),
                     f"{t:,} visual tokens per image (set in the model's preprocessor_config.json)")
    for r in _halvings(s.max_response, 256):
        yield Change("grpo.overrides.data.max_response_length", r, 3, s.with_(max_response=r))
    yield Change("grpo.overrides.trainer.nnodes", s.nnodes * 2, 4, s.with_(nnodes=s.nnodes * 2),
                 "FSDP shards over more GPUs")


# ---------------------------------------------------------------------------------------------- search

def advise(stage: str, spec: ModelSpec, settings: Any, gpu: Gpu, names: dict[str, str] | None = None,
           limit: int = 4) -> list[Suggestion]:
    """The cheapest changes (single, else combined) after which the stage fits, each with its new estimate."""
    estimate: Callable[[ModelSpec, Any, Gpu], StageEstimate] = estimate_sft if stage == "sft" else estimate_grpo
    changes = sft_changes if stage == "sft" else grpo_changes
    names = names or {}
    current = estimate(spec, settings, gpu)
    if current.verdict == "fits":
        return []
    singles: dict[str, Suggestion] = {}  # per key, the mildest value that fits
    tried: list[Suggestion] = []
    for change in changes(spec, settings, names):
        est = estimate(spec, change.settings, gpu)
        sug = Suggestion([change], est)
        tried.append(sug)
        if est.verdict == "fits" and change.key not in singles:
            singles[change.key] = sug
    fitting = sorted(singles.values(), key=lambda g: (g.cost, g.estimate.needed))
    if fitting:
        return fitting[:limit]
    return _greedy(stage, spec, settings, gpu, names, estimate, changes)


def _greedy(stage: str, spec: ModelSpec, settings: Any, gpu: Gpu, names: dict[str, str],
            estimate: Callable[..., StageEstimate], changes: Callable[..., Iterator[Change]]) -> list[Suggestion]:
    chosen: list[Change] = []
    current = settings
    best_est = estimate(spec, current, gpu)
    for _ in range(4):
        best: tuple[float, int, Change, StageEstimate] | None = None
        for change in changes(spec, current, names):
            if any(c.key == change.key for c in chosen):
                continue
            est = estimate(spec, change.settings, gpu)
            score = (len(est.failures), est.needed)
            if best is None or (score, change.cost) < ((len(best[3].failures), best[3].needed), best[1]):
                best = (est.needed, change.cost, change, est)
        if best is None or (len(best[3].failures), best[3].needed) >= (len(best_est.failures), best_est.needed):
            break
        chosen.append(best[2])
        current, best_est = best[2].settings, best[3]
        if best_est.verdict == "fits":
            break
    return [Suggestion(chosen, best_est)] if chosen else []
