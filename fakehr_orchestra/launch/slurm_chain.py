"""The pipeline as chained Slurm jobs (`fakehr-orchestra submit RECIPE` without --stage).

One job per stage, each sized for it from cluster.slurm.stages (a CPU job for data, the training allocation with its
GPUs for sft and grpo, one node for merge and eval), each depending on the one before with
`--dependency=afterok:<id> --kill-on-invalid-dep=yes`: Slurm starts a job only when the previous one succeeded and
cancels it (and, in turn, everything after it) when that one failed. A stage that has nothing to run (merge after
ms-swift's GRPO: its checkpoints are already Hugging Face folders) runs in the next stage's job, so no node is
queued for it.

Every job runs its stage(s) through the pipeline runner: `fakehr-orchestra run RECIPE --run-dir D --stages S
--resume --slurm`. The run dir's manifest stays the one record of what is done and of the artifacts passed on; the
runner (the job's batch step, the only process writing the manifest) wires them, skips what is finished, resumes a
requeued stage from its checkpoint, and with `--slurm` spreads a torchrun stage over the job's nodes (launch/srun.py)
or attaches verl's driver to the Ray cluster the job script brought up. `submit --resume` asks the same runner which
stages are finished (pipeline.runner.finished_stages) and submits the rest.

Records: RUN_DIR/slurm.json lists each submission's jobs (id, stages, script, log, dependencies); `status` joins it
with the manifest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from ..engines.plan import Plan
from ..io import write_json_atomic, write_text_atomic
from ..script_text import script_text
from .slurm import (
    JOB_FILE,
    SCRIPT_SET,
    SbatchOptions,
    SlurmError,
    common_values,
    env_checks,
    fill_template,
    query_job,
    slurm_plan,
)

TEMPLATE = "sbatch_chain.sh.tmpl"
SCRIPTS = "slurm"  # RUN_DIR/slurm/<link>.sbatch and RUN_DIR/slurm/<link>-<job id>.out
CLI = "fakehr-orchestra"
# Slurm states after which a job does nothing more (a requeued job goes back to PENDING)
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "PREEMPTED", "UNKNOWN"}

TORCHRUN_SHAPE = """
# ms-swift's torchrun rendezvous: the first host of the allocation and a port per job. `run --slurm` starts one srun
# task per node, each with NODE_RANK=$SLURM_NODEID.
mapfile -t hosts < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
export MASTER_ADDR="${hosts[0]}"
export MASTER_PORT=@@MASTER_PORT@@
echo "fakehr-orchestra: nodes ${hosts[*]}; rendezvous $MASTER_ADDR:$MASTER_PORT"
"""


def companion_plans(recipe: Any, stage: str) -> list[Plan]:
    """The services a stage needs beside it while it runs (e.g. FakeVLM-R1's critic VLM server for grpo), each a
    Plan started in the background of the stage's job and stopped when the job ends. None are built yet: this is
    the place to return them."""
    return []


@dataclass
class RunCommand:
    """How a job calls the pipeline runner: the recipe exactly as submitted, the chain's run dir."""

    recipe: str  # absolute path
    overrides: tuple[str, ...]
    profile: Optional[str]
    run_dir: str
    force: bool = False
    versions: Optional[str] = None

    def plan(self, stages: Iterable[str]) -> Plan:
        """`run` for these stages; it runs in the job's working dir (the script cds there)."""
        argv = [CLI, "run", self.recipe, *self.overrides]
        if self.profile:
            argv += ["--profile", self.profile]
        argv += ["--run-dir", self.run_dir, "--stages", ",".join(stages), "--resume", "--slurm", "--skip-validate"]
        if self.force:
            argv.append("--force")
        if self.versions:
            argv += ["--versions", self.versions]
        return Plan(stage="+".join(stages), argv=argv)


@dataclass
class Link:
    """One job of a chain: the stages it runs, how it launches them, its sbatch options, what it waits for."""

    key: str  # unique within a submission: the link's name, prefixed with the sweep point's label in a sweep
    stages: tuple[str, ...]
    launcher: str  # local | torchrun | ray: how the link's main stage launches (from its plans' facts)
    opts: SbatchOptions
    command: Plan
    env_refs: list[str] = field(default_factory=list)  # launch-time values the stages' plans read
    companions: list[Plan] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # keys of the links it depends on (afterok)
    run_dir: str = ""  # where its script and record go
    meta: dict[str, Any] = field(default_factory=dict)  # the recipe as submitted (path, profile, overrides)

    @property
    def name(self) -> str:
        return "+".join(self.stages)


def stage_launcher(steps: list[Any]) -> str:
    """How a stage's steps launch, from the facts their plans carry: ray beats torchrun beats local."""
    launchers = {step.plan.launcher for step in steps}
    for kind in ("ray", "torchrun"):
        if kind in launchers:
            return kind
    return "local"


def group_stages(stage_plans: list[Any]) -> list[tuple[tuple[str, ...], Any]]:
    """Stages grouped into jobs: each stage with steps is a job; a stage with no steps (nothing to run) joins the
    next stage's job (or the previous one's when it is last). Returns (stages, the StagePlan that sizes the job)."""
    groups: list[tuple[list[str], Any]] = []
    pending: list[str] = []
    for sp in stage_plans:
        if not sp.steps:
            pending.append(sp.stage)
            continue
        groups.append((pending + [sp.stage], sp))
        pending = []
    if pending:
        if groups:
            groups[-1][0].extend(pending)
        else:  # nothing but empty stages: one job records them
            groups.append((pending, stage_plans[-1]))
    return [(tuple(stages), sp) for stages, sp in groups]


def chain_links(stage_plans: list[Any], options: Callable[[str, str], SbatchOptions], command: RunCommand, *,
                run_dir: str, prefix: str = "",
                companions: Callable[[str], list[Plan]] = lambda stage: []) -> list[Link]:
    """The jobs of one chain, in order, each after the one before: the stages grouped into jobs (group_stages), each
    sized by `options(main stage, link name)`, its log in RUN_DIR/slurm/<link>-<job id>.out."""
    links: list[Link] = []
    for group, main in group_stages(stage_plans):
        name = "+".join(group)
        opts = replace(options(main.stage, name), output=str(Path(run_dir) / SCRIPTS / f"{name}-%j.out"))
        in_group = [sp for sp in stage_plans if sp.stage in group]
        links.append(Link(key=f"{prefix}/{name}" if prefix else name, stages=group,
                          launcher=stage_launcher(main.steps), opts=opts, command=command.plan(group),
                          env_refs=env_refs(in_group, opts.export_cuda_visible_devices),
                          companions=[c for stage in group for c in companions(stage)],
                          after=[links[-1].key] if links else [], run_dir=run_dir,
                          meta={"recipe": command.recipe, "profile": command.profile,
                                "overrides": list(command.overrides)}))
    return links


def env_refs(stage_plans: Iterable[Any], export_cuda_visible_devices: bool) -> list[str]:
    """Launch-time values the stages read, as they run in a job (the torchrun values become Slurm's; a verl driver
    drops them)."""
    names: list[str] = []
    for sp in stage_plans:
        for step in sp.steps:
            plan = slurm_plan(step.plan, export_cuda_visible_devices)
            names += [r for r in plan.env_refs if r not in SCRIPT_SET and r not in names]
    return names


def render_link(link: Link) -> str:
    """The batch script of one link."""
    values = common_values(link.opts)
    shape = {"torchrun": TORCHRUN_SHAPE.replace("@@MASTER_PORT@@", values["MASTER_PORT"]),
             "ray": "\n" + values["RAY_CLUSTER"] + "\n", "local": ""}[link.launcher]
    refs = Plan(stage=link.name, argv=["true"], env_refs=list(link.env_refs))
    values.update({
        "TITLE": f"{link.name} on {link.opts.nodes} node(s) ({link.launcher}), chained",
        "LINK": link.name,
        "SHAPE": shape,
        "COMPANIONS": render_companions(link),
        "COMMAND": link.command.to_shell().replace("\n", "\n  "),
        "ENV_CHECKS": env_checks(refs),
    })
    return fill_template(TEMPLATE, values)


def render_companions(link: Link) -> str:
    head = ("# Companion services of this job's stage(s) (e.g. a reward critic server for grpo) start here, in the "
            "background,\n# before the stage runs, and stop when the job ends")
    if not link.companions:
        return f"{head}. This job has none.\n"
    lines = [f"{head}:"]
    for i, plan in enumerate(link.companions):
        body = plan.to_shell().replace("\n", "\n  ")
        lines += [f"companion_{i}() {{", f"  {body}", "}", f"companion_{i} &", 'job_steps+=("$!")']
    return "\n".join(lines) + "\n"


def script_path(link: Link) -> Path:
    return Path(link.run_dir) / SCRIPTS / f"{link.name}.sbatch"


def dry_run_text(links: list[Link]) -> str:
    """Every script with how it would be submitted (dependencies as placeholders for the job ids to come)."""
    out = []
    for i, link in enumerate(links, 1):
        deps = ":".join(f"<job {k}>" for k in link.after)
        how = f"sbatch --dependency=afterok:{deps} --kill-on-invalid-dep=yes" if deps else "sbatch"
        out.append(f"# ==== job {i} of {len(links)}: {script_text(link.key)} "
                   f"(stages {script_text(', '.join(link.stages))})\n# {script_text(how)} {script_text(script_path(link))}\n")
        out.append(render_link(link))
        out.append("\n")
    return "".join(out)


def _sbatch(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SlurmError(f"sbatch refused {argv[-1]} (exit {proc.returncode}): {proc.stderr.strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed {proc.stdout.strip()!r}, expected a job id")
    return job_id


def submit_links(links: list[Link], resume: bool) -> dict[str, dict[str, Any]]:
    """sbatch every link in order, each after the links it depends on; record each run dir's jobs. If sbatch
    refuses one, the jobs already submitted in this call are cancelled, so no half chain is left queued."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SlurmError("sbatch is not on PATH: run this on a Slurm login node, or use --dry-run to see the scripts")
    jobs: dict[str, dict[str, Any]] = {}
    try:
        for link in links:
            path = write_text_atomic(script_path(link), render_link(link))
            after = [jobs[k]["job_id"] for k in link.after if k in jobs]
            argv = [sbatch, "--parsable"]
            if after:
                argv += [f"--dependency=afterok:{':'.join(after)}", "--kill-on-invalid-dep=yes"]
            job_id = _sbatch(argv + [str(path)])
            jobs[link.key] = {
                "job_id": job_id, "link": link.name, "stages": list(link.stages), "launcher": link.launcher,
                "nodes": link.opts.nodes, "gpus_per_node": link.opts.gpus_per_node or 0, "after": after,
                "script": str(path), "log": link.opts.output.replace("%j", job_id), "run_dir": link.run_dir}
    except (SlurmError, OSError, subprocess.TimeoutExpired) as exc:
        cancel([j["job_id"] for j in jobs.values()])
        raise SlurmError(f"{exc}" + (f" (cancelled the {len(jobs)} job(s) submitted before it)" if jobs else ""))
    by_dir: dict[str, list[dict[str, Any]]] = {}
    meta = {link.run_dir: link.meta for link in links}
    for job in jobs.values():
        by_dir.setdefault(job["run_dir"], []).append(job)
    for run_dir, dir_jobs in by_dir.items():
        record_submission(Path(run_dir), dir_jobs, meta[run_dir], resume)
    return jobs


def cancel(job_ids: list[str]) -> None:
    if job_ids and shutil.which("scancel"):
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)


def load_record(run_dir: Path) -> Optional[dict[str, Any]]:
    path = Path(run_dir) / JOB_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record.get("kind") != "chain":
        raise SlurmError(f"{run_dir} holds a single-stage submission ({JOB_FILE} from `submit --stage`); chain the "
                         "pipeline in another --run-dir")
    return record


def record_submission(run_dir: Path, jobs: list[dict[str, Any]], meta: dict[str, Any], resume: bool) -> None:
    record = load_record(run_dir) or {"kind": "chain", **meta, "submissions": []}
    record["submissions"].append({"submitted_at": time.time(), "resume": resume, "jobs": jobs})
    write_json_atomic(Path(run_dir) / JOB_FILE, record)


def job_states(run_dir: Path) -> list[dict[str, Any]]:
    """The latest job of each link the run dir's chain submitted, with the scheduler's view of it, in order."""
    record = load_record(run_dir)
    if record is None:
        return []
    latest: dict[str, dict[str, Any]] = {}
    for n, submission in enumerate(record["submissions"], 1):
        for job in submission["jobs"]:
            for key in [k for k, old in latest.items() if set(old["stages"]) & set(job["stages"])]:
                del latest[key]  # a later submission ran the stage again
            latest["+".join(job["stages"])] = {**job, "submission": n}
    return [{**job, **query_job(str(job["job_id"]))} for job in latest.values()]


def live_jobs(run_dir: Path) -> list[str]:
    """Jobs of the chain the scheduler still runs or will run ('' when none)."""
    return [f"{j['job_id']} ({j['link']}, {j['state']})" for j in job_states(run_dir) if j["state"] not in FINAL]
