"""verl plans: `python3 -m verl.trainer.main_ppo` with Hydra overrides.

Nested mappings flatten to dotted keys; `+key` (new keys) is written only where the recipe says so or for reward
kwargs, never guessed, so a misspelt key still fails verl's struct check instead of being silently added.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from ..refs import PLAN_REF
from .common import RenderContext, stage_env
from .critic import CLIENT_KWARGS, reward_kwargs
from .plan import Plan
from .versions import translate

_HYDRA_SAFE = re.compile(r"^[A-Za-z0-9_\-+.:/@~%*?]*$")


def hydra_value(value: Any, ctx: RenderContext) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v, ctx) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v, ctx)}" for k, v in value.items()) + "}"
    text = ctx.value(value)
    if _HYDRA_SAFE.match(PLAN_REF.sub("", text)):
        return text
    return _hydra_quote(text)


def _hydra_quote(text: str) -> str:
    """Single-quote for Hydra's override grammar, which unescapes a backslash only before a quote or at the end of
    the string: double exactly those backslash runs, escape the quotes, leave every other backslash alone (so a
    literal backslash-n reaches verl as backslash-n)."""
    out = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text)
    return "'" + out.replace("'", "\\'") + "'"


def flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from flatten(f"{prefix}.{k}" if prefix else str(k), v)
    else:
        yield prefix, value


# the critic's reward kwargs come from the recipe's critic: section
CRITIC_KEYS = {"critic_base_url": "critic.url", "critic_question": "prompt.user",
               **{kwarg: f"critic.{field}" for field, kwarg in CLIENT_KWARGS}}


def reward_overrides(reward: Any, kwargs: dict[str, Any] | None = None) -> dict[str, tuple[Any, str]]:
    """The reward section in verl 0.9's layout (see versions.TRANSLATIONS for older ones): key -> (value, recipe key).
    `kwargs`: the reward kwargs to pass (default: the section's own; the renderer adds the critic's from the recipe's
    critic: section). verl merges reward_kwargs into every compute_score call, in whichever reward worker (Ray node)
    it runs."""
    out: dict[str, tuple[Any, str]] = {
        "reward.custom_reward_function.path": (reward.path, "grpo.reward.path"),
        "reward.custom_reward_function.name": (reward.name, "grpo.reward.name"),
    }
    own = reward.kwargs or {}
    kwargs = own if kwargs is None else kwargs
    for key, value in (flatten("", kwargs) if kwargs else ()):
        rkey = f"grpo.reward.kwargs.{key}" if key.split(".")[0] in own else CRITIC_KEYS.get(key, "critic")
        out[f"+reward.custom_reward_function.reward_kwargs.{key}"] = (value, rkey)
    manager = reward.manager
    if manager is not None:
        if manager.path:
            out["reward.reward_manager.source"] = ("importlib", "grpo.reward.manager.path")
            out["reward.reward_manager.module.path"] = (manager.path, "grpo.reward.manager.path")
        if manager.name:
            out["reward.reward_manager.name"] = (manager.name, "grpo.reward.manager.name")
    return out


ENTRYPOINT = "verl.trainer.main_ppo"
NNODES, GPUS_PER_NODE = "trainer.nnodes", "trainer.n_gpus_per_node"
HYDRA_RUN_DIR = "hydra.run.dir"


def render_grpo(recipe: Any, ctx: RenderContext, nodes: int | None = None) -> Plan:
    """`nodes` (e.g. a Slurm allocation) replaces trainer.nnodes: verl sizes its Ray pool from it."""
    grpo = recipe.grpo
    pairs: list[tuple[str, Any, str]] = [
        ("data.train_files", grpo.train_files, "grpo.train_files"),
        ("data.val_files", grpo.val_files, "grpo.val_files"),
        ("actor_rollout_ref.model.path", grpo.model, "grpo.model"),
        ("trainer.default_local_dir", grpo.output_dir, "grpo.output_dir"),
    ]
    pairs = [p for p in pairs if p[1] is not None]  # val_files unset: verl's default, which validate reports
    written = [(ctx.rename("verl", "key", k), v, f"grpo.overrides.{k}") for key, val in grpo.overrides.items()
               for k, v in flatten(key, val)]
    if nodes is not None:
        written = [w for w in written if (w[0] or "").lstrip("+") != NNODES] + [(NNODES, nodes, "--nodes")]
    # the reward block is written in the layout of the verl the recipe is written for, then translated like the rest,
    # so `render` reports the move (e.g. custom_reward_function -> reward.custom_reward_function on verl 0.9)
    as_written = [(translate("verl", "key", k, ctx.written_for["verl"])[0], v, rkey)
                  for k, (v, rkey) in reward_overrides(grpo.reward, reward_kwargs(recipe)).items()]
    layout = [(ctx.rename("verl", "key", k), v, rkey) for k, v, rkey in as_written if k is not None]
    # a key the target verl no longer reads is left out
    kept = [(k, v, r) for k, v, r in written + layout if k is not None]
    seen: dict[str, str] = {}
    values: dict[str, str] = {}
    argv = ["python3", "-m", ENTRYPOINT]
    for key, value, rkey in pairs + kept:
        bare = key.lstrip("+")
        if bare in seen:
            raise ValueError(f"grpo: verl key {bare} is set twice (by {seen[bare]} and again); keep one")
        seen[bare] = key
        ctx.origins.setdefault(bare, rkey)
        values[bare] = hydra_value(value, ctx)
        argv.append(f"{key}={values[bare]}")
    if HYDRA_RUN_DIR not in seen and grpo.output_dir is not None:
        # main_ppo is a @hydra.main: left alone, hydra writes outputs/DATE/TIME (the composed config and
        # main_ppo.log) into the working directory, the recipe's workdir; beside the checkpoints it stays with the run
        ctx.origins.setdefault(HYDRA_RUN_DIR, "grpo.output_dir")
        argv.append(f"{HYDRA_RUN_DIR}={hydra_value(str(grpo.output_dir).rstrip('/') + '/hydra', ctx)}")
    env = stage_env(ctx, "verl", grpo.env, "grpo")
    return Plan(stage="grpo", argv=argv, env=env, cwd=recipe.workdir, env_refs=list(ctx.refs),
                translations=list(ctx.applied), versions={"verl": ctx.target("verl")}, engine="verl",
                entrypoint=ENTRYPOINT, head=3, launcher="ray", output_dir=values["trainer.default_local_dir"],
                nnodes=values.get(NNODES), procs_per_node=values.get(GPUS_PER_NODE), origins=dict(ctx.origins))
