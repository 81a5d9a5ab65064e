"""Preflight: check a recipe against the INSTALLED ms-swift / verl and against its cluster, data and reward.

`validate()` never raises for a problem in the recipe: it collects every finding into a Report (errors and
warnings, each with the recipe key, file:line, what is wrong and how to fix it). `run`/`submit` call it before
launching anything.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable, Mapping

from ..pipeline.stages import PREFLIGHT as STAGES  # the stages preflight knows; merge and eval run our own code
from ..pipeline.stages import TRAINING
from .context import Context
from .report import Finding, Report


def validate(recipe: Any, stages: Iterable[str] = STAGES, versions: dict[str, str] | None = None,
             translate: bool = True, *, environ: Mapping[str, str] | None = None,
             remote_data: bool = False, verl_own_checks: bool = True, rehearse: bool = False,
             log_dir: Any = None) -> Report:
    """Check `recipe` (a loaded Recipe) for `stages`.

    With "data" among the stages (a pipeline run) and data sources in the recipe, the training stages are checked
    on what the data stage will write, wired as the pipeline wires it (data.export.wired_inputs), not on the
    recipe's own dataset keys, which only a training stage run alone reads.

    versions: render the plans for these versions instead of the installed ones (the checks always use the
    installed frameworks: that is what will run). translate=False renders names exactly as the recipe spells them
    (shows what the seed's commands do on the installed versions). environ: the launch environment, when known
    (fills `${env:NAME}` refs; otherwise they are checked with stand-ins and a warning). remote_data: data paths
    name files where the job runs, so a missing one is a warning. verl_own_checks=False skips running verl's
    validate_config (it needs verl imported: seconds); the rules restating it, each citing verl's code, still run.
    rehearse=True also runs the frameworks' own start-up code on CPU (rehearsal/; tens of seconds), its logs in
    `log_dir` (default: kept in a temp dir when a step fails).
    """
    from ..engines import RenderError, render
    from ..engines.versions import installed_version

    asked = tuple(s for s in stages if s in STAGES)
    if "data" in asked and recipe.model.data.sources:
        recipe = as_pipeline_run(recipe)
    stages = tuple(s for s in asked if s in TRAINING and getattr(recipe.model, s, None) is not None)
    installed = {fw: v for fw in ("swift", "verl") if (v := installed_version(fw)) is not None}
    report = Report(recipe=str(recipe.path), stages=list(stages), versions=installed)
    ctx = Context(recipe, report, dict(environ or {}), remote_data)
    for stage in asked:
        if stage in TRAINING and stage not in stages:
            ctx.warning("render", stage, f"the recipe has no '{stage}' section; nothing to check for it")
    plans: dict[str, Any] = {}
    for stage in stages:
        try:
            plans[stage] = render(recipe, stage, versions, translate=translate)
        except RenderError as exc:
            ctx.error("render", stage, str(exc), None, stage)
    cfg = None
    validator = None
    swift_plans = [p for p in plans.values() if p.engine == "swift"]
    verl_plans = [p for p in plans.values() if p.engine == "verl"]
    if verl_own_checks and verl_plans and "verl" in installed:
        from .verl_config import VerlValidator
        validator = VerlValidator()  # starts importing verl in a child now, while this process works
    pending = None
    if swift_plans and verl_plans and "swift" in installed and "swift.arguments" not in sys.modules \
            and not all(_schema_cached(swift_command(p), installed["swift"]) for p in swift_plans):
        # ms-swift's import (seconds, mostly transformers) overlaps verl's in a child process
        from .swift_flags import analyse_async
        pending = analyse_async([(swift_command(p), installed["swift"], p.options) for p in swift_plans])
    try:
        sizes_from_launch = False
        verl_plan = verl_plans[0] if verl_plans else None
        if verl_plan is not None:
            cfg, sizes_from_launch = _check_verl(ctx, verl_plan)
        _other_checks(ctx, stages, cfg, swift_plans, pending, installed)
        if cfg is not None and validator is not None:
            from .verl_config import run_verl_validate
            # last: the child has had all the time above to import verl
            run_verl_validate(ctx, verl_plan, cfg, sizes_from_launch, validator)
            report.checked.append("grpo: verl's own validate_config")
    finally:
        if validator is not None:
            validator.close()
    if rehearse and stages:
        _rehearse(ctx, (("data",) if "data" in asked else ()) + stages, versions, log_dir)
    report.findings.sort(key=lambda f: (f.level != "error", STAGE_ORDER.get(f.stage or "", 0)))
    return report


def as_pipeline_run(recipe: Any) -> Any:
    """The recipe as a pipeline run trains it: dataset keys pointing at the data stage's exports (in data.workdir);
    a val file of the user's own stays as declared (data.export.wired_inputs)."""
    from pathlib import Path

    from ..data.export import FILES, wired_inputs

    m = recipe.model
    for key, export in wired_inputs(m).items():
        section, _, field = key.partition(".")
        if getattr(m, section, None) is not None:
            recipe = recipe.with_section(section, **{field: [str(Path(m.data.workdir) / FILES[export])]})
            m = recipe.model
    return recipe


def _rehearse(ctx: Context, stages: tuple[str, ...], versions: dict[str, str] | None, log_dir: Any) -> None:
    from ..rehearsal import rehearse

    steps = rehearse(ctx.recipe, stages, {**os.environ, **ctx.environ}, versions, log_dir)
    ctx.report.rehearsal = steps
    for step in steps:
        if step.status == "failed":
            ctx.error("rehearse", step.key or step.stage, f"rehearsal step '{step.step}' failed: {step.detail}",
                      step.fix, step.stage or None)
    ctx.report.checked.append("rehearsal: " + ", ".join(f"{s.stage} {s.step} {s.status}" for s in steps))


def _other_checks(ctx: Context, stages: tuple[str, ...], cfg: Any, swift_plans: list[Any], pending: Any,
                  installed: dict[str, str]) -> None:
    report = ctx.report
    if swift_plans:
        from .swift_flags import check_swift_plan
        results = pending() if pending is not None else [None] * len(swift_plans)
        for plan, records in zip(swift_plans, results):
            check_swift_plan(ctx, plan, records)
            report.checked.append(f"{plan.stage}: {plan.entrypoint} flags against ms-swift {installed.get('swift')}")
    from . import critic_checks, crosschecks, data_checks, family_checks, kernel_checks, reward_checks
    kernel_checks.check_kernels(ctx, swift_plans)
    report.checked.append("attention kernel and DeepSpeed importable where the job runs")
    family_checks.check_family(ctx, swift_plans, installed.get("swift"))
    report.checked.append("model family: declared vs the models on disk; --model_type/--template against "
                          f"ms-swift {installed.get('swift')}'s model registry")
    crosschecks.check_cluster(ctx, stages)
    crosschecks.check_image_budget(ctx, stages, cfg)
    data_checks.check_data(ctx, stages, cfg)
    data_checks.check_outputs(ctx, stages)
    if "grpo" in stages:
        reward_checks.check_reward(ctx)
    reward_checks.check_prompt(ctx, stages)
    critic_checks.check_critic(ctx, stages)
    from ..estimate.hook import check_memory
    check_memory(ctx, stages)  # only when the recipe declares cluster.gpu
    report.checked.append("cluster, image budget, data, outputs, reward plugin, prompt/answer format, critic")


STAGE_ORDER = {"": 0, "sft": 1, "grpo": 2}


def swift_command(plan: Any) -> str:
    """`sft` / `rlhf`: which ms-swift argument dataclass reads the plan's options."""
    return plan.entrypoint.split()[-1]


def _schema_cached(command: str, version: str) -> bool:
    from .swift_flags import cached
    return cached(command, version) is not None


def _check_verl(ctx: Context, plan: Any) -> tuple[Any, bool]:
    """Compose + the batch/parallel rules; returns (composed config or None, sizes known only at launch)."""
    from . import crosschecks
    from .verl_config import check_verl_plan

    cfg = check_verl_plan(ctx, plan)
    ctx.report.checked.append(f"grpo: verl overrides composed against verl {ctx.report.versions.get('verl')}")
    if cfg is None:
        return None, False
    ov = crosschecks.flat_overrides(ctx.recipe)
    sizes_from_launch = any(ctx.launch_refs(str(ov.get(k, ""))) for k in ("trainer.nnodes", "trainer.n_gpus_per_node"))
    crosschecks.check_batches(ctx, cfg, sizes_from_launch)
    ctx.report.checked.append("grpo: batch/parallel rules (restating verl's, each citing its source)")
    return cfg, sizes_from_launch


__all__ = ["Finding", "Report", "validate"]
