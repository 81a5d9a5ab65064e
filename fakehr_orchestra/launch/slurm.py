"""Slurm batch scripts for a stage, rendered from the templates in the top-level `launch/` folder; submit; status.

Two shapes:
- torchrun (SFT, and ms-swift's own GRPO): one srun task per node running the stage's command; the plan's torchrun
  env is set to launch-time references (`NODE_RANK="${SLURM_NODEID}"`, `MASTER_ADDR="${MASTER_ADDR}"`, ...) that
  the shell expands inside each task, so the same text is correct on every node.
- ray (verl GRPO): a Ray head and workers as srun steps, a poll until all have joined, the driver on the head.
The chained submission (`submit` without --stage, slurm_chain.py) reuses the same pieces.

GPUs: a job asks Slurm for its stage's GPUs per node (`--gpus-per-node=N`, or `--gres=gpu:N` with
cluster.slurm.gpu_request: gres), and Ray is told what Slurm granted each step (SLURM_CPUS_ON_NODE,
SLURM_GPUS_ON_NODE: set by Slurm 22.05 in the batch step and in every srun step). Slurm also sets
CUDA_VISIBLE_DEVICES to the granted GPUs, so the recipe's cluster.cuda_visible_devices is left out of a job unless
cluster.slurm.export_cuda_visible_devices says otherwise. Slurm 22.05's srun no longer inherits --cpus-per-task, so
the scripts export SRUN_CPUS_PER_TASK.

Commands inside scripts are the rendered Plan's own `to_shell()` text (shlex-quoted, launch-time references left as
expansions); nothing is re-derived from the recipe here. The `#SBATCH` values cannot be quoted (sbatch splits them
on whitespace), so values with whitespace are refused with a clear error instead.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from ..engines.plan import Plan
from ..engines.torchrun import with_nodes, without_torchrun_env
from ..io import write_json_atomic, write_text_atomic
from ..resources import shipped_dir
from ..script_text import script_text, shell_quote

TEMPLATE_FILES = {"torchrun": "sbatch_torchrun.sh.tmpl", "ray": "sbatch_ray.sh.tmpl"}
RAY_CLUSTER_PART = "ray_cluster.sh.part"  # the Ray bring-up both the single-stage and the chained scripts use
CUDA_VISIBLE_DEVICES_KEY = "cluster.cuda_visible_devices"
JOB_FILE = "slurm.json"
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
# A port per job, so two jobs sharing a node do not collide on torchrun's rendezvous port.
JOB_PORT = "$((20000 + SLURM_JOB_ID % 20000))"


class SlurmError(RuntimeError):
    """Something the user can fix: a bad option value, sbatch missing or refusing the job, an unknown run dir."""


class SlurmOptionError(SlurmError):
    """A recipe value or command-line option a job cannot be made from (exit code 2, like other recipe errors)."""


@dataclass(frozen=True)
class SbatchOptions:
    nodes: int
    job_name: str
    run_dir: str  # absolute; the job's log goes there
    chdir: str  # absolute; where the job runs (the plan's cwd is relative to it)
    venv_bin: str  # put first on PATH inside the job
    recipe: str = ""
    partition: Optional[str] = None
    time: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    cpus_per_task: Optional[int] = None
    gres: Optional[str] = None
    gpus_per_node: Optional[int] = None  # GPUs asked for on each node (Ray: wait for nodes * gpus_per_node)
    gpu_request: str = "gpus-per-node"  # or "gres": --gres=gpu:N
    export_cuda_visible_devices: bool = False  # keep the recipe's CUDA_VISIBLE_DEVICES inside the job
    requeue: bool = True
    signal_before_end_s: int = 300
    extra_sbatch: tuple[str, ...] = field(default_factory=tuple)
    master_port: Optional[int] = None  # null: a port derived from the job id
    ray_port: int = 6379
    ray_wait_s: int = 600
    resume: bool = False  # resume even on the first run (a new job continuing an old output dir)
    output: str = ""  # the job's log (sbatch --output, %j: the job id); empty: run_dir/slurm-%j.out


def slurm_plan(plan: Plan, export_cuda_visible_devices: bool = False) -> Plan:
    """The plan as it runs inside the job: ms-swift's torchrun env from Slurm's variables; a verl driver drops the
    torchrun env (its node count is rendered into trainer.nnodes: `render(..., nodes=N)`). The recipe's
    cluster.cuda_visible_devices is dropped (Slurm sets CUDA_VISIBLE_DEVICES to the GPUs it granted) unless
    `export_cuda_visible_devices`; a CUDA_VISIBLE_DEVICES the stage's own env sets is kept."""
    if not export_cuda_visible_devices:
        plan = without_env_from(plan, CUDA_VISIBLE_DEVICES_KEY)
    if plan.launcher == "torchrun":
        return with_nodes(plan, nodes="${SLURM_JOB_NUM_NODES}", node_rank="${SLURM_NODEID}",
                          master_addr="${MASTER_ADDR}", master_port="${MASTER_PORT}")
    return without_torchrun_env(plan)


def without_env_from(plan: Plan, recipe_key: str) -> Plan:
    """The plan minus the env vars the renderer took from `recipe_key` (the plan's origins say which)."""
    names = [k for k in plan.env if plan.origin(f"env:{k}", "") == recipe_key]
    if not names:
        return plan
    return replace(plan, env={k: v for k, v in plan.env.items() if k not in names},
                   origins={k: v for k, v in plan.origins.items() if k not in {f"env:{n}" for n in names}})


def training_nodes(cluster: Any, nodes: Optional[int]) -> int:
    """The training allocation's node count: --nodes, else cluster.nodes (null: one node)."""
    if nodes is not None:
        if nodes < 1:
            raise SlurmOptionError(f"--nodes {nodes}: need at least 1 node")
        return nodes
    if cluster.nodes is None:
        return 1
    if not isinstance(cluster.nodes, int):
        raise SlurmOptionError(f"how many nodes? the recipe's cluster.nodes is {cluster.nodes!r}, which Slurm "
                               "cannot read at submit time; pass --nodes N")
    return cluster.nodes


def stage_gpus(cluster: Any, stage: str) -> int:
    """GPUs per node the stage's job asks for: cluster.slurm.stages.<stage>.gpus_per_node ("cluster": the cluster
    section's GPUs per node on a cuda cluster, none on a CPU one)."""
    value = getattr(cluster.slurm.stages, stage).gpus_per_node
    if value != "cluster":
        return int(value)
    if cluster.device != "cuda":
        return 0
    if not isinstance(cluster.gpus_per_node, int):
        raise SlurmOptionError(f"{stage}: how many GPUs per node should its job ask for? cluster.gpus_per_node is "
                         f"{cluster.gpus_per_node!r}; set it to a number, or set "
                         f"cluster.slurm.stages.{stage}.gpus_per_node")
    return cluster.gpus_per_node


def stage_options(model: Any, stage: str, *, nodes: Optional[int], job_name: str, run_dir: str, chdir: str,
                  venv_bin: str, recipe: str, partition: Optional[str] = None, time: Optional[str] = None,
                  requeue: Optional[bool] = None, resume: bool = False) -> SbatchOptions:
    """A stage's job from the recipe's cluster section: cluster.slurm, overridden by cluster.slurm.stages.<stage>,
    overridden by the command line's --partition / --time (for every job it submits)."""
    cluster, slurm = model.cluster, model.cluster.slurm
    job = getattr(slurm.stages, stage)
    count = training_nodes(cluster, nodes) if job.nodes == "cluster" else int(job.nodes)
    return SbatchOptions(
        nodes=count, job_name=job_name, run_dir=run_dir, chdir=chdir, venv_bin=venv_bin, recipe=recipe,
        partition=partition or job.partition or slurm.partition, time=time or job.time or slurm.time,
        account=slurm.account, qos=slurm.qos, cpus_per_task=job.cpus_per_task or slurm.cpus_per_task,
        gres=slurm.gres, gpus_per_node=stage_gpus(cluster, stage) or None, gpu_request=slurm.gpu_request,
        export_cuda_visible_devices=slurm.export_cuda_visible_devices,
        requeue=slurm.requeue if requeue is None else requeue, signal_before_end_s=slurm.signal_before_end_s,
        extra_sbatch=tuple(slurm.extra_sbatch) + tuple(job.extra_sbatch),
        master_port=cluster.master_port if isinstance(cluster.master_port, int) else None,
        ray_port=cluster.ray.head_port, ray_wait_s=cluster.ray.wait_timeout_s, resume=resume)


def job_warnings(opts: SbatchOptions, launcher: str, what: str) -> list[str]:
    """What is legal but likely wrong about a job: a GPU job given no CPUs (Slurm grants one per task, and Ray would
    be told it has one CPU per node)."""
    if opts.gpus_per_node and opts.cpus_per_task is None:
        return [f"warning: {what}: {opts.gpus_per_node} GPU(s) per node but no cluster.slurm.cpus_per_task: Slurm "
                "grants one CPU per task" + (", and Ray is started with it" if launcher == "ray" else "")
                + "; set cluster.slurm.cpus_per_task (or cluster.slurm.stages.<stage>.cpus_per_task)"]
    return []


def _sbatch_value(name: str, value: Any) -> str:
    text = str(value)
    if not text or re.search(r"\s", text):
        raise SlurmOptionError(f"cluster.slurm.{name} = {text!r}: an #SBATCH value cannot be empty or contain "
                               "whitespace")
    return text


def sbatch_lines(opts: SbatchOptions) -> list[str]:
    if opts.nodes < 1:
        raise SlurmOptionError(f"--nodes {opts.nodes}: need at least 1 node")
    output = opts.output or f"{opts.run_dir}/slurm-%j.out"
    lines = [f"--job-name={_sbatch_value('job_name', opts.job_name)}", f"--nodes={opts.nodes}",
             "--ntasks-per-node=1", f"--output={_sbatch_value('run_dir', output)}",
             "--open-mode=append"]
    for name in ("partition", "time", "account", "qos", "cpus_per_task"):
        value = getattr(opts, name)
        if value is not None:
            lines.append(f"--{name.replace('_', '-')}={_sbatch_value(name, value)}")
    lines += gpu_lines(opts)
    if opts.requeue:
        lines += ["--requeue", f"--signal=B:USR1@{int(opts.signal_before_end_s)}"]
    for extra in opts.extra_sbatch:
        if not extra.startswith("-") or "\n" in extra:
            raise SlurmOptionError(f"cluster.slurm.extra_sbatch: {extra!r} is not an sbatch option (like --mem=64G)")
        lines.append(extra)
    return [f"#SBATCH {line}" for line in lines]


def gpu_lines(opts: SbatchOptions) -> list[str]:
    """The GPU request (from the stage's GPUs per node) and cluster.slurm.gres, which must not ask for GPUs too."""
    gres = [g for g in (opts.gres or "").split(",") if g]
    if opts.gres is not None:
        _sbatch_value("gres", opts.gres)
    asks_gpus = [g for g in gres if g.split(":")[0] == "gpu"]
    if opts.gpus_per_node and asks_gpus:
        raise SlurmOptionError(f"cluster.slurm.gres = {opts.gres!r} asks for GPUs, and the stage's job asks for "
                         f"{opts.gpus_per_node} per node (cluster.gpus_per_node / cluster.slurm.stages): ask once: "
                         "remove the gpu entry from cluster.slurm.gres (set cluster.slurm.gpu_request: gres to "
                         "have the GPUs requested as --gres=gpu:N)")
    if opts.gpu_request not in ("gpus-per-node", "gres"):
        raise SlurmOptionError(f"cluster.slurm.gpu_request = {opts.gpu_request!r}: use gpus-per-node or gres")
    lines = []
    if opts.gpus_per_node and opts.gpu_request == "gres":
        gres = [f"gpu:{int(opts.gpus_per_node)}"] + gres
    elif opts.gpus_per_node:
        lines.append(f"--gpus-per-node={int(opts.gpus_per_node)}")
    if gres:
        lines.append(f"--gres={','.join(gres)}")
    return lines


# Slurm 22.05: an srun step no longer inherits the job's --cpus-per-task (RELEASE_NOTES); without this each step
# (a torchrun node, a Ray node) would be confined to one CPU.
SRUN_CPUS = """# Slurm 22.05's srun does not pass the job's --cpus-per-task on to its steps: give each step the job's CPUs.
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"; fi"""

# Background steps of a job (Ray nodes, companion services) are stopped when the script exits.
JOB_STEPS = """job_steps=()
stop_job_steps() {
  if [ ${#job_steps[@]} -gt 0 ]; then kill "${job_steps[@]}" 2>/dev/null || true; fi
}
trap stop_job_steps EXIT"""


REQUEUE_TRAP = """
# USR1 arrives {s} s before the time limit (#SBATCH --signal): requeue, so the job continues from its last
# checkpoint instead of ending at the limit.
requeue_job() {{
  echo "fakehr-orchestra: time limit near; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
}}
trap requeue_job USR1
"""


def render_sbatch(plan: Plan, opts: SbatchOptions) -> str:
    """The batch script for one stage. `plan` is the rendered stage plan (slurm_plan() is applied here)."""
    launcher = plan.launcher
    if launcher not in TEMPLATE_FILES:
        raise SlurmError(f"stage {plan.stage}: no Slurm script for a {launcher!r} plan")
    job_plan = slurm_plan(plan, opts.export_cuda_visible_devices)
    command = job_plan.to_shell().replace("\n", "\n  ")
    values = {**common_values(opts), "TITLE": f"stage {plan.stage} on {opts.nodes} node(s) ({launcher})",
              "RESUME": "1" if opts.resume else "0", "COMMAND": command, "ENV_CHECKS": env_checks(job_plan)}
    if launcher == "torchrun":
        values["PLAN_CWD"] = job_plan._quote(job_plan.cwd or ".")
        if not job_plan.output_dir:
            raise SlurmError(f"stage {plan.stage}: the plan has no output dir; cannot locate checkpoints to resume")
        values["OUTPUT_DIR"] = job_plan._quote(job_plan.output_dir)
    return fill_template(TEMPLATE_FILES[launcher], values)


def common_values(opts: SbatchOptions) -> dict[str, str]:
    """Template values every job script shares: its #SBATCH header, environment, requeue trap, rendezvous, Ray."""
    values = {
        "RECIPE": opts.recipe or "a recipe",
        "SBATCH": "\n".join(sbatch_lines(opts)),
        "VENV_BIN": shell_quote(opts.venv_bin),
        "CHDIR": shell_quote(opts.chdir),
        "SRUN_CPUS": SRUN_CPUS,
        "JOB_STEPS": JOB_STEPS,
        "REQUEUE_TRAP": REQUEUE_TRAP.format(s=int(opts.signal_before_end_s)) if opts.requeue else "",
        "MASTER_PORT": str(opts.master_port) if opts.master_port else f'"{JOB_PORT}"',
        "RAY_PORT": str(int(opts.ray_port)),
        "WAIT_S": str(int(opts.ray_wait_s)),
        "WAIT_GPUS": f" --gpus {opts.nodes * opts.gpus_per_node}" if opts.gpus_per_node else "",
    }
    values["RAY_CLUSTER"] = fill_template(RAY_CLUSTER_PART, values).rstrip("\n")
    return values


# Placeholders that hold plain text (a recipe path, a title, a job's name), not shell code: they land in comments
# and inside double-quoted strings, so every one goes through script_text() (see there). Every other placeholder is
# shell text built by this module (shlex-quoted values, fixed snippets).
TEXT_PLACEHOLDERS = frozenset({"RECIPE", "TITLE", "LINK"})
def fill_template(name: str, values: dict[str, str]) -> str:
    """The template with its @@NAME@@ placeholders filled; text placeholders pass through script_text()."""
    template = (shipped_dir("launch") / name).read_text()

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise SlurmError(f"template {name}: no value for @@{match.group(1)}@@")
        value = values[match.group(1)]
        return script_text(value) if match.group(1) in TEXT_PLACEHOLDERS else value
    return _PLACEHOLDER.sub(fill, template)


# Set by Slurm or by the script itself before the stage's command runs.
SCRIPT_SET = ("SLURM_JOB_NUM_NODES", "SLURM_NODEID", "MASTER_ADDR", "MASTER_PORT")


def env_checks(plan: Plan) -> str:
    """Fail at the top of the job, naming the variable, when a launch-time value the recipe reads is not set."""
    names = [r for r in plan.env_refs if r not in SCRIPT_SET]
    if not names:
        return ""
    lines = ["", "# The recipe reads these at launch (${env:NAME}); sbatch passes on the submitting shell's environment."]
    lines += [f': "${{{n}:?is read by the recipe at launch: export it before submitting}}"' for n in names]
    return "\n".join(lines) + "\n"


# --- submit and status -------------------------------------------------------------------------------------------

def submit(script: str, run_dir: Path, stage: str, meta: dict[str, Any]) -> str:
    """Write the script into the run dir, sbatch it, record the job id; return the job id."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SlurmError("sbatch is not on PATH: run this on a Slurm login node, or use --dry-run to see the script")
    run_dir = Path(run_dir)
    script_path = write_text_atomic(run_dir / f"{stage}.sbatch", script)
    proc = subprocess.run([sbatch, "--parsable", str(script_path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SlurmError(f"sbatch refused {script_path} (exit {proc.returncode}): {proc.stderr.strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed {proc.stdout.strip()!r}, expected a job id")
    record = {"job_id": job_id, "stage": stage, "script": str(script_path), "submitted_at": time.time(),
              "log": str(run_dir / f"slurm-{job_id}.out"), **meta}
    write_json_atomic(run_dir / JOB_FILE, record)
    return job_id


def _run(argv: list[str]) -> Optional[str]:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def query_job(job_id: str) -> dict[str, Any]:
    """The job's state from squeue, then `scontrol show job`, then sacct (a one-node test cluster has no sacct)."""
    out = _run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"])
    if out:
        state, _, reason = out.splitlines()[0].partition("|")
        return {"state": state, "reason": reason, "source": "squeue"}
    out = _run(["scontrol", "show", "job", "-o", job_id])
    if out:
        fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        return {"state": fields.get("JobState", "UNKNOWN"), "reason": fields.get("Reason", ""),
                "exit_code": fields.get("ExitCode"), "restarts": fields.get("Restarts"), "source": "scontrol"}
    out = _run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"])
    if out:
        state, _, exit_code = out.splitlines()[0].partition("|")
        return {"state": state.split()[0] if state else "UNKNOWN", "exit_code": exit_code, "source": "sacct"}
    return {"state": "UNKNOWN", "source": None,
            "reason": "neither squeue, scontrol nor sacct knows the job (finished long ago on a cluster without "
                      "accounting, or Slurm is not reachable from here)"}


def slurm_status(run_dir: Path) -> dict[str, Any]:
    """Where a submitted run stands: the recorded submission plus the scheduler's view of the job."""
    path = Path(run_dir) / JOB_FILE
    if not path.is_file():
        raise SlurmError(f"{run_dir}: no {JOB_FILE} here (is it a run dir made by `fakehr-orchestra submit`?)")
    record = json.loads(path.read_text())
    status = {**record, **query_job(str(record["job_id"]))}
    status["run_dir"] = str(run_dir)
    return status
