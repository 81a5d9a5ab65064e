"""Slurm batch scripts for a stage, rendered from the templates in the top-level `launch/` folder; submit; status.

Two shapes:
- torchrun (SFT, and ms-swift's own GRPO): one srun task per node running the stage's command; the plan's torchrun
  env is set to launch-time references (`NODE_RANK="${SLURM_NODEID}"`, `MASTER_ADDR="${MASTER_ADDR}"`, ...) that
  the shell expands inside each task, so the same text is correct on every node.
- ray (verl GRPO): a Ray head and workers as srun steps, a poll until all have joined, the driver on the head.

Commands inside scripts are the rendered Plan's own `to_shell()` text (shlex-quoted, launch-time references left as
expansions); nothing is re-derived from the recipe here. The `#SBATCH` values cannot be quoted (sbatch splits them
on whitespace), so values with whitespace are refused with a clear error instead.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..engines.plan import Plan
from ..io import write_json_atomic, write_text_atomic
from .local import with_nodes, without_torchrun_env

TEMPLATES = Path(__file__).resolve().parents[2] / "launch"
TEMPLATE_FILES = {"torchrun": "sbatch_torchrun.sh.tmpl", "ray": "sbatch_ray.sh.tmpl"}
JOB_FILE = "slurm.json"
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
# A port per job, so two jobs sharing a node do not collide on torchrun's rendezvous port.
JOB_PORT = "$((20000 + SLURM_JOB_ID % 20000))"


class SlurmError(RuntimeError):
    """Something the user can fix: a bad option value, sbatch missing or refusing the job, an unknown run dir."""


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
    requeue: bool = True
    signal_before_end_s: int = 300
    extra_sbatch: tuple[str, ...] = field(default_factory=tuple)
    master_port: Optional[int] = None  # null: a port derived from the job id
    gpus_per_node: Optional[int] = None  # Ray: wait for nodes * gpus_per_node GPUs
    ray_port: int = 6379
    ray_wait_s: int = 600
    resume: bool = False  # resume even on the first run (a new job continuing an old output dir)


def slurm_plan(plan: Plan) -> Plan:
    """The plan as it runs inside the job: ms-swift's torchrun env from Slurm's variables; a verl driver drops the
    torchrun env (its node count is rendered into trainer.nnodes: `render(..., nodes=N)`)."""
    if plan.launcher == "torchrun":
        return with_nodes(plan, nodes="${SLURM_JOB_NUM_NODES}", node_rank="${SLURM_NODEID}",
                          master_addr="${MASTER_ADDR}", master_port="${MASTER_PORT}")
    return without_torchrun_env(plan)


def _sbatch_value(name: str, value: Any) -> str:
    text = str(value)
    if not text or re.search(r"\s", text):
        raise SlurmError(f"cluster.slurm.{name} = {text!r}: an #SBATCH value cannot be empty or contain whitespace")
    return text


def sbatch_lines(opts: SbatchOptions) -> list[str]:
    if opts.nodes < 1:
        raise SlurmError(f"--nodes {opts.nodes}: need at least 1 node")
    lines = [f"--job-name={_sbatch_value('job_name', opts.job_name)}", f"--nodes={opts.nodes}",
             "--ntasks-per-node=1", f"--output={_sbatch_value('run_dir', opts.run_dir)}/slurm-%j.out",
             "--open-mode=append"]
    for name in ("partition", "time", "account", "qos", "cpus_per_task", "gres"):
        value = getattr(opts, name)
        if value is not None:
            lines.append(f"--{name.replace('_', '-')}={_sbatch_value(name, value)}")
    if opts.requeue:
        lines += ["--requeue", f"--signal=B:USR1@{int(opts.signal_before_end_s)}"]
    for extra in opts.extra_sbatch:
        if not extra.startswith("-") or "\n" in extra:
            raise SlurmError(f"cluster.slurm.extra_sbatch: {extra!r} is not an sbatch option (like --mem=64G)")
        lines.append(extra)
    return [f"#SBATCH {line}" for line in lines]


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
    job_plan = slurm_plan(plan)
    command = job_plan.to_shell().replace("\n", "\n  ")
    values = {
        "TITLE": f"stage {plan.stage} on {opts.nodes} node(s) ({launcher})",
        "RECIPE": opts.recipe or "a recipe",
        "SBATCH": "\n".join(sbatch_lines(opts)),
        "VENV_BIN": shlex.quote(opts.venv_bin),
        "CHDIR": shlex.quote(opts.chdir),
        "RESUME": "1" if opts.resume else "0",
        "REQUEUE_TRAP": REQUEUE_TRAP.format(s=int(opts.signal_before_end_s)) if opts.requeue else "",
        "COMMAND": command,
        "MASTER_PORT": str(opts.master_port) if opts.master_port else f'"{JOB_PORT}"',
        "RAY_PORT": str(int(opts.ray_port)),
        "WAIT_S": str(int(opts.ray_wait_s)),
        "WAIT_GPUS": f" --gpus {opts.nodes * opts.gpus_per_node}" if opts.gpus_per_node else "",
        "ENV_CHECKS": env_checks(job_plan),
    }
    if launcher == "torchrun":
        values["PLAN_CWD"] = job_plan._quote(job_plan.cwd or ".")
        if not job_plan.output_dir:
            raise SlurmError(f"stage {plan.stage}: the plan has no output dir; cannot locate checkpoints to resume")
        values["OUTPUT_DIR"] = job_plan._quote(job_plan.output_dir)
    template = (TEMPLATES / TEMPLATE_FILES[launcher]).read_text()

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise SlurmError(f"template {TEMPLATE_FILES[launcher]}: no value for @@{match.group(1)}@@")
        return values[match.group(1)]
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
