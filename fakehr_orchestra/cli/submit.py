"""`fakehr-orchestra submit`: the pipeline as a chain of Slurm jobs sharing one run dir (sweeps: one chain per
point), or one stage's rendered command as one job (`--stage`); `--dry-run` prints the scripts."""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import click

from .common import fail, friendly_errors, load, preflight, recipe_arguments


@click.command()
@recipe_arguments
@click.option("--stage", "-s", type=click.Choice(["sft", "grpo"]), default=None,
              help="Submit only this stage, as one job running its rendered command (no pipeline run dir). "
              "Without it: the pipeline as chained jobs.")
@click.option("--stages", "stages_text", default=None,
              help="Chain: the stages to chain, a comma-separated subset of data,sft,grpo,merge,eval (default: all).")
@click.option("--nodes", "-N", type=int, default=None,
              help="Nodes of the training jobs (sft, grpo; default: the recipe's cluster.nodes, null: 1).")
@click.option("--partition", default=None, help="sbatch --partition of every job (default: the recipe's "
              "cluster.slurm.stages.<stage>.partition, else cluster.slurm.partition).")
@click.option("--time", "time_limit", default=None, help="sbatch --time of every job, e.g. 2-00:00:00 (default: "
              "cluster.slurm.stages.<stage>.time, else cluster.slurm.time).")
@click.option("--requeue/--no-requeue", default=None,
              help="Requeue on preemption and shortly before the time limit (default: cluster.slurm.requeue).")
@click.option("--resume", is_flag=True,
              help="Chain: submit only the stages the run dir's manifest does not show finished (as `run --resume` "
              "decides). --stage: resume from the stage's last checkpoint even on the job's first run.")
@click.option("--force", is_flag=True, help="Chain, with --resume: accept a recipe that changed since the run "
              "started.")
@click.option("--sweep", "sweep_specs", multiple=True, metavar="KEY=V1,V2",
              help="One chain per point of the product of these values (repeatable), each in its own run dir under "
              "--run-dir, and a last job that writes one report of every point side by side.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="The run dir (a sweep: the sweep dir) the jobs share; scripts, job ids and logs go there "
              "(default: runs/slurm/<recipe>-<time>).")
@click.option("--dry-run", is_flag=True, help="Print the batch script(s), with dependencies, and submit nothing.")
@click.option("--skip-validate", is_flag=True, help="Do not run the preflight checks before submitting.")
@friendly_errors
def submit(recipe: str, overrides: tuple[str, ...], profile: Optional[str], stage: Optional[str],
           stages_text: Optional[str], nodes: Optional[int], partition: Optional[str], time_limit: Optional[str],
           requeue: Optional[bool], resume: bool, force: bool, sweep_specs: tuple[str, ...], run_dir: Optional[str],
           dry_run: bool, skip_validate: bool) -> None:
    """Submit RECIPE to Slurm: the pipeline as chained jobs, or one --stage. OVERRIDES are key.path=value."""
    from ..launch.slurm import SlurmError, SlurmOptionError
    from ..pipeline.chain import JobOptions

    loaded = load(recipe, overrides, profile)
    try:
        if stage is not None:
            if stages_text or sweep_specs or force:
                fail("error: --stage submits one stage's command; --stages, --sweep and --force are for the chain "
                     "(leave --stage out)")
            _submit_stage(recipe, overrides, profile, loaded, stage, nodes, partition, time_limit, requeue, resume,
                          run_dir, dry_run, skip_validate)
        else:
            jobs = JobOptions(nodes=nodes, partition=partition, time_limit=time_limit, requeue=requeue,
                              label=_label(recipe, profile))
            _submit_chain(loaded, stages_text, jobs, resume, force, sweep_specs, run_dir, dry_run, skip_validate)
    except SlurmOptionError as exc:
        fail(f"error: {exc}")
    except SlurmError as exc:
        fail(f"error: {exc}", code=1)


def _label(recipe: str, profile: Optional[str]) -> str:
    return f"{recipe}" + (f" --profile {profile}" if profile else "")


def _submit_stage(recipe: str, overrides: tuple[str, ...], profile: Optional[str], loaded: Any, stage: str,
                  nodes: Optional[int], partition: Optional[str], time_limit: Optional[str],
                  requeue: Optional[bool], resume: bool, run_dir: Optional[str], dry_run: bool,
                  skip_validate: bool) -> None:
    from ..engines import render
    from ..launch.environ import venv_bin
    from ..launch.slurm import SCRIPT_SET, job_warnings, render_sbatch, slurm_plan, stage_options, training_nodes
    from ..launch.slurm import submit as sbatch_submit
    from ..pipeline.chain import check_environment

    model = loaded.model
    count = training_nodes(model.cluster, nodes)
    plan = render(loaded, stage, nodes=count)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = Path(run_dir or Path("runs") / "slurm" / f"{model.name}-{stage}-{stamp}").resolve()
    opts = stage_options(model, stage, nodes=count, job_name=f"fakehr-{model.name}-{stage}", run_dir=str(target),
                         chdir=os.getcwd(), venv_bin=venv_bin(), recipe=_label(recipe, profile),
                         partition=partition, time=time_limit, requeue=requeue, resume=resume)
    script = render_sbatch(plan, opts)
    for warning in job_warnings(opts, plan.launcher, f"stage {stage}"):
        click.echo(warning, err=True)
    if dry_run:
        click.echo(script, nl=False)
        return
    if not skip_validate:  # data paths name files on the cluster: missing ones are warnings here
        preflight(loaded, (stage,), remote_data=True)
    # the job inherits this environment (sbatch --export=ALL): what the plan reads at launch must be set now
    job_plan = slurm_plan(plan, opts.export_cuda_visible_devices)
    check_environment([r for r in job_plan.env_refs if r not in SCRIPT_SET], f"stage {stage}")
    job_id = sbatch_submit(script, target, stage, {
        "recipe": str(Path(recipe).resolve()), "profile": profile, "overrides": list(overrides),
        "nodes": opts.nodes, "gpus_per_node": opts.gpus_per_node or 0, "launcher": plan.launcher})
    click.echo(f"submitted job {job_id}: stage {stage} on {opts.nodes} node(s)")
    click.echo(f"run dir: {target}")
    click.echo(f"log:     {target / f'slurm-{job_id}.out'}")
    click.echo(f"status:  fakehr-orchestra status {target}", file=sys.stdout)


def _submit_chain(loaded: Any, stages_text: Optional[str], jobs: Any, resume: bool, force: bool,
                  sweep_specs: tuple[str, ...], run_dir: Optional[str], dry_run: bool, skip_validate: bool) -> None:
    """The chain (pipeline/chain.py): its warnings, then its scripts (--dry-run) or its submission."""
    from ..launch.slurm_chain import dry_run_text
    from ..pipeline.chain import plan_chain, submit_chain
    from .run import ALL, _stages

    stages = _stages(stages_text or ALL)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    default = f"{loaded.model.name}-sweep-{stamp}" if sweep_specs else f"{loaded.model.name}-{stamp}"
    target = Path(run_dir or Path("runs") / "slurm" / default).resolve()
    if resume and run_dir is None:
        fail("error: --resume needs --run-dir (the chain to continue)")
    chain = plan_chain(loaded, target, stages, jobs, sweep_specs=sweep_specs, resume=resume, force=force)
    for warning in chain.warnings:
        click.echo(warning, err=True)
    if not chain.links:
        click.echo(f"nothing to submit: every stage is finished (fakehr-orchestra status {target})")
        return
    if dry_run:
        click.echo(dry_run_text(chain.links), nl=False)
        return
    check = None if skip_validate else functools.partial(preflight, stages=stages, remote_data=True)
    jobs_done = submit_chain(chain, loaded, resume, check)
    click.echo(f"submitted {len(jobs_done)} job(s)" + (f" for {len(chain.recipes)} sweep point(s)" if sweep_specs
                                                       else ""))
    for key, job in jobs_done.items():
        after = f" after {','.join(job['after'])}" if job["after"] else ""
        click.echo(f"  {key:<24} job {job['job_id']}{after}: {job['nodes']} node(s), {job['gpus_per_node']} "
                   f"GPU(s)/node; log {job['log']}")
    click.echo(f"run dir: {target}")
    click.echo(f"status:  fakehr-orchestra status {target}")
