"""The pipeline as a chain of Slurm jobs sharing one run dir (a sweep: one chain per point, then a report job).

Planning a chain decides which stages are left (on `--resume`: what `run --resume` would not skip), groups them into
jobs sized from each job's main stage (launch/slurm_chain.py), and refuses what cannot be submitted: a run dir that
already holds a run (without resume), a changed recipe (without force), jobs of the chain still queued or running.
Submitting checks each point (`preflight`) and the environment the jobs inherit, then queues the jobs in order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..engines.plan import MissingEnvError
from . import sweep
from .rundir import RunDir
from .runner import Options, PipelineError, check_recipe, finished_stages, plan_all

if TYPE_CHECKING:
    from ..launch.slurm import SbatchOptions
    from ..launch.slurm_chain import Link
    from ..recipe.load import Recipe

Preflight = Callable[["Recipe"], None]


@dataclass(frozen=True)
class JobOptions:
    """What the command line sets on every job (None: the recipe's cluster.slurm settings)."""

    nodes: Optional[int] = None
    partition: Optional[str] = None
    time_limit: Optional[str] = None
    requeue: Optional[bool] = None
    label: str = ""  # the recipe as the user named it, written into each script's header


@dataclass
class Chain:
    run_dir: Path  # a sweep: the sweep dir
    stages: tuple[str, ...]
    links: list[Link] = field(default_factory=list)
    recipes: list[Recipe] = field(default_factory=list)  # each point's (one without a sweep)
    warnings: list[str] = field(default_factory=list)
    sweep_specs: tuple[str, ...] = ()


def plan_chain(recipe: Recipe, run_dir: Path, stages: tuple[str, ...], jobs: JobOptions, *,
               sweep_specs: tuple[str, ...] = (), resume: bool = False, force: bool = False) -> Chain:
    """The jobs left to submit for `recipe` in `run_dir` (one chain per point of `sweep_specs`, and a report job)."""
    from ..launch.slurm import job_warnings

    chain = Chain(run_dir, stages, sweep_specs=sweep_specs)
    if sweep_specs:
        points = sweep.open_sweep(recipe, list(sweep_specs), run_dir, resume, write=False)
        runs = [(p.label, p.dirname, sweep.point_recipe(recipe, p), run_dir / p.dirname) for p in points]
    else:
        runs = [("", "", recipe, run_dir)]
    reports = []
    for label, dirname, point_recipe, point_dir in runs:
        point_links = _point_links(point_recipe, point_dir, dirname, stages, jobs, resume, force)
        chain.links += point_links
        chain.recipes.append(point_recipe)
        reports.append((label, point_links[-1].key if point_links else None, point_recipe, point_dir))
    if sweep_specs:
        report_link = _report_link(recipe, run_dir, reports, stages, resume, jobs, chain.warnings)
        if report_link is not None:
            chain.links.append(report_link)
    for link in chain.links:
        chain.warnings += job_warnings(link.opts, link.launcher, f"job {link.key}")
    return chain


def submit_chain(chain: Chain, recipe: Recipe, resume: bool, preflight: Optional[Preflight] = None) -> dict[str, Any]:
    """Check every point and the environment the jobs inherit, record a sweep, queue the jobs; their records."""
    from ..launch.slurm_chain import submit_links

    if preflight is not None:
        for point_recipe in chain.recipes:
            preflight(point_recipe)
    for link in chain.links:
        check_environment(link.env_refs, f"{link.key}")
    if chain.sweep_specs:
        sweep.open_sweep(recipe, list(chain.sweep_specs), chain.run_dir, resume, write=True)
    return submit_links(chain.links, resume)


def check_environment(refs: list[str], what: str) -> None:
    """A job inherits the submitting shell's environment (sbatch --export=ALL): what it reads at launch must be
    set now."""
    missing = [r for r in refs if r not in os.environ]
    if missing:
        raise MissingEnvError(f"{what} reads {', '.join(missing)} from the environment at launch; export "
                              f"{'it' if len(missing) == 1 else 'them'} before submitting, or override the recipe key")


def _point_links(recipe: Recipe, point_dir: Path, prefix: str, stages: tuple[str, ...], jobs: JobOptions,
                 resume: bool, force: bool) -> list[Link]:
    """The jobs of one chain: the stages left, grouped into jobs, each sized from its main stage, each after the
    last."""
    from ..launch.slurm_chain import RunCommand, live_jobs

    rd = RunDir(point_dir)
    started = rd.exists() or (point_dir / "slurm.json").exists()
    if started and not resume:
        raise PipelineError(f"{point_dir} already holds a run; continue it with --resume, or choose another --run-dir")
    remaining = stages
    if resume and started:
        try:
            check_recipe(recipe, rd, force)
        except PipelineError as exc:
            raise PipelineError(f"{point_dir}: {exc}") from None
        live = live_jobs(point_dir)
        if live:
            raise PipelineError(f"{point_dir}: jobs of its chain are still queued or running: {', '.join(live)}; "
                                "wait for them (fakehr-orchestra status), or scancel them, before --resume")
        remaining = stages[len(finished_stages(recipe, rd, Options(stages=stages, resume=True))):]
    command = RunCommand(str(Path(recipe.path).resolve()), tuple(recipe.overrides), recipe.profile, str(point_dir),
                         force=force)
    return _links(recipe, rd, remaining, prefix, jobs, command)


def _links(recipe: Recipe, rd: RunDir, stages: tuple[str, ...], prefix: str, jobs: JobOptions,
           command: Any) -> list[Link]:
    from ..launch.slurm_chain import chain_links, companion_plans

    if not stages:
        return []
    plans = plan_all(recipe, rd, Options(stages=stages), rd.load() if rd.exists() else None)

    def options(stage: str, name: str) -> SbatchOptions:
        return _job_options(recipe, stage, jobs, str(rd.path), (f"{prefix}-" if prefix else "") + name)
    return chain_links(plans, options, command, run_dir=str(rd.path), prefix=prefix,
                       companions=lambda stage: companion_plans(recipe, stage))


def _job_options(recipe: Recipe, stage: str, jobs: JobOptions, run_dir: str, name: str) -> SbatchOptions:
    from ..launch.environ import venv_bin
    from ..launch.slurm import stage_options

    return stage_options(recipe.model, stage, nodes=jobs.nodes, job_name=f"fakehr-{recipe.model.name}-{name}",
                         run_dir=run_dir, chdir=os.getcwd(), venv_bin=venv_bin(), recipe=jobs.label,
                         partition=jobs.partition, time=jobs.time_limit, requeue=jobs.requeue)


def _report_link(recipe: Recipe, sweep_dir: Path, reports: list[tuple[str, Optional[str], Any, Path]],
                 stages: tuple[str, ...], resume: bool, jobs: JobOptions, warnings: list[str]) -> Optional[Link]:
    """The sweep's last job: `eval report` of every point, after every point's chain (sized like the data job)."""
    from ..launch.slurm_chain import SCRIPTS, Link

    metrics = [(point, sweep.eval_metrics(r, d, stages, {})) for point, _, r, d in reports]
    if not any(m for _, m in metrics):
        warnings.append("note: no sweep report: eval is not among the chained stages")
        return None
    after = [key for _, key, _, _ in reports if key]
    if resume and not after and (sweep_dir / sweep.REPORT / "report.md").exists():
        return None
    plan = sweep.report_plan(sweep_dir, metrics, cwd=os.getcwd())
    opts = _job_options(recipe, "data", jobs, str(sweep_dir), "sweep-report")
    opts = replace(opts, output=str(sweep_dir / SCRIPTS / "report-%j.out"))
    return Link(key="report", stages=("report",), launcher="local", opts=opts, command=plan, after=after,
                run_dir=str(sweep_dir), meta={"recipe": str(Path(recipe.path).resolve()), "profile": recipe.profile,
                                              "overrides": list(recipe.overrides)})
