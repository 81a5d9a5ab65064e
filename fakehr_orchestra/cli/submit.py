"""`fakehr-orchestra submit`: render a stage's Slurm batch script and sbatch it (or print it with --dry-run)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import click

from .common import fail, friendly_errors, load, preflight, recipe_arguments


@click.command()
@recipe_arguments
@click.option("--stage", "-s", type=click.Choice(["sft", "grpo"]), required=True, help="The stage the job runs.")
@click.option("--nodes", "-N", type=int, default=None, help="Nodes to allocate (default: the recipe's cluster.nodes).")
@click.option("--partition", default=None, help="sbatch --partition (default: cluster.slurm.partition).")
@click.option("--time", "time_limit", default=None, help="sbatch --time, e.g. 2-00:00:00 (default: cluster.slurm.time).")
@click.option("--requeue/--no-requeue", default=None,
              help="Requeue on preemption and shortly before the time limit (default: cluster.slurm.requeue).")
@click.option("--resume", is_flag=True, help="Resume from the stage's last checkpoint even on the job's first run.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Where the script, job id and log go (default: runs/slurm/<recipe>-<stage>-<time>).")
@click.option("--dry-run", is_flag=True, help="Print the batch script and submit nothing.")
@click.option("--skip-validate", is_flag=True, help="Do not run the preflight checks before submitting.")
@friendly_errors
def submit(recipe: str, overrides: tuple[str, ...], profile: Optional[str], stage: str, nodes: Optional[int],
           partition: Optional[str], time_limit: Optional[str], requeue: Optional[bool], resume: bool,
           run_dir: Optional[str], dry_run: bool, skip_validate: bool) -> None:
    """Render RECIPE's STAGE as an sbatch script for N nodes and submit it. OVERRIDES are key.path=value."""
    from ..engines import render
    from ..launch.local import venv_bin
    from ..launch.slurm import SCRIPT_SET, SbatchOptions, SlurmError, render_sbatch, slurm_plan
    from ..launch.slurm import submit as sbatch_submit

    loaded = load(recipe, overrides, profile)
    model = loaded.model
    cluster, slurm_cfg = model.cluster, model.cluster.slurm
    if nodes is None:
        if not isinstance(cluster.nodes, int):
            fail(f"error: how many nodes? the recipe's cluster.nodes is {cluster.nodes!r}, which Slurm cannot "
                 "read at submit time; pass --nodes N")
        nodes = cluster.nodes
    plan = render(loaded, stage, nodes=nodes)
    launcher = plan.launcher
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = Path(run_dir or Path("runs") / "slurm" / f"{model.name}-{stage}-{stamp}").resolve()
    opts = SbatchOptions(
        nodes=nodes, job_name=f"fakehr-{model.name}-{stage}", run_dir=str(target), chdir=os.getcwd(),
        venv_bin=venv_bin(), recipe=f"{recipe}" + (f" --profile {profile}" if profile else ""),
        partition=partition or slurm_cfg.partition, time=time_limit or slurm_cfg.time,
        account=slurm_cfg.account, qos=slurm_cfg.qos, cpus_per_task=slurm_cfg.cpus_per_task, gres=slurm_cfg.gres,
        requeue=slurm_cfg.requeue if requeue is None else requeue, signal_before_end_s=slurm_cfg.signal_before_end_s,
        extra_sbatch=tuple(slurm_cfg.extra_sbatch),
        master_port=cluster.master_port if isinstance(cluster.master_port, int) else None,
        gpus_per_node=(cluster.gpus_per_node if isinstance(cluster.gpus_per_node, int)
                       and cluster.device == "cuda" else None),
        ray_port=model.cluster.ray.head_port, ray_wait_s=model.cluster.ray.wait_timeout_s, resume=resume)
    try:
        script = render_sbatch(plan, opts)
        if dry_run:
            click.echo(script, nl=False)
            return
        if not skip_validate:  # data paths name files on the cluster: missing ones are warnings here
            preflight(loaded, (stage,), remote_data=True)
        # the job inherits this environment (sbatch --export=ALL): what the plan reads at launch must be set now
        missing = [r for r in slurm_plan(plan).env_refs
                   if r not in SCRIPT_SET and r not in os.environ]
        if missing:
            fail(f"error: stage {stage} reads {', '.join(missing)} from the environment at launch; export "
                 f"{'it' if len(missing) == 1 else 'them'} before submitting, or override the recipe key")
        job_id = sbatch_submit(script, target, stage, {
            "recipe": str(Path(recipe).resolve()), "profile": profile, "overrides": list(overrides),
            "nodes": nodes, "launcher": launcher})
    except SlurmError as exc:
        fail(f"error: {exc}", code=1)
        return
    click.echo(f"submitted job {job_id}: stage {stage} on {nodes} node(s)")
    click.echo(f"run dir: {target}")
    click.echo(f"log:     {target / f'slurm-{job_id}.out'}")
    click.echo(f"status:  fakehr-orchestra status {target}", file=sys.stdout)
