"""Checks across sections that a careful engineer does by hand: cluster shape, batch divisibility, image budget.

Batch and parallelism rules restate verl's own (each cites the line it mirrors) so that every problem is reported
at once; verl's `validate_config` itself stops at the first one (it is run too, see verl_config.run_verl_validate).
"""

from __future__ import annotations

from typing import Any

from .context import Context, as_int

QWEN_PATCH = 28  # one Qwen2/2.5-VL visual token covers 28x28 pixels (patch 14 x spatial merge 2)
QWEN_MAX_PIXELS = 16384 * 28 * 28  # qwen_vl_utils / ms-swift MAX_PIXELS default at factor 28 (Qwen2.5-VL only:
# the checks below use the recipe's family, `family(ctx).max_pixels`)


def family(ctx: Context) -> Any:
    """The recipe's model family (families.py) for the image arithmetic; without one, Qwen2.5-VL's, and
    check_family has already reported the missing model_family as an error."""
    from ..families import FAMILIES, of_recipe

    return of_recipe(ctx.model) or FAMILIES["qwen2_5_vl"]
CHARS_PER_TOKEN = 4  # rough text-token estimate for the prompt (ASCII English); images dominate anyway


def flat_overrides(recipe: Any) -> dict[str, Any]:
    from ..engines.verl import flatten
    return {k.lstrip("+"): v for top, val in recipe.model.grpo.overrides.items() for k, v in flatten(top, val)}


# ----------------------------------------------------------------------------------------- cluster shape

def _compare(ctx: Context, key_a: str, a: Any, key_b: str, b: Any, what: str, stage: str, fix: str) -> None:
    """Two recipe values that must agree; a launch-time ref on one side only is a warning (unknown until launch)."""
    a, b = ctx.resolve(a), ctx.resolve(b)
    if a is None or b is None:
        return
    ia, ib = as_int(a), as_int(b)
    if ia is not None and ib is not None:
        if ia != ib:
            ctx.error("cluster", key_b, f"{what}: {key_a} is {ia} but {key_b} is {ib}", fix, stage)
        return
    if a == b:
        return
    ctx.warning("cluster", key_b, f"{what}: {key_a} is {a!r} and {key_b} is {b!r}; they agree only if the "
                "launch environment makes them equal", fix, stage)


def check_cluster(ctx: Context, stages: tuple[str, ...]) -> None:
    m = ctx.model
    cl = m.cluster
    devices = [d for d in str(cl.cuda_visible_devices or "").split(",") if d.strip()]
    procs = as_int(ctx.resolve(cl.gpus_per_node))
    if devices and procs is not None and cl.device == "cuda":
        if len(devices) < procs:
            ctx.error("cluster", "cluster.cuda_visible_devices", f"{len(devices)} visible devices but "
                      f"cluster.gpus_per_node starts {procs} processes per node",
                      "list one device per process, or lower gpus_per_node")
        elif len(devices) > procs:
            ctx.warning("cluster", "cluster.cuda_visible_devices", f"{len(devices)} visible devices but only "
                        f"{procs} processes per node: {len(devices) - procs} GPUs stay idle")
    if "grpo" in stages and m.grpo is not None and m.grpo.engine == "verl":
        ov = flat_overrides(ctx.recipe)
        fix = "set trainer.nnodes: ${cluster.nodes} and trainer.n_gpus_per_node: ${cluster.gpus_per_node}"
        _compare(ctx, "cluster.nodes", cl.nodes, "grpo.overrides.trainer.nnodes", ov.get("trainer.nnodes"),
                 "node count (verl sizes its Ray pool from trainer.nnodes)", "grpo", fix)
        env = m.grpo.env or {}
        # GRPO may train on a subset of the node's GPUs (grpo.env.CUDA_VISIBLE_DEVICES), e.g. when a critic server
        # has the others: then that list, not the cluster's, is what trainer.n_gpus_per_node must match
        grpo_devices = [d for d in str(env.get("CUDA_VISIBLE_DEVICES") or "").split(",") if d.strip()]
        if grpo_devices and cl.device == "cuda":
            _compare(ctx, "grpo.env.CUDA_VISIBLE_DEVICES (count)", len(grpo_devices),
                     "grpo.overrides.trainer.n_gpus_per_node", ov.get("trainer.n_gpus_per_node"), "GPUs per node",
                     "grpo", "make grpo.env.CUDA_VISIBLE_DEVICES list trainer.n_gpus_per_node devices")
            devices = []
        else:
            _compare(ctx, "cluster.gpus_per_node", cl.gpus_per_node, "grpo.overrides.trainer.n_gpus_per_node",
                     ov.get("trainer.n_gpus_per_node"), "GPUs per node", "grpo", fix)
        if "NNODES" in env:
            _compare(ctx, "grpo.overrides.trainer.nnodes", ov.get("trainer.nnodes"), "grpo.env.NNODES",
                     env["NNODES"], "node count", "grpo", "make grpo.env.NNODES and trainer.nnodes the same")
        if devices and cl.device == "cuda":
            _compare(ctx, "cluster.cuda_visible_devices (count)", len(devices),
                     "grpo.overrides.trainer.n_gpus_per_node", ov.get("trainer.n_gpus_per_node"),
                     "GPUs per node", "grpo", "make CUDA_VISIBLE_DEVICES list trainer.n_gpus_per_node devices")


# ----------------------------------------------------------------------------------------- batch / parallelism

def check_batches(ctx: Context, cfg: Any, sizes_from_launch: bool) -> None:
    """GRPO batch and parallel sizes on the composed verl config, every rule at once."""
    level = "warning" if sizes_from_launch else "error"
    note = " (GPU counts come from the launch environment: checked with stand-ins)" if sizes_from_launch else ""
    st = "grpo"
    actor, rollout, data, trainer = (cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout, cfg.data,
                                     cfg.trainer)
    ov = "grpo.overrides."
    try:
        n_gpus = int(trainer.n_gpus_per_node) * int(trainer.nnodes)
        n = int(rollout.n)
        tbs = int(data.train_batch_size)
    except (TypeError, ValueError):
        return
    if not actor.use_dynamic_bsz and actor.strategy != "megatron":
        if (tbs * n) % n_gpus:
            ctx.add(level, "batch", ov + "data.train_batch_size",
                    f"real_train_batch_size ({tbs * n}) must be divisible by minimal possible batch size "
                    f"({n_gpus}): data.train_batch_size x rollout.n over nnodes x n_gpus_per_node "
                    f"[verl/utils/config.py validate_config]{note}",
                    f"make data.train_batch_size x rollout.n a multiple of {n_gpus}", st)
        mini = actor.ppo_mini_batch_size
        if mini is not None:
            mini = int(mini)
            if tbs < mini:
                ctx.add(level, "batch", ov + "actor_rollout_ref.actor.ppo_mini_batch_size",
                        f"train_batch_size ({tbs}) must be >= actor.ppo_mini_batch_size ({mini}) "
                        f"[verl/workers/config/actor.py ActorConfig.validate]",
                        f"set ppo_mini_batch_size <= {tbs} (it counts prompts; verl multiplies it by rollout.n)", st)
            sp = int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
            dp = max(n_gpus // sp, 1)
            if (mini * n) % dp:
                ctx.add(level, "batch", ov + "actor_rollout_ref.actor.ppo_mini_batch_size",
                        f"ppo_mini_batch_size x rollout.n ({mini} x {n} = {mini * n}) must be divisible by the "
                        f"data-parallel size ({dp}) [verl/trainer/ppo/ray_trainer.py multiplies by rollout.n; "
                        f"verl/workers/engine_workers.py asserts mini_batch_size % dp == 0]{note}",
                        f"make ppo_mini_batch_size x rollout.n a multiple of {dp}", st)
            micro = actor.ppo_micro_batch_size_per_gpu
            if micro and (mini * n) % dp == 0 and ((mini * n) // dp) % int(micro):
                ctx.warning("batch", ov + "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
                            f"per-GPU mini batch {(mini * n) // dp} is not a multiple of "
                            f"ppo_micro_batch_size_per_gpu ({micro}): the last micro batch of each step is short",
                            None, st)
    tp, dpr, pp = (int(rollout.get(k, 1) or 1) for k in
                   ("tensor_model_parallel_size", "data_parallel_size", "pipeline_model_parallel_size"))
    infer = tp * dpr * pp
    if n_gpus % infer:
        ctx.add(level, "parallel", ov + "actor_rollout_ref.rollout.tensor_model_parallel_size",
                f"rollout world_size: {n_gpus} is not divisible by infer_world_size: {infer} "
                f"(tensor {tp} x data {dpr} x pipeline {pp}) [verl/workers/engine_workers.py]{note}",
                f"use a tensor_model_parallel_size that divides {n_gpus}", st)
    per_node = int(trainer.n_gpus_per_node)
    replica_node = min(per_node, infer)
    if infer % replica_node:
        ctx.add(level, "parallel", ov + "actor_rollout_ref.rollout.tensor_model_parallel_size",
                f"world_size {infer} must be divisible by gpus_per_node {replica_node} "
                f"[verl/workers/rollout/replica.py]{note}", "keep one rollout replica within whole nodes", st)


# ----------------------------------------------------------------------------------------- image budget

def image_tokens(max_pixels: int, pixels_per_token: int = QWEN_PATCH * QWEN_PATCH) -> int:
    return max_pixels // pixels_per_token


def prompt_tokens(ctx: Context) -> int:
    p = ctx.model.prompt
    text = (p.system or "") + (p.user or "")
    return len(text.replace("<image>", "")) // CHARS_PER_TOKEN + 16  # + chat-template tokens


def images_per_prompt(ctx: Context) -> int:
    return max(ctx.model.prompt.user.count("<image>"), 1)


def budget_finding(ctx: Context, stage: str, key: str, limit: int, limit_name: str, max_pixels: int,
                   pixels_from: str, consequence: str) -> int:
    """Worst case (every image at max_pixels) against a token limit; returns the worst-case budget."""
    fam = family(ctx)
    per_image = image_tokens(max_pixels, fam.pixels_per_token)
    budget = images_per_prompt(ctx) * per_image + prompt_tokens(ctx)
    if budget > limit:
        ctx.warning("image", key, f"an image at max_pixels={max_pixels} ({pixels_from}) is {per_image} visual "
                    f"tokens (max_pixels/({fam.factor}*{fam.factor}), {fam.name}); with the prompt about {budget} "
                    f"tokens > {limit_name} {limit}: {consequence}",
                    f"lower max_pixels to <= "
                    f"{(limit - prompt_tokens(ctx)) // images_per_prompt(ctx) * fam.pixels_per_token} "
                    f"or raise {limit_name} (the data check measures real images when the files are here)", stage)
    return budget


def check_image_budget(ctx: Context, stages: tuple[str, ...], cfg: Any) -> None:
    m = ctx.model
    if "sft" in stages and m.sft is not None:
        args = m.sft.args
        limit = as_int(args.get("max_length"))
        mp = m.vision.max_pixels or family(ctx).max_pixels
        if limit:
            budget_finding(ctx, "sft", "vision.max_pixels" if m.vision.max_pixels else "sft.args.max_length",
                           limit, "max_length", mp, "vision" if m.vision.max_pixels else "qwen-vl-utils default",
                           "ms-swift drops such samples (truncation_strategy 'delete') or fails on them")
    if "grpo" in stages and m.grpo is not None and m.grpo.engine == "verl" and cfg is not None:
        try:
            limit = int(cfg.data.max_prompt_length)
        except (TypeError, ValueError):
            return
        mp, origin = verl_max_pixels(ctx)
        drop = "data.filter_overlong_prompts drops such rows silently" if cfg.data.get("filter_overlong_prompts") \
            else f"data.truncation={cfg.data.get('truncation')} decides what happens to them"
        budget_finding(ctx, "grpo", "grpo.overrides.data.max_prompt_length", limit, "data.max_prompt_length", mp,
                       origin, drop)


def verl_max_pixels(ctx: Context) -> tuple[int, str]:
    """The recipe's budget (the parquet's image dicts carry it), else the model processor's: its
    preprocessor_config.json when the model is here, else Qwen's default."""
    import json
    from pathlib import Path
    if ctx.model.vision.max_pixels:
        return int(ctx.model.vision.max_pixels), "vision.max_pixels"
    model = str(ctx.model.grpo.model)
    cfg = Path(ctx.model.workdir) / model / "preprocessor_config.json"
    if "${" not in model and cfg.exists():
        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
            mp = data.get("max_pixels") or (data.get("size") or {}).get("longest_edge")
            if mp:
                return int(mp), f"{cfg}"
        except (OSError, ValueError):
            pass
    fam = family(ctx)
    return fam.max_pixels, f"qwen-vl-utils' default for {fam.name}; the model is not here to read"
