"""What a finished stage produced, and where an unfinished training stage can continue from.

Each function here is one stage's answer, read from what the framework itself wrote (pipeline/artifacts.py): the
registry in pipeline/stages.py names which function answers for which stage, so the runner asks without knowing
the stages. A collector returns the stage's artifacts by name (the names later stages are wired to); a training
stage's artifacts include its training curves in one schema (pipeline/curves.py, written to
<run>/curves/<stage>.jsonl).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..prompts import effective
from . import artifacts as art
from . import curves
from .rundir import RunDir

if TYPE_CHECKING:
    from ..recipe.load import Recipe
    from ..recipe.schema.recipe import RecipeModel


def grpo_engine(recipe: Recipe) -> str | None:
    return recipe.model.grpo.engine if recipe.model.grpo else None


def collect_data(run: RunDir, recipe: Recipe) -> dict[str, str]:
    """artifacts.json names each export as data.export.FILES does: the roles stages.py wires."""
    return dict(json.loads((run.stage_dir("data") / "artifacts.json").read_text()))


def collect_sft(run: RunDir, recipe: Recipe) -> dict[str, str]:
    found = {"checkpoint": art.swift_last_checkpoint(run.log("sft"))}
    return dict(found, curves=write_curves("sft", "swift", run, found["checkpoint"], recipe, components=None))


def collect_grpo(run: RunDir, recipe: Recipe) -> dict[str, str]:
    engine = grpo_engine(recipe)
    if engine == "verl":
        found = {"checkpoint": art.verl_latest_actor(run.stage_dir("grpo"))}
    else:
        found = {"checkpoint": art.swift_last_checkpoint(run.log("grpo"))}
    return dict(found, curves=write_curves("grpo", engine or "swift", run, found["checkpoint"], recipe,
                                           components=reward_components(recipe.model)))


def collect_merge(run: RunDir, recipe: Recipe) -> dict[str, str]:
    return {"model": str(run.stage_dir("merge") / "hf")}


def collect_eval(run: RunDir, recipe: Recipe) -> dict[str, str]:
    report = run.stage_dir("eval") / "report"
    found = {f"metrics_{p.parent.name}": str(p) for p in sorted(run.stage_dir("eval").glob("*/metrics.json"))}
    found["report"] = str(report)
    return found


def data_sources(recipe: Recipe, found: dict[str, str]) -> str | None:
    """The fingerprint of what the data stage read (data/fingerprint.py), so a resume notices a replaced image;
    None when it wrote no manifest."""
    if "manifest" not in found:
        return None
    from ..data.fingerprint import stage_sources_fingerprint
    return stage_sources_fingerprint(recipe.model, Path(found["manifest"]).parent)


def sft_resume_point(run: RunDir, recipe: Recipe) -> str | None:
    return art.swift_resume_checkpoint(run.stage_dir("sft"))


def grpo_resume_point(run: RunDir, recipe: Recipe) -> str | None:
    """verl's: the global_step folder its own resume code would pick; ms-swift's: its newest complete checkpoint."""
    if grpo_engine(recipe) == "verl":
        return art.verl_latest_checkpoint(run.stage_dir("grpo"))
    return art.swift_resume_checkpoint(run.stage_dir("grpo"))


def write_curves(stage: str, engine: str, run: RunDir, checkpoint: str, recipe: Recipe,
                 components: list[str] | None) -> str:
    """The stage's per-step metrics in one schema (pipeline/curves.py), written to <run>/curves/<stage>.jsonl;
    `components`: the score components the reward declares (GRPO), noted against the ones the logs hold."""
    model = recipe.model
    grpo_dir = run.stage_dir("grpo")  # stages.curve_env put the GRPO logs here
    rollout = (model.grpo.overrides or {}).get("trainer.rollout_data_dir") if model.grpo else None
    rows, meta = curves.collect(stage, engine, checkpoint=checkpoint, trace_dir=grpo_dir / "reward_trace",
                                log_file=run.log(stage), verl_file=grpo_dir / "verl_metrics.jsonl",
                                tb_dir=grpo_dir / "tensorboard", rollout_dir=Path(rollout) if rollout else None,
                                answer_format=model.prompt.answer_format,
                                response_prefix=effective(model.prompt.response_prefix),
                                components=components)
    return str(curves.write(run.path, stage, rows, meta))


def reward_components(model: RecipeModel) -> list[str] | None:
    """What the GRPO reward's files (the plugin and its group-reward manager) declare as score components."""
    from ..plugins import PluginLoadError

    reward = model.grpo.reward if model.grpo else None
    if reward is None or not reward.path:
        return None
    files = [reward.path] + ([reward.manager.path] if reward.manager is not None and reward.manager.path else [])
    try:
        return curves.declared_components(files)
    except PluginLoadError as exc:  # the GRPO steps loaded it a moment ago; an edit since must not lose the run
        raise curves.CurvesError(f"cannot read the reward's declared components: {exc}") from None
