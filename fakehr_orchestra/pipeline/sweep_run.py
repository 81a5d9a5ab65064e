"""A sweep on this machine: every point's pipeline, one after the other, each in its run dir under the sweep dir,
then one report of every point side by side (sweep.py defines the points, the sweep dir and the report's plan).

A failed point does not stop the others; the report is made only when every point completed, so `--resume`
continues the points that did not (a finished stage is not run again) and then reports.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..engines.plan import Plan
from . import sweep
from .rundir import RunDir, RunDirError

if TYPE_CHECKING:
    from ..recipe.load import Recipe
    from .runner import Options
    from .stages import StagePlan

# what the caller checks before anything runs (validation and rehearsal), given each point's recipe; it stops the
# sweep by raising (or exiting)
Preflight = Callable[["Recipe"], None]


class SweepFailed(sweep.SweepError):
    """Points of the sweep (or its report) did not complete: exit code 1, continue with --resume."""

    code = 1


@dataclass(frozen=True)
class Member:
    """One point of a sweep with its recipe (the sweep's plus the point's overrides) and its run dir."""

    point: sweep.Point
    recipe: Recipe
    run_dir: Path


@dataclass(frozen=True)
class Sweep:
    path: Path
    members: list[Member]
    report: Optional[Plan]  # None when eval is not among the stages


def open_local(recipe: Recipe, specs: list[str], sweep_dir: Path, opts: Options) -> Sweep:
    """The sweep in `sweep_dir` (a new one is recorded unless dry-running; an existing one must be the same)."""
    points = sweep.open_sweep(recipe, specs, sweep_dir, opts.resume, write=not opts.dry_run)
    members = [Member(p, sweep.point_recipe(recipe, p), sweep_dir / p.dirname) for p in points]
    metrics = [(m.point.label, sweep.eval_metrics(m.recipe, m.run_dir, opts.stages, opts.versions)) for m in members]
    report = sweep.report_plan(sweep_dir, metrics) if any(found for _, found in metrics) else None
    return Sweep(sweep_dir, members, report)


def member_plans(member: Member, opts: Options) -> list[StagePlan]:
    """What `--dry-run` shows of a point: its stages' plans, wired to what its run dir already holds."""
    from .runner import plan_all

    run = RunDir(member.run_dir)
    return plan_all(member.recipe, run, opts, run.load() if run.exists() else None)


def run_local(sweep_run: Sweep, opts: Options, preflight: Optional[Preflight] = None) -> Optional[Path]:
    """Check every point (`preflight`), run them all, then the report; its path, or None without eval.

    Raises SweepFailed when a point or the report did not complete."""
    from ..launch.launcher import choose_launcher
    from .runner import run_pipeline

    if preflight is not None:
        for member in sweep_run.members:
            preflight(member.recipe)
    failed = []
    for member in sweep_run.members:
        code = _run_point(member, opts, run_pipeline)
        if code != 0:
            failed.append(f"{member.point.label} (exit {code}, run dir {member.run_dir})")
    where, count = sweep_run.path, len(sweep_run.members)
    if failed:
        raise SweepFailed(f"sweep {where}: {len(failed)} of {count} point(s) did not complete: {'; '.join(failed)}; "
                          "no report. Continue with --resume")
    if sweep_run.report is None:
        return None
    log = where / "logs" / "report.log"
    launch = choose_launcher(sweep_run.report, sweep_run.members[0].recipe.model.cluster)
    code = launch(sweep_run.report, log, echo=opts.echo)
    if code != 0:
        raise SweepFailed(f"the sweep's report failed (exit {code}); see {log}")
    return where / sweep.REPORT


def _run_point(member: Member, opts: Options, run_pipeline: Callable[..., int]) -> int:
    print(f"fakehr-orchestra: sweep point {member.point.label} ({' '.join(member.point.overrides)})", flush=True)
    try:
        return run_pipeline(member.recipe, RunDir(member.run_dir), opts)
    except RunDirError as exc:  # one point's damaged run dir does not stop the others
        print(f"error: point {member.point.label}: {exc}", file=sys.stderr, flush=True)
        return exc.code
