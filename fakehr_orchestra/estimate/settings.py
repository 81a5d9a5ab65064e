"""Read what the estimate needs from a loaded recipe: the model, the cluster, the ms-swift flags (sft.args) and the
verl keys (grpo.overrides), each with the installed framework's default when the recipe leaves it out.

Nothing is guessed silently: every default, stand-in and launch-time value becomes an assumption line in the report.
Defaults restated here were read from the installed code: ms-swift 4.6 (swift/arguments/tuner_args.py,
swift/trainers/arguments.py, swift/arguments/base_args/*.py, swift/trainers/mixin.py) and verl 0.9.1
(verl/trainer/config/_generated_ppo_trainer.yaml); tests/estimate/test_settings.py checks them against that code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .images import DEFAULT_MAX_TOKENS, pixels_per_token
from .memory_grpo import GrpoSettings
from .memory_sft import SftSettings
from .models import ModelError, ModelSpec, lookup, resolve
from .zero import PRESETS, ZeroConfig, preset

CHARS_PER_TOKEN = 4  # as preflight/crosschecks.py: rough text tokens (ASCII English); images dominate anyway
SFT_RESPONSE_STANDIN = 1024


@dataclass
class Options:
    """What the command line adds: stand-ins for launch-time values, a model name, dataset sizes."""

    nodes: int | None = None
    gpus_per_node: int | None = None
    model: str | None = None
    response_tokens: int | None = None
    sft_rows: int | None = None
    grpo_rows: int | None = None
    mfu: float = 0.4


@dataclass
class Read:
    """One stage's inputs as read from the recipe, with the lines that say what was assumed."""

    spec: ModelSpec
    settings: Any
    assumptions: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # epochs, accumulation, rows ... for the time figures


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int):
        return bool(value)
    return default


def is_launch_ref(value: Any) -> bool:
    return isinstance(value, str) and "${env:" in value


# ---------------------------------------------------------------------------------------------- shared

def cluster_size(recipe: Any, opts: Options, notes: list[str]) -> tuple[int, int]:
    cl = recipe.model.cluster
    nodes = opts.nodes if opts.nodes is not None else as_int(cl.nodes)
    if nodes is None:
        nodes = 1
        what = f"{cl.nodes} (set at launch)" if is_launch_ref(cl.nodes) else "not set"
        notes.append(f"cluster.nodes is {what}: assumed 1 node; pass --nodes N for the real count")
    per = opts.gpus_per_node if opts.gpus_per_node is not None else as_int(cl.gpus_per_node)
    if per is None:
        per = 1
        what = f"{cl.gpus_per_node} (set at launch)" if is_launch_ref(cl.gpus_per_node) else "not set"
        notes.append(f"cluster.gpus_per_node is {what}: assumed 1 process per node; pass --gpus-per-node N")
    if recipe.model.cluster.device == "cpu":
        notes.append("cluster.device is cpu: the figures are for the same processes on GPUs")
    return nodes, per


def model_for(recipe: Any, stage: str, opts: Options, notes: list[str]) -> ModelSpec:
    """The stage's model: --model, else its own path/name, else (GRPO starting from SFT's output) the SFT model."""
    m = recipe.model
    workdir = Path(str(m.workdir))
    if opts.model:
        spec = lookup(opts.model)
        if spec is None:
            spec = resolve(opts.model, workdir)
        notes.append(f"model from --model {opts.model}")
        return spec
    section = getattr(m, stage)
    try:
        return resolve(str(section.model), workdir)
    except ModelError as first:
        if stage == "grpo" and m.sft is not None:
            try:
                spec = resolve(str(m.sft.model), workdir)
            except ModelError:
                raise first from None
            notes.append(f"grpo.model ({section.model}) is not here to read: assumed the architecture of sft.model "
                         f"({m.sft.model}), which GRPO continues from")
            return spec
        raise


def prompt_text_tokens(recipe: Any) -> int:
    p = recipe.model.prompt
    text = (p.system or "") + (p.user or "")
    return len(text.replace("<image>", "")) // CHARS_PER_TOKEN + 16  # + chat-template tokens


def images_per_prompt(recipe: Any) -> int:
    return max(str(recipe.model.prompt.user).count("<image>"), 1)


# ---------------------------------------------------------------------------------------------- SFT (ms-swift)

def _deepspeed(value: Any, workdir: Path, notes: list[str]) -> ZeroConfig:
    zc = preset(value)
    if zc is not None:
        return zc
    path = Path(str(value))
    path = path if path.is_absolute() else workdir / path
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
        zo = cfg.get("zero_optimization") or {}
        stage = int(zo.get("stage", 0))
        off_opt = str((zo.get("offload_optimizer") or {}).get("device", "none")) != "none"
        off_par = str((zo.get("offload_param") or {}).get("device", "none")) != "none"
        buckets = sum(_elements(zo.get(k)) for k in ("reduce_bucket_size", "allgather_bucket_size")) \
            if stage in (1, 2) else 0
        return ZeroConfig(stage, off_opt, off_par and stage == 3, buckets)
    except (OSError, ValueError, TypeError):
        notes.append(f"sft.args.deepspeed {value!r} is neither an ms-swift preset ({', '.join(PRESETS)}) nor a "
                     "readable json here: assumed ZeRO-2")
        return PRESETS["zero2"]


def _elements(value: Any) -> int:
    """A DeepSpeed bucket size; 'auto' (filled in by the HF integration) counts as DeepSpeed's default 5e8."""
    number = as_float(value)
    return int(number) if number is not None else int(5e8)


def _dtype(value: Any, spec_dir: Path | None, notes: list[str]) -> int:
    if value is None:
        dtype = None
        if spec_dir is not None and (spec_dir / "config.json").is_file():
            try:
                cfg = json.loads((spec_dir / "config.json").read_text(encoding="utf-8"))
                dtype = cfg.get("torch_dtype") or cfg.get("dtype")
            except (OSError, ValueError):
                dtype = None
        notes.append(f"sft.args.torch_dtype not set: ms-swift takes the model's ({dtype or 'bfloat16'})")
        value = dtype or "bfloat16"
    return 4 if str(value) in ("float32", "fp32") else 2


def read_sft(recipe: Any, opts: Options) -> Read:
    m = recipe.model
    sft = m.sft
    notes: list[str] = []
    args: dict[str, Any] = {k.lstrip("-"): v for k, v in (sft.args or {}).items()}
    env = sft.env or {}
    spec = model_for(recipe, "sft", opts, notes)
    workdir = Path(str(m.workdir))
    model_dir = None if "${" in str(sft.model) else (workdir / str(sft.model))
    nodes, per = cluster_size(recipe, opts, notes)

    def arg(name: str, default: Any, why: str | None = None) -> Any:
        if name in args and not is_launch_ref(args[name]) and args[name] is not None:
            return args[name]
        if why:
            notes.append(f"sft.args.{name} not set: {why}")
        return default

    tuner = args.get("tuner_type", args.get("train_type"))
    if tuner is None:
        tuner = "lora"
        notes.append("sft.args.tuner_type not set: ms-swift 4.6 defaults to lora")
    max_length = as_int(arg("max_length", None, f"ms-swift uses the model's max_position_embeddings "
                                              f"({spec.text.max_positions:,})"))
    notes.append(f"the longest SFT sample is taken as max_length ({max_length or spec.text.max_positions:,} tokens): "
                 "ms-swift drops longer ones; override sft.args.max_length=N to see a shorter bound")
    mp = as_int(m.vision.max_pixels)  # the one image budget (vision:), as ms-swift receives it
    if mp is None:
        tok = as_int(env.get("IMAGE_MAX_TOKEN_NUM"))
        if tok:
            mp = tok * pixels_per_token(spec.family)
        else:
            notes.append(f"vision.max_pixels not set: qwen_vl_utils caps an image at {DEFAULT_MAX_TOKENS:,} visual "
                         "tokens (IMAGE_MAX_TOKEN_NUM)")
    resp = opts.response_tokens
    if resp is None:
        grpo_resp = as_int(((m.grpo.overrides if m.grpo else {}) or {}).get("data.max_response_length")) \
            if m.grpo is not None and m.grpo.engine == "verl" else None
        resp = grpo_resp or SFT_RESPONSE_STANDIN
        src = "the recipe's grpo data.max_response_length" if grpo_resp else "a stand-in"
        notes.append(f"longest SFT answer assumed {resp:,} tokens ({src}; the data is not read): pass "
                     "--response-tokens N")
    sp = as_int(args.get("sequence_parallel_size")) or 1
    keep = args.get("use_logits_to_keep")
    if keep is None:
        keep = _transformers_major() >= 5 and sp == 1
    settings = SftSettings(
        nodes=nodes, gpus_per_node=per, tuner=str(tuner),
        freeze_llm=as_bool(args.get("freeze_llm"), False), freeze_vit=as_bool(args.get("freeze_vit"), True),
        freeze_aligner=as_bool(args.get("freeze_aligner"), True),
        lora_rank=as_int(args.get("lora_rank")) or 8, lora_dropout=as_float(args.get("lora_dropout")) or (
            0.0 if "lora_dropout" in args else 0.05),
        dtype_bytes=_dtype(args.get("torch_dtype"), model_dir, notes),
        deepspeed=_deepspeed(args.get("deepspeed"), workdir, notes),
        gradient_checkpointing=as_bool(args.get("gradient_checkpointing"), True),
        vit_gradient_checkpointing=(as_bool(args["vit_gradient_checkpointing"], True)
                                    if args.get("vit_gradient_checkpointing") is not None else None),
        max_length=max_length, max_pixels=mp, images_per_sample=images_per_prompt(recipe),
        prompt_tokens=prompt_text_tokens(recipe), response_tokens=resp,
        batch=as_int(args.get("per_device_train_batch_size")) or 1,
        attn_impl=str(args.get("attn_impl") or "sdpa"),
        use_liger_kernel=as_bool(args.get("use_liger_kernel"), False), logits_to_keep=bool(keep))
    if args.get("attn_impl") is None:
        notes.append("sft.args.attn_impl not set: transformers' default sdpa (no score matrix kept on GPU)")
    extra = {
        "grad_accum": as_int(args.get("gradient_accumulation_steps")),
        "epochs": as_float(args.get("num_train_epochs")) or 3.0,  # transformers TrainingArguments default
        "max_steps": as_int(args.get("max_steps")) or -1,
        "split": as_float(args.get("split_dataset_ratio")) or 0.0,
        "datasets": list(sft.dataset), "workdir": workdir,
    }
    return Read(spec, settings, notes, extra)


def _transformers_major() -> int:
    from importlib import metadata
    try:
        return int(metadata.version("transformers").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 5


# ---------------------------------------------------------------------------------------------- GRPO (verl)

def flat(recipe: Any) -> dict[str, Any]:
    from ..engines.verl import flatten
    return {k.lstrip("+"): v for top, val in recipe.model.grpo.overrides.items() for k, v in flatten(top, val)}


def read_grpo(recipe: Any, opts: Options) -> Read:
    m = recipe.model
    notes: list[str] = []
    spec = model_for(recipe, "grpo", opts, notes)
    ov = flat(recipe)
    d = GrpoSettings()

    def get(key: str, default: Any, kind: type = int) -> Any:
        value = ov.get(key)
        if value is None or is_launch_ref(value):
            if is_launch_ref(value):
                notes.append(f"grpo.overrides.{key} is {value} (set at launch): used verl's default {default}")
            return default
        conv = {int: as_int, float: as_float}.get(kind)
        if kind is bool:
            return as_bool(value, default)
        out = conv(value) if conv else value
        return default if out is None else out

    nodes, per = cluster_size(recipe, opts, notes)
    nnodes = opts.nodes if opts.nodes is not None else (as_int(ov.get("trainer.nnodes")) or nodes)
    gpn = opts.gpus_per_node if opts.gpus_per_node is not None else (as_int(ov.get("trainer.n_gpus_per_node")) or per)
    A = "actor_rollout_ref."
    entropy = (as_float(ov.get(A + "actor.entropy_coeff")) or 0.0) != 0.0
    mp, origin = (m.vision.max_pixels, "vision.max_pixels") if m.vision.max_pixels else _processor_max_pixels(recipe)
    if mp is None:
        notes.append(f"the GRPO model's processor is not here: images capped at {DEFAULT_MAX_TOKENS:,} visual tokens "
                     "(qwen_vl_utils default), then by data.max_prompt_length")
    ref_offload = ov.get(A + "ref.fsdp_config.param_offload")
    if ref_offload is not None and not as_bool(ref_offload, True):
        notes.append("ref.fsdp_config.param_offload is false, but verl 0.9.1 CPU-offloads the forward-only reference "
                     "anyway (workers/engine/fsdp/transformer_impl.py); estimated as offloaded")
    model_dtype = str(ov.get(A + "actor.fsdp_config.model_dtype", "fp32"))
    s = GrpoSettings(
        nnodes=nnodes, gpus_per_node=gpn,
        train_batch_size=get("data.train_batch_size", d.train_batch_size),
        n=get(A + "rollout.n", d.n), max_prompt=get("data.max_prompt_length", d.max_prompt),
        max_response=get("data.max_response_length", d.max_response),
        ppo_mini_batch_size=get(A + "actor.ppo_mini_batch_size", d.ppo_mini_batch_size),
        ppo_micro_batch_size_per_gpu=get(A + "actor.ppo_micro_batch_size_per_gpu", None),
        ppo_epochs=get(A + "actor.ppo_epochs", d.ppo_epochs),
        use_dynamic_bsz=get(A + "actor.use_dynamic_bsz", False, bool),
        ppo_max_token_len_per_gpu=get(A + "actor.ppo_max_token_len_per_gpu", d.ppo_max_token_len_per_gpu),
        log_prob_micro=get(A + "rollout.log_prob_micro_batch_size_per_gpu", None),
        ref_log_prob_micro=get(A + "ref.log_prob_micro_batch_size_per_gpu", None),
        tp=get(A + "rollout.tensor_model_parallel_size", d.tp),
        gpu_memory_utilization=get(A + "rollout.gpu_memory_utilization", d.gpu_memory_utilization, float),
        free_cache_engine=get(A + "rollout.free_cache_engine", True, bool),
        max_num_batched_tokens=get(A + "rollout.max_num_batched_tokens", d.max_num_batched_tokens),
        max_num_seqs=get(A + "rollout.max_num_seqs", d.max_num_seqs),
        enforce_eager=get(A + "rollout.enforce_eager", False, bool),
        param_offload=get(A + "actor.fsdp_config.param_offload", False, bool),
        optimizer_offload=get(A + "actor.fsdp_config.optimizer_offload", False, bool),
        ref_needed=get(A + "actor.use_kl_loss", False, bool) or get("algorithm.use_kl_in_reward", False, bool),
        gradient_checkpointing=get(A + "model.enable_gradient_checkpointing", True, bool),
        use_fused_kernels=get(A + "model.use_fused_kernels", False, bool),
        calculate_entropy=entropy or get(A + "actor.calculate_entropy", False, bool),
        lora_rank=get(A + "model.lora_rank", 0), model_dtype_bytes=2 if model_dtype in ("bf16", "bfloat16") else 4,
        max_pixels=mp, images_per_prompt=images_per_prompt(recipe), prompt_text_tokens=prompt_text_tokens(recipe))
    for key, value in ((A + "actor.ppo_micro_batch_size_per_gpu", s.ppo_micro_batch_size_per_gpu),
                       (A + "rollout.log_prob_micro_batch_size_per_gpu", s.log_prob_micro)):
        if value is None and not s.use_dynamic_bsz:
            notes.append(f"grpo.overrides.{key} not set: estimated with 1 (verl requires it without dynamic batching)")
    extra = {"epochs": get("trainer.total_epochs", 30), "total_steps": as_int(ov.get("trainer.total_training_steps")),
             "train_files": m.grpo.train_files, "workdir": Path(str(m.workdir)), "pixels_origin": origin}
    return Read(spec, s, notes, extra)


def _processor_max_pixels(recipe: Any) -> tuple[int | None, str]:
    """verl resizes with the model's processor: its preprocessor_config.json when the model is here."""
    model = str(recipe.model.grpo.model)
    if "${" in model:
        return None, "launch-time model path"
    cfg = Path(str(recipe.model.workdir)) / model / "preprocessor_config.json"
    if not cfg.is_file():
        return None, "model not here"
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, f"{cfg} unreadable"
    mp = data.get("max_pixels") or (data.get("size") or {}).get("longest_edge")
    return (int(mp), str(cfg)) if mp else (None, f"{cfg} has no max_pixels")
