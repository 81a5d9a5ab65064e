"""ms-swift plans: `swift sft` for SFT and `swift rlhf --rlhf_type grpo` for the CPU-capable GRPO path.

Flags are rendered as `--name value`; lists become several values (`--dataset a b`), booleans `true`/`false`,
and `null` leaves a flag out (how a profile removes a flag such as `--deepspeed` on CPU).
"""

from __future__ import annotations

import json
from typing import Any

from .common import RenderContext, flags, stage_env
from .critic import reward_kwargs
from .plan import Plan

# The cluster section maps onto the env ms-swift turns into torchrun flags (swift/cli/main.py).
CLUSTER_ENV = (
    ("cuda_visible_devices", "CUDA_VISIBLE_DEVICES"),
    ("nodes", "NNODES"),
    ("node_rank", "NODE_RANK"),
    ("master_addr", "MASTER_ADDR"),
    ("master_port", "MASTER_PORT"),
    ("gpus_per_node", "NPROC_PER_NODE"),
)


def cluster_env(ctx: RenderContext, cluster: Any) -> dict[str, str]:
    out = {}
    for key, env in CLUSTER_ENV:
        if getattr(cluster, key) is not None:
            out[env] = ctx.value(getattr(cluster, key))
            ctx.origins[f"env:{env}"] = f"cluster.{key}"
    return out


def vision_flags(recipe: Any) -> dict[str, tuple[Any, str]]:
    """The image budget's flag: ms-swift 4.6 rescales each image to --max_pixels (a template argument; it has no
    --min_pixels) before qwen-vl-utils' own resize."""
    v = recipe.vision
    return {"max_pixels": (v.max_pixels, "vision.max_pixels")} if v.max_pixels is not None else {}


def family_flags(recipe: Any, args: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """--model_type / --template of the recipe's model family (fakehr_orchestra/families.py), unless the stage's
    args set them (validate then checks they agree with the family and with ms-swift's registry). No family known:
    nothing, and ms-swift infers them from the model itself."""
    from ..families import of_recipe

    fam = of_recipe(recipe)
    if fam is None:
        return {}
    out = {}
    if "model_type" not in args:
        out["model_type"] = (fam.swift_model_type, "model_family")
    if "template" not in args:
        out["template"] = (fam.swift_template, "model_family")
    return out


def vision_env(ctx: RenderContext, recipe: Any) -> dict[str, str]:
    """vision.min_pixels for qwen-vl-utils' resize inside ms-swift: MIN_PIXELS, which ms-swift 4.6 turns into
    IMAGE_MIN_TOKEN_NUM (swift/model/models/qwen.py compat_qwen_vl_utils). The maximum is --max_pixels (a rescale
    before that resize: fakehr_orchestra/vision.py), not MAX_PIXELS, which would floor where ms-swift rounds."""
    if recipe.vision.min_pixels is None:
        return {}
    ctx.origins["env:MIN_PIXELS"] = "vision.min_pixels"
    return {"MIN_PIXELS": ctx.value(recipe.vision.min_pixels)}


def _plan(stage: str, command: str, argv: list[str], env: dict[str, str], output_dir: str, recipe: Any,
          ctx: RenderContext) -> Plan:
    """A `swift <command>` plan with its facts: ms-swift spreads itself over nodes with torchrun from its env."""
    return Plan(stage=stage, argv=["swift", command] + argv, env=env, cwd=recipe.workdir, env_refs=list(ctx.refs),
                translations=list(ctx.applied), versions={"swift": ctx.target("swift")}, engine="swift",
                entrypoint=f"swift {command}", head=2, launcher="torchrun", output_dir=ctx.value(output_dir),
                nnodes=env.get("NNODES"), procs_per_node=env.get("NPROC_PER_NODE"), origins=dict(ctx.origins))


def render_sft(recipe: Any, ctx: RenderContext) -> Plan:
    sft = recipe.sft
    env = cluster_env(ctx, recipe.cluster)
    env.update(stage_env(ctx, "swift", sft.env, "sft"))
    env.update(vision_env(ctx, recipe))
    args: dict[str, tuple[Any, str]] = {"model": (sft.model, "sft.model"), **family_flags(recipe, sft.args),
                                        "dataset": (list(sft.dataset), "sft.dataset")}
    args.update({name: (value, f"sft.args.{name}") for name, value in sft.args.items()})
    args.update(vision_flags(recipe))
    args["output_dir"] = (sft.output_dir, "sft.output_dir")
    return _plan("sft", "sft", flags(ctx, args), env, sft.output_dir, recipe, ctx)


def swift_reward_kwargs(recipe: Any) -> dict[str, Any]:
    """The reward kwargs plus `response_prefix` from `--response_prefix`: ms-swift generates after the prefix and
    hands the reward the completion without it, so the parser must put back exactly what ms-swift pre-filled.
    (verl's rollout pre-fills nothing, so its plan passes no prefix: engines/verl.py.)"""
    kwargs = reward_kwargs(recipe)
    prefix = recipe.grpo.swift_args.get("response_prefix")
    if prefix:
        kwargs["response_prefix"] = prefix
    return kwargs


def render_swift_grpo(recipe: Any, ctx: RenderContext, orm_adapter: str) -> Plan:
    """GRPO with ms-swift's own trainer and our reward plugin behind the ORM adapter (rewards/swift_orm.py).

    The adapter learns which plugin function to wrap, and its kwargs, from the FAKEHR_REWARD_* env vars, which are
    part of the plan (so they are visible in --dry-run and in the run dir).
    """
    grpo = recipe.grpo
    reward = grpo.reward
    env = cluster_env(ctx, recipe.cluster)
    env.update(stage_env(ctx, "swift", grpo.env, "grpo"))
    env.update(vision_env(ctx, recipe))
    orm_name = reward.swift_orm or f"fakehr_{recipe.method}"
    env.update({
        "FAKEHR_REWARD_PATH": ctx.value(reward.path),
        "FAKEHR_REWARD_NAME": reward.name,
        "FAKEHR_REWARD_ORM": orm_name,
        # the critic's URL and client settings come from the recipe's critic: section (engines/critic.py)
        "FAKEHR_REWARD_KWARGS": ctx.value(json.dumps(swift_reward_kwargs(recipe), sort_keys=True)),
    })
    ctx.origins.update({"env:FAKEHR_REWARD_PATH": "grpo.reward.path", "env:FAKEHR_REWARD_NAME": "grpo.reward.name",
                        "env:FAKEHR_REWARD_ORM": "grpo.reward.swift_orm",
                        "env:FAKEHR_REWARD_KWARGS": "grpo.reward.kwargs"})
    if reward.manager is not None and reward.manager.path:
        # the group reward verl's manager adds, from the same file (rewards/swift_orm.py GroupBonus)
        env.update({"FAKEHR_REWARD_GROUPS": ctx.value(reward.manager.path),
                    "FAKEHR_REWARD_GROUP_SIZE": str(grpo.swift_args.get("num_generations"))})
        ctx.origins.update({"env:FAKEHR_REWARD_GROUPS": "grpo.reward.manager.path",
                            "env:FAKEHR_REWARD_GROUP_SIZE": "grpo.swift_args.num_generations"})
    files = grpo.train_files if isinstance(grpo.train_files, list) else [grpo.train_files]
    args: dict[str, tuple[Any, str]] = {
        "rlhf_type": ("grpo", "grpo.engine"), "model": (grpo.model, "grpo.model"),
        **family_flags(recipe, grpo.swift_args),
        "dataset": (files, "grpo.train_files"), "external_plugins": (orm_adapter, "grpo.engine"),
        "reward_funcs": ([orm_name], "grpo.reward.swift_orm")}
    args.update({name: (value, f"grpo.swift_args.{name}") for name, value in grpo.swift_args.items()})
    args.update(vision_flags(recipe))
    args["output_dir"] = (grpo.output_dir, "grpo.output_dir")
    return _plan("grpo", "rlhf", flags(ctx, args), env, grpo.output_dir, recipe, ctx)
