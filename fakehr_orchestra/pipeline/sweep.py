"""Sweeps: one pipeline run per point of a grid of recipe overrides, and one report with every point side by side.

`--sweep KEY=V1,V2[,...]` (repeatable) spans the product of the values; each point is the recipe with the point's
overrides added after the command line's (`KEY=V`, or `+KEY=V` for a key the recipe does not write), run in its own
run dir under the sweep dir:

    SWEEP_DIR/sweep.json             the sweep: recipe, profile, common overrides, the points and their run dirs
    SWEEP_DIR/<point>/               each point's run dir (manifest, plans, logs, stages' outputs)
    SWEEP_DIR/report/                the side-by-side report (`eval report` of every point's metrics)

A point's label names it in dirs and report columns: each swept key by its shortest dotted suffix that tells the
keys apart, e.g. `learning_rate=1e-4`, and `_` between keys.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from ..engines.plan import Plan
from ..io import write_json_atomic
from .stages import CLI

SWEEP_FILE = "sweep.json"
REPORT = "report"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


class SweepError(ValueError):
    """A sweep the user wrote wrong (syntax, repeated key or value), or one that differs from the sweep dir's;
    `code` is the exit status (2: fix the input)."""

    code = 2


@dataclass(frozen=True)
class Point:
    label: str  # e.g. "learning_rate=1e-4" (report column prefix)
    dirname: str  # its run dir's name under the sweep dir
    overrides: tuple[str, ...]  # the point's own overrides, e.g. ("sft.args.learning_rate=1e-4",)


def parse(specs: Iterable[str]) -> list[tuple[str, list[str]]]:
    """`KEY=V1,V2` -> (KEY, [V1, V2]); every problem in one error."""
    axes: list[tuple[str, list[str]]] = []
    problems = []
    for spec in specs:
        key, eq, values_text = spec.partition("=")
        values = values_text.split(",")
        if not eq or not key.lstrip("+") or key.startswith("~") or any(not v for v in values):
            problems.append(f"--sweep {spec!r}: write KEY=V1,V2[,...] (KEY a recipe key, +KEY to add one)")
            continue
        if key.lstrip("+") in [k.lstrip("+") for k, _ in axes]:
            problems.append(f"--sweep {spec!r}: {key.lstrip('+')} is swept twice; give all its values in one --sweep")
            continue
        if len(set(values)) != len(values):
            problems.append(f"--sweep {spec!r}: a value is repeated")
            continue
        axes.append((key, values))
    if problems:
        raise SweepError("; ".join(problems))
    return axes


def short_keys(keys: list[str]) -> list[str]:
    """The shortest dotted suffix of each key that tells them apart (learning_rate, or args.learning_rate and
    swift_args.learning_rate)."""
    parts = [k.lstrip("+").split(".") for k in keys]
    for n in range(1, max((len(p) for p in parts), default=1) + 1):
        short = [".".join(p[-n:]) for p in parts]
        if len(set(short)) == len(short):
            return short
    return [k.lstrip("+") for k in keys]


def points(specs: Iterable[str]) -> list[Point]:
    """Every point of the product of the sweep's values, in the order the values were given."""
    axes = parse(specs)
    if not axes:
        return []
    names = short_keys([k for k, _ in axes])
    out: list[Point] = []
    dirs: set[str] = set()
    for combo in itertools.product(*[values for _, values in axes]):
        label = "_".join(f"{name}={value}" for name, value in zip(names, combo))
        dirname = _UNSAFE.sub("-", label)
        if dirname in dirs or dirname in (REPORT, SWEEP_FILE):
            dirname = f"{dirname}-{len(out)}"
        dirs.add(dirname)
        out.append(Point(label, dirname, tuple(f"{key}={value}" for (key, _), value in zip(axes, combo))))
    return out


def point_recipe(recipe: Any, point: Point) -> Any:
    """The recipe of one point: the sweep's recipe (its file, profile and overrides) with the point's overrides
    after the command line's."""
    from ..recipe import load_recipe

    return load_recipe(recipe.path, (*recipe.overrides, *point.overrides), recipe.profile)


def record(recipe: Any, specs: list[str], pts: list[Point], sweep_dir: Path) -> dict[str, Any]:
    return {"recipe": str(Path(recipe.path).resolve()), "profile": recipe.profile,
            "overrides": list(recipe.overrides), "sweep": list(specs), "report": str(sweep_dir / REPORT),
            "points": [{"label": p.label, "run_dir": str(sweep_dir / p.dirname), "overrides": list(p.overrides)}
                       for p in pts]}


def open_sweep(recipe: Any, specs: list[str], sweep_dir: Path, resume: bool, write: bool = True) -> list[Point]:
    """The sweep's points; a new sweep dir gets its sweep.json, an existing one must hold the same sweep (resume)."""
    pts = points(specs)
    if not pts:
        raise SweepError("no sweep: give --sweep KEY=V1,V2")
    wanted = record(recipe, specs, pts, sweep_dir)
    path = sweep_dir / SWEEP_FILE
    if path.exists():
        if not resume:
            raise SweepError(f"{sweep_dir} already holds a sweep; continue it with --resume, or choose another "
                             "--run-dir")
        have = json.loads(path.read_text())
        diff = [k for k in ("recipe", "profile", "overrides", "sweep") if have.get(k) != wanted[k]]
        if diff:
            raise SweepError(f"{sweep_dir} holds another sweep ({', '.join(f'{k}: {have.get(k)!r}' for k in diff)}); "
                             "resume it with the same recipe, profile, overrides and --sweep")
    elif write:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, wanted)
    return pts


def load(sweep_dir: Path) -> Optional[dict[str, Any]]:
    path = Path(sweep_dir) / SWEEP_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def report_plan(sweep_dir: Path, metrics: list[tuple[str, dict[str, str]]], cwd: str = ".") -> Plan:
    """`eval report` of every point's metrics files side by side, columns `<point>/<model>`.

    `metrics`: per point label, model name -> metrics file (pipeline.stages: StagePlan.metrics of its eval stage).
    """
    files, names = [], []
    for label, by_model in metrics:
        for model, path in by_model.items():
            files.append(path)
            names.append(f"{label}/{model}")
    if not files:
        raise SweepError("the sweep's points evaluate no model (is the eval stage selected?)")
    bad = [n for n in names if "," in n]
    if bad:
        raise SweepError(f"report names cannot hold a comma: {bad}")
    # a sweep over data keys (e.g. data.split.seed) evaluates each point on its own test split: the report shows
    # them side by side and warns at its top that the eval sets differ, rather than refusing the sweep's report
    return Plan(stage="report", cwd=cwd, argv=[CLI, "eval", "report", *files, "--names", ",".join(names),
                                               "--out", str(Path(sweep_dir) / REPORT), "--allow-different-eval-sets"])


def eval_metrics(recipe: Any, run_dir: Path, stages: tuple[str, ...], versions: dict[str, str]) -> dict[str, str]:
    """The metrics files a point's eval stage will write, by model (empty when eval is not among the stages)."""
    from .rundir import RunDir
    from .runner import Options, plan_all

    if "eval" not in stages:
        return {}
    run = RunDir(Path(run_dir))
    plans = plan_all(recipe, run, Options(stages=stages, versions=versions), run.load() if run.exists() else None)
    return next(sp.metrics for sp in plans if sp.stage == "eval")
