"""`fakehr-orchestra submit`: the pipeline as a chain of Slurm jobs sharing one run dir (sweeps: one chain per
point), or one stage's rendered command as one job (`--stage`); `--dry-run` prints the scripts."""

from __future__ import annotations

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

    loaded = load(recipe, overrides, profile)
    try:
        if stage is not None:
            if stages_text or sweep_specs or force:
                fail("error: --stage submits one stage's command; --stages, --sweep and --force are for the chain "
                     "(leave --stage out)")
            _submit_stage(recipe, overrides, profile, loaded, stage, nodes, partition, time_limit, requeue, resume,
                          run_dir, dry_run, skip_validate)
        else:
            _submit_chain(recipe, overrides, profile, loaded, stages_text, nodes, partition, time_limit, requeue,
                          resume, force, sweep_specs, run_dir, dry_run, skip_validate)
    except SlurmOptionError as exc:
        fail(f"error: {exc}")
    except SlurmError as exc:
        fail(f"error: {exc}", code=1)


def _label(recipe: str, profile: Optional[str]) -> str:
    return f"{recipe}" + (f" --profile {profile}" if profile else "")


def _missing_env(refs: list[str], what: str) -> None:
    missing = [r for r in refs if r not in os.environ]
    if missing:
        fail(f"error: {what} reads {', '.join(missing)} from the environment at launch; export "
             f"{'it' if len(missing) == 1 else 'them'} before submitting, or override the recipe key")


def _submit_stage(recipe: str, overrides: tuple[str, ...], profile: Optional[str], loaded: Any, stage: str,
                  nodes: Optional[int], partition: Optional[str], time_limit: Optional[str],
                  requeue: Optional[bool], resume: bool, run_dir: Optional[str], dry_run: bool,
                  skip_validate: bool) -> None:
    from ..engines import render
    from ..launch.environ import venv_bin
    from ..launch.slurm import SCRIPT_SET, job_warnings, render_sbatch, slurm_plan, stage_options, training_nodes
    from ..launch.slurm import submit as sbatch_submit

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
    _missing_env([r for r in job_plan.env_refs if r not in SCRIPT_SET], f"stage {stage}")
    job_id = sbatch_submit(script, target, stage, {
        "recipe": str(Path(recipe).resolve()), "profile": profile, "overrides": list(overrides),
        "nodes": opts.nodes, "gpus_per_node": opts.gpus_per_node or 0, "launcher": plan.launcher})
    click.echo(f"submitted job {job_id}: stage {stage} on {opts.nodes} node(s)")
    click.echo(f"run dir: {target}")
    click.echo(f"log:     {target / f'slurm-{job_id}.out'}")
    click.echo(f"status:  fakehr-orchestra status {target}", file=sys.stdout)


def _submit_chain(recipe: str, overrides: tuple[str, ...], profile: Optional[str], loaded: Any,
                  stages_text: Optional[str], nodes: Optional[int], partition: Optional[str],
                  time_limit: Optional[str], requeue: Optional[bool], resume: bool, force: bool,
                  sweep_specs: tuple[str, ...], run_dir: Optional[str], dry_run: bool, skip_validate: bool) -> None:
    from ..launch.slurm import job_warnings
    from ..launch.slurm_chain import RunCommand, dry_run_text, live_jobs, submit_links
    from ..pipeline import sweep
    from ..pipeline.rundir import RunDir
    from ..pipeline.runner import PipelineError, check_recipe
    from .run import ALL, _stages

    stages = _stages(stages_text or ALL)
    model = loaded.model
    stamp = time.strftime("%Y%m%d-%H%M%S")
    default = f"{model.name}-sweep-{stamp}" if sweep_specs else f"{model.name}-{stamp}"
    target = Path(run_dir or Path("runs") / "slurm" / default).resolve()
    if resume and run_dir is None:
        fail("error: --resume needs --run-dir (the chain to continue)")
    common = dict(nodes=nodes, partition=partition, time_limit=time_limit, requeue=requeue,
                  label=_label(recipe, profile))
    # (point label, its run dir's name, its recipe, its run dir); one run with empty names without a sweep
    runs: list[tuple[str, str, Any, Path]] = []
    if sweep_specs:
        try:
            points = sweep.open_sweep(loaded, list(sweep_specs), target, resume, write=False)
        except sweep.SweepError as exc:
            fail(f"error: {exc}")
            return
        runs = [(p.label, p.dirname, load(recipe, overrides + p.overrides, profile), target / p.dirname)
                for p in points]
    else:
        runs = [("", "", loaded, target)]

    links, reports, point_recipes = [], [], []
    for label, dirname, point_recipe, point_dir in runs:
        rd = RunDir(point_dir)
        started = rd.exists() or (point_dir / "slurm.json").exists()
        if started and not resume:
            fail(f"error: {point_dir} already holds a run; continue it with --resume, or choose another --run-dir")
        remaining = stages
        if resume and started:
            try:
                check_recipe(point_recipe, rd, force)
            except PipelineError as exc:
                fail(f"error: {point_dir}: {exc}")
            live = live_jobs(point_dir)
            if live:
                fail(f"error: {point_dir}: jobs of its chain are still queued or running: {', '.join(live)}; wait "
                     "for them (fakehr-orchestra status), or scancel them, before --resume")
            remaining = _remaining(point_recipe, rd, stages)
        point_links = _links(point_recipe, rd, remaining, prefix=dirname, **common,
                             command=RunCommand(str(Path(recipe).resolve()), tuple(point_recipe.overrides),
                                                profile, str(point_dir), force=force))
        links += point_links
        point_recipes.append(point_recipe)
        if sweep_specs:
            reports.append((label, point_links[-1].key if point_links else None, point_recipe, point_dir))
    if sweep_specs:
        report_link = _report_link(loaded, target, reports, stages, resume, **common)
        if report_link is not None:
            links.append(report_link)
    for link in links:
        for warning in job_warnings(link.opts, link.launcher, f"job {link.key}"):
            click.echo(warning, err=True)
    if not links:
        click.echo(f"nothing to submit: every stage is finished (fakehr-orchestra status {target})")
        return
    if dry_run:
        click.echo(dry_run_text(links), nl=False)
        return
    if not skip_validate:
        for point_recipe in point_recipes:
            preflight(point_recipe, stages, remote_data=True)
    for link in links:
        _missing_env(link.env_refs, f"{link.key}")
    if sweep_specs:
        sweep.open_sweep(loaded, list(sweep_specs), target, resume, write=True)
    jobs = submit_links(links, resume)
    click.echo(f"submitted {len(jobs)} job(s)" + (f" for {len(runs)} sweep point(s)" if sweep_specs else ""))
    for key, job in jobs.items():
        after = f" after {','.join(job['after'])}" if job["after"] else ""
        click.echo(f"  {key:<24} job {job['job_id']}{after}: {job['nodes']} node(s), {job['gpus_per_node']} "
                   f"GPU(s)/node; log {job['log']}")
    click.echo(f"run dir: {target}")
    click.echo(f"status:  fakehr-orchestra status {target}")


def _remaining(recipe: Any, rd: Any, stages: tuple[str, ...]) -> tuple[str, ...]:
    from ..pipeline.runner import Options, finished_stages

    done = finished_stages(recipe, rd, Options(stages=stages, resume=True))
    return stages[len(done):]


def _links(recipe: Any, rd: Any, stages: tuple[str, ...], *, prefix: str, nodes: Optional[int],
           partition: Optional[str], time_limit: Optional[str], requeue: Optional[bool], label: str,
           command: Any) -> list[Any]:
    """The jobs of one chain: its stages grouped into jobs, each sized from its main stage, each after the last."""
    from ..launch.environ import venv_bin
    from ..launch.slurm import stage_options
    from ..launch.slurm_chain import chain_links, companion_plans
    from ..pipeline.runner import Options, plan_all

    if not stages:
        return []
    model = recipe.model
    plans = plan_all(recipe, rd, Options(stages=stages), rd.load() if rd.exists() else None)

    def options(stage: str, name: str) -> Any:
        return stage_options(model, stage, nodes=nodes, job_name=f"fakehr-{model.name}-"
                             + (f"{prefix}-" if prefix else "") + name, run_dir=str(rd.path), chdir=os.getcwd(),
                             venv_bin=venv_bin(), recipe=label, partition=partition, time=time_limit,
                             requeue=requeue)
    return chain_links(plans, options, command, run_dir=str(rd.path), prefix=prefix,
                       companions=lambda stage: companion_plans(recipe, stage))


def _with_output(opts: Any, output: str) -> Any:
    from dataclasses import replace
    return replace(opts, output=output)


def _report_link(loaded: Any, sweep_dir: Path, reports: list[tuple[str, Optional[str], Any, Path]],
                 stages: tuple[str, ...], resume: bool, *, nodes: Optional[int], partition: Optional[str],
                 time_limit: Optional[str], requeue: Optional[bool], label: str) -> Any:
    """The sweep's last job: `eval report` of every point, after every point's chain (sized like the data job)."""
    from ..launch.environ import venv_bin
    from ..launch.slurm import stage_options
    from ..launch.slurm_chain import SCRIPTS, Link
    from ..pipeline import sweep

    metrics = [(point, sweep.eval_metrics(r, d, stages, {})) for point, _, r, d in reports]
    if not any(m for _, m in metrics):
        click.echo("note: no sweep report: eval is not among the chained stages", err=True)
        return None
    after = [key for _, key, _, _ in reports if key]
    if resume and not after and (sweep_dir / sweep.REPORT / "report.md").exists():
        return None
    plan = sweep.report_plan(sweep_dir, metrics, cwd=os.getcwd())
    opts = stage_options(loaded.model, "data", nodes=nodes, job_name=f"fakehr-{loaded.model.name}-sweep-report",
                         run_dir=str(sweep_dir), chdir=os.getcwd(), venv_bin=venv_bin(), recipe=label,
                         partition=partition, time=time_limit, requeue=requeue)
    opts = _with_output(opts, str(sweep_dir / SCRIPTS / "report-%j.out"))
    return Link(key="report", stages=("report",), launcher="local", opts=opts, command=plan, after=after,
                run_dir=str(sweep_dir), meta={"recipe": str(Path(loaded.path).resolve()), "profile": loaded.profile,
                                              "overrides": list(loaded.overrides)})
