"""ms-swift plans: `swift sft` for SFT and `swift rlhf --rlhf_type grpo` for the CPU-capable GRPO path.

Flags are rendered as `--name value`; lists become several values (`--dataset a b`), booleans `true`/`false`,
and `null` leaves a flag out (how a profile removes a flag such as `--deepspeed` on CPU).
"""

from __future__ import annotations

import json
from typing import Any

from .common import RenderContext, stage_env
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
    return {env: ctx.value(getattr(cluster, key)) for key, env in CLUSTER_ENV if getattr(cluster, key) is not None}


def flags(ctx: RenderContext, args: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in args.items():
        if value is None:
            continue
        argv.append("--" + ctx.rename("swift", "flag", name))
        if isinstance(value, (list, tuple)):
            argv.extend(ctx.value(v) for v in value)
        elif isinstance(value, dict):
            argv.append(json.dumps(value, separators=(",", ":")))
        else:
            argv.append(ctx.value(value))
    return argv


def render_sft(recipe: Any, ctx: RenderContext) -> Plan:
    sft = recipe.sft
    env = cluster_env(ctx, recipe.cluster)
    env.update(stage_env(ctx, "swift", sft.env))
    args: dict[str, Any] = {"model": sft.model, "dataset": list(sft.dataset)}
    args.update(sft.args)
    args["output_dir"] = sft.output_dir
    argv = ["swift", "sft"] + flags(ctx, args)
    return Plan(stage="sft", argv=argv, env=env, cwd=recipe.workdir, env_refs=list(ctx.refs),
                translations=list(ctx.applied), versions={"swift": ctx.target("swift")})


def render_swift_grpo(recipe: Any, ctx: RenderContext, orm_adapter: str) -> Plan:
    """GRPO with ms-swift's own trainer and our reward plugin behind the ORM adapter (rewards/swift_orm.py).

    The adapter learns which plugin function to wrap, and its kwargs, from the FAKEHR_REWARD_* env vars, which are
    part of the plan (so they are visible in --dry-run and in the run dir).
    """
    grpo = recipe.grpo
    reward = grpo.reward
    env = cluster_env(ctx, recipe.cluster)
    env.update(stage_env(ctx, "swift", grpo.env))
    orm_name = reward.swift_orm or f"fakehr_{recipe.method}"
    env.update({
        "FAKEHR_REWARD_PATH": ctx.value(reward.path),
        "FAKEHR_REWARD_NAME": reward.name,
        "FAKEHR_REWARD_ORM": orm_name,
        # the critic's URL and client settings come from the recipe's critic: section (engines/critic.py)
        "FAKEHR_REWARD_KWARGS": ctx.value(json.dumps(reward_kwargs(recipe), sort_keys=True)),
    })
    files = grpo.train_files if isinstance(grpo.train_files, list) else [grpo.train_files]
    args: dict[str, Any] = {"rlhf_type": "grpo", "model": grpo.model, "dataset": files,
                            "external_plugins": orm_adapter, "reward_funcs": [orm_name]}
    args.update(grpo.swift_args)
    args["output_dir"] = grpo.output_dir
    argv = ["swift", "rlhf"] + flags(ctx, args)
    return Plan(stage="grpo", argv=argv, env=env, cwd=recipe.workdir, env_refs=list(ctx.refs),
                translations=list(ctx.applied), versions={"swift": ctx.target("swift")})
