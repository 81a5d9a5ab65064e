"""`fakehr-orchestra run`: the stages of a recipe in order (all by default), in a run dir, resumable.

On one node of a multi-node job, `--stages sft --nodes N --node-rank R --master-addr A` launches this node's share
(ms-swift turns those into torchrun's rendezvous). `--slurm` is how the jobs of `submit` run their stages: as the
batch step of the job, spreading a torchrun stage over the job's nodes with srun. `--sweep KEY=V1,V2` runs one
pipeline per point, one after the other, in run dirs under the sweep dir, then one report of all points.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path
from typing import Any

import click

from ..pipeline.stages import ALL
from .common import fail, friendly_errors, load, parse_versions, preflight, recipe_arguments


def _stages(text: str) -> tuple[str, ...]:
    from ..pipeline.stages import STAGES

    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        raise click.BadParameter(f"unknown stage(s) {', '.join(unknown) or '(none)'}; stages are {ALL}",
                                 param_hint="--stages")
    return tuple(s for s in STAGES if s in chosen)  # always in pipeline order


@click.command()
@recipe_arguments
@click.option("--stages", "--stage", "stages_text", default=ALL, show_default=True,
              help="Comma-separated subset of data,sft,grpo,merge,eval (run in that order).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Where the run's state lives (default: runs/<recipe>-<profile>-<time>).")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir: finished stages are not run again.")
@click.option("--force", is_flag=True, help="With --resume: accept a recipe that changed since the run started.")
@click.option("--dry-run", is_flag=True, help="Print every stage's plan, in order, with the artifact wiring.")
@click.option("--versions", default=None, help="Render for these framework versions, e.g. swift=3.12,verl=0.8.")
@click.option("--skip-validate", is_flag=True, help="Do not run the preflight checks before launching.")
@click.option("--nodes", type=int, default=None, help="SFT: number of nodes (NNODES).")
@click.option("--node-rank", type=int, default=None, help="SFT: this node's rank (NODE_RANK).")
@click.option("--master-addr", default=None, help="SFT: rank 0's address (MASTER_ADDR).")
@click.option("--master-port", type=int, default=None, help="SFT: rendezvous port (MASTER_PORT).")
@click.option("--nproc-per-node", type=int, default=None, help="SFT: processes per node (NPROC_PER_NODE).")
@click.option("--slurm", "in_slurm", is_flag=True,
              help="Run as the batch step of a Slurm job (what `submit` writes into its scripts): a torchrun stage "
              "runs as one srun task per node of the job, verl's trainer.nnodes is the job's node count and its "
              "driver joins the job's Ray cluster (RAY_ADDRESS).")
@click.option("--sweep", "sweep_specs", multiple=True, metavar="KEY=V1,V2",
              help="Run the pipeline once per point of the product of these values (repeatable), one after the "
              "other, each in its own run dir under --run-dir; then one report of every point side by side.")
@friendly_errors
def run(recipe: str, overrides: tuple[str, ...], profile: str | None, stages_text: str, run_dir: str | None,
        resume: bool, force: bool, dry_run: bool, versions: str | None, skip_validate: bool, nodes: int | None,
        node_rank: int | None, master_addr: str | None, master_port: int | None,
        nproc_per_node: int | None, in_slurm: bool, sweep_specs: tuple[str, ...]) -> None:
    """Run RECIPE's stages. OVERRIDES are key.path=value, +key.path=value or ~key.path."""
    from ..pipeline.rundir import RunDir
    from ..pipeline.runner import Options, PipelineError, plan_all, run_pipeline

    loaded = load(recipe, overrides, profile)
    node_opts = {k: v for k, v in dict(nodes=nodes, node_rank=node_rank, master_addr=master_addr,
                                       master_port=master_port, nproc_per_node=nproc_per_node).items()
                 if v is not None}
    slurm_nodes = _slurm_nodes(node_opts, sweep_specs) if in_slurm else None
    opts = Options(stages=_stages(stages_text), resume=resume, force=force, dry_run=dry_run,
                   versions=parse_versions(versions), nodes=node_opts, slurm_nodes=slurm_nodes)
    if sweep_specs:
        _run_sweep(loaded, opts, run_dir, sweep_specs, skip_validate)
        return
    rank = f"-rank{node_rank}" if node_rank else ""
    rd = RunDir(Path(run_dir or _default_run_dir(loaded, resume, "the run to continue", suffix=rank)).resolve())
    if dry_run:
        for sp in plan_all(loaded, rd, opts, rd.load() if rd.exists() else None):
            _print_stage(sp)
        return
    if not skip_validate:
        preflight(loaded, opts.stages, opts.versions, environ=os.environ)
    try:
        code = run_pipeline(loaded, rd, opts)
    except PipelineError as exc:
        fail(f"error: {exc}", code=exc.code)
        return
    click.echo(f"fakehr-orchestra: run dir {rd.path}" + ("" if code == 0 else f" (stopped, exit {code})"))
    report = rd.path / "eval" / "report"
    if code == 0 and report.exists():
        click.echo(f"fakehr-orchestra: report {report}")
    raise SystemExit(code)


def _slurm_nodes(node_opts: dict[str, Any], sweep_specs: tuple[str, ...]) -> int:
    """The node count of the Slurm job `run --slurm` runs in (the job decides the nodes, not the command line)."""
    if node_opts or sweep_specs:
        fail("error: --slurm takes the nodes from the Slurm job; drop --nodes/--node-rank/--master-addr/"
             "--master-port/--nproc-per-node/--sweep")
    job_nodes = os.environ.get("SLURM_JOB_NUM_NODES", "")
    if not job_nodes.isdigit():
        fail("error: --slurm runs inside a Slurm job (SLURM_JOB_NUM_NODES is not set here); to run on this "
             "machine leave --slurm out, to run on Slurm use `fakehr-orchestra submit`")
    return int(job_nodes)


def _default_run_dir(loaded: Any, resume: bool, what: str, infix: str = "", suffix: str = "") -> str:
    """runs/<recipe>-<profile>[-sweep]-<time>[-rank<R>]; a resume must name the run dir it continues."""
    if resume:
        fail(f"error: --resume needs --run-dir ({what})")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"runs/{loaded.model.name}-{loaded.profile or 'full'}{infix}-{stamp}{suffix}"


def _run_sweep(loaded: Any, opts: Any, run_dir: str | None, specs: tuple[str, ...], skip_validate: bool) -> None:
    """Every point of the sweep, one after the other (pipeline/sweep_run.py), then the report; or their plans."""
    from ..pipeline import sweep_run
    from ..pipeline.sweep import SweepError

    sweep_dir = Path(run_dir or _default_run_dir(loaded, opts.resume, "the sweep to continue", "-sweep")).resolve()
    check = None if skip_validate else functools.partial(preflight, stages=opts.stages, versions=opts.versions,
                                                         environ=os.environ)
    try:
        planned = sweep_run.open_local(loaded, list(specs), sweep_dir, opts)
        if opts.dry_run:
            _print_sweep(planned, opts)
            return
        report = sweep_run.run_local(planned, opts, check)
    except SweepError as exc:
        fail(f"error: {exc}", code=exc.code)
        return
    if report is None:
        click.echo(f"fakehr-orchestra: sweep {sweep_dir} done; no report (eval is not among the stages)")
        return
    click.echo(f"fakehr-orchestra: sweep {sweep_dir}: {len(planned.members)} point(s); report {report}")


def _print_sweep(planned: Any, opts: Any) -> None:
    from ..pipeline.sweep_run import member_plans

    for member in planned.members:
        click.echo(f"#### point {member.point.label}: {' '.join(member.point.overrides)} -> {member.run_dir}\n")
        for sp in member_plans(member, opts):
            _print_stage(sp)
    if planned.report is not None:
        click.echo(f"#### report of the sweep\n{planned.report.to_shell()}")


def _print_stage(sp) -> None:  # type: ignore[no-untyped-def]
    from ..script_text import script_text as t  # every comment line stays one inert line, whatever a value holds

    click.echo(f"## stage {sp.stage}" + (f"  [skipped: {t(sp.skip_reason)}]" if sp.skip_reason else ""))
    for key, value in sp.inputs.items():
        click.echo(f"#   {t(key)} <- {t(value)}")
    for svc in sp.services:
        click.echo(f"# service {t(svc.name)}: started before the stage's steps, stopped (its whole process tree) when "
                   f"they end, fail or are interrupted")
        click.echo(f"#   runs {t(svc.where)}")
        click.echo(f"#   serves {t(repr(svc.model))} at {t(svc.url)}; ready when /v1/models lists it and a judged "
                   f"request with an image is answered (within {svc.ready_timeout_s:g} s)")
        if svc.blocked:
            click.echo(f"#   cannot start here: {t(svc.blocked)}")
        click.echo(svc.plan.to_shell())
    for step in sp.steps:
        click.echo(f"# step {t(step.name)}")
        click.echo(step.plan.to_shell())
    click.echo()
