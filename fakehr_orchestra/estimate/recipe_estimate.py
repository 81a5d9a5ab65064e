"""Estimate a loaded recipe's stages on a GPU: memory per phase, verdict, time and the cheapest changes that fit.

Pure arithmetic over the recipe and the model's config.json: no torch, no framework import (the CLI's `estimate`
answers in well under two seconds), so `validate` can run it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .advice import Suggestion, advise
from .breakdown import StageEstimate
from .critic import critic_lines
from .gpus import Gpu
from .memory_grpo import estimate_grpo
from .memory_sft import estimate_sft, longest_samples
from .models import ModelError, ModelSpec
from .settings import Options, read_grpo, read_sft
from .time import TimeEstimate, count_rows, grpo_time, sft_time


@dataclass
class StageReport:
    stage: str
    model: ModelSpec | None = None
    estimate: StageEstimate | None = None
    time: TimeEstimate | None = None
    advice: list[Suggestion] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    skipped: str | None = None  # why this stage has no estimate
    settings: Any = None


@dataclass
class EstimateReport:
    recipe: str
    gpu: Gpu
    stages: list[StageReport]
    notes: list[str] = field(default_factory=list)


def estimate_recipe(recipe: Any, gpu: Gpu, options: Options | None = None,
                    stages: Iterable[str] = ("sft", "grpo")) -> EstimateReport:
    opts = options or Options()
    out = EstimateReport(str(recipe.path), gpu, [])
    for stage in stages:
        section = getattr(recipe.model, stage, None)
        if section is None:
            out.stages.append(StageReport(stage, skipped=f"the recipe has no '{stage}' section"))
            continue
        if stage == "grpo" and section.engine != "verl":
            out.stages.append(StageReport(stage, skipped="grpo.engine is swift: ms-swift's own GRPO is not modelled "
                                          "(the estimate covers verl's)"))
            continue
        try:
            out.stages.append(_sft(recipe, opts, gpu) if stage == "sft" else _grpo(recipe, opts, gpu))
        except ModelError as exc:
            out.stages.append(StageReport(stage, skipped=str(exc)))
    grpo = next((r for r in out.stages if r.stage == "grpo" and r.settings is not None), None)
    out.notes.extend(critic_lines(recipe.model, gpu, getattr(grpo.settings, "gpus_per_node", None) if grpo else None))
    return out


def _sft(recipe: Any, opts: Options, gpu: Gpu) -> StageReport:
    read = read_sft(recipe, opts)
    spec, s = read.spec, read.settings
    est = estimate_sft(spec, s, gpu)
    args = recipe.model.sft.args or {}
    names = {"tuner": "train_type" if "train_type" in args and "tuner_type" not in args else "tuner_type"}
    rows, source = (opts.sft_rows, "--sft-rows") if opts.sft_rows is not None else \
        count_rows(read.extra["datasets"], read.extra["workdir"])
    worst = max(longest_samples(spec, s), key=lambda x: x.tokens)
    tm = sft_time(spec, s, read.extra, rows, source, worst.tokens, worst.image_tokens, gpu, opts.mfu)
    return StageReport("sft", spec, est, tm, advise("sft", spec, s, gpu, names), read.assumptions, settings=s)


def _grpo(recipe: Any, opts: Options, gpu: Gpu) -> StageReport:
    read = read_grpo(recipe, opts)
    spec, s = read.spec, read.settings
    est = estimate_grpo(spec, s, gpu)
    files = read.extra["train_files"]
    files = [files] if isinstance(files, str) else list(files)
    rows, source = (opts.grpo_rows, "--grpo-rows") if opts.grpo_rows is not None else \
        count_rows(files, read.extra["workdir"])
    tm = grpo_time(spec, s, read.extra, rows, source, est.facts["image_tokens_per_prompt"],
                   est.facts["rollout_waves"], gpu, opts.mfu)
    return StageReport("grpo", spec, est, tm, advise("grpo", spec, s, gpu), read.assumptions + est.assumptions,
                       settings=s)
