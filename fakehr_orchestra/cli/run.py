"""`fakehr-orchestra run`: the stages of a recipe in order (all by default), in a run dir, resumable.

On one node of a multi-node job, `--stages sft --nodes N --node-rank R --master-addr A` launches this node's share
(ms-swift turns those into torchrun's rendezvous).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from .common import fail, friendly_errors, load, parse_versions, preflight, recipe_arguments

ALL = "data,sft,grpo,merge,eval"


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
@friendly_errors
def run(recipe: str, overrides: tuple[str, ...], profile: str | None, stages_text: str, run_dir: str | None,
        resume: bool, force: bool, dry_run: bool, versions: str | None, skip_validate: bool, nodes: int | None,
        node_rank: int | None, master_addr: str | None, master_port: int | None,
        nproc_per_node: int | None) -> None:
    """Run RECIPE's stages. OVERRIDES are key.path=value, +key.path=value or ~key.path."""
    from ..pipeline.rundir import RunDir
    from ..pipeline.runner import Options, PipelineError, plan_all, run_pipeline

    loaded = load(recipe, overrides, profile)
    node_opts = {k: v for k, v in dict(nodes=nodes, node_rank=node_rank, master_addr=master_addr,
                                       master_port=master_port, nproc_per_node=nproc_per_node).items()
                 if v is not None}
    opts = Options(stages=_stages(stages_text), resume=resume, force=force, dry_run=dry_run,
                   versions=parse_versions(versions), nodes=node_opts)
    if run_dir is None:
        if resume:
            fail("error: --resume needs --run-dir (the run to continue)")
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        rank = f"-rank{node_rank}" if node_rank else ""
        run_dir = f"runs/{loaded.model.name}-{profile or 'full'}-{stamp}{rank}"
    rd = RunDir(Path(run_dir).resolve())
    if dry_run:
        manifest = rd.load() if rd.exists() else None
        for sp in plan_all(loaded, rd, opts, manifest):
            _print_stage(sp)
        return
    if not skip_validate:
        import os
        preflight(loaded, opts.stages, opts.versions, environ=os.environ)
    try:
        code = run_pipeline(loaded, rd, opts)
    except PipelineError as exc:
        fail(f"error: {exc}")
        return
    click.echo(f"fakehr-orchestra: run dir {rd.path}" + ("" if code == 0 else f" (stopped, exit {code})"))
    report = rd.path / "eval" / "report"
    if code == 0 and report.exists():
        click.echo(f"fakehr-orchestra: report {report}")
    raise SystemExit(code)


def _print_stage(sp) -> None:  # type: ignore[no-untyped-def]
    click.echo(f"## stage {sp.stage}" + (f"  [skipped: {sp.skip_reason}]" if sp.skip_reason else ""))
    for key, value in sp.inputs.items():
        click.echo(f"#   {key} <- {value}")
    for svc in sp.services:
        click.echo(f"# service {svc.name}: started before the stage's steps, stopped (its whole process tree) when "
                   f"they end, fail or are interrupted")
        click.echo(f"#   runs {svc.where}")
        click.echo(f"#   serves {svc.model!r} at {svc.url}; ready when /v1/models lists it and a judged request with "
                   f"an image is answered (within {svc.ready_timeout_s:g} s)")
        if svc.blocked:
            click.echo(f"#   cannot start here: {svc.blocked}")
        click.echo(svc.plan.to_shell())
    for step in sp.steps:
        click.echo(f"# step {step.name}")
        click.echo(step.plan.to_shell())
    click.echo()
