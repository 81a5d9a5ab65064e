"""Inside a Slurm job: a torchrun plan as one srun task per node of the job (what `run --slurm` does for ms-swift).

The runner is the job's batch step: the one process that writes the run dir's manifest. For a torchrun step it
writes the plan every node runs next to the step's log, with the node's values left as launch-time references
(NODE_RANK="${SLURM_NODEID}", NNODES="${SLURM_JOB_NUM_NODES}", MASTER_ADDR / MASTER_PORT exported by the job
script), and starts `srun` with one task per node; each task (`python -m fakehr_orchestra.launch.srun PLAN.json`)
fills the references from its own environment and execs the command. So the other nodes only run their share of
the plan, and the step's log (srun gathers every task's output) is where the runner finds ms-swift's
last_model_checkpoint.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping, Optional

from ..engines.plan import MissingEnvError, Plan
from ..io import write_json_atomic
from .environ import venv_bin
from .local import exec_plan, run_plan
from .slurm import slurm_plan


def task_plan_path(log_path: Path) -> Path:
    return Path(log_path).with_name(f"{Path(log_path).stem}.task.json")


def run_on_allocation(plan: Plan, log_path: Path, export_cuda_visible_devices: bool = False,
                      environ: Optional[Mapping[str, str]] = None, echo: bool = True) -> int:
    """Run a torchrun plan over every node of the current Slurm job; return srun's exit code."""
    lookup = {**os.environ, **(environ or {})}
    nodes = lookup.get("SLURM_JOB_NUM_NODES")
    if not nodes:
        raise MissingEnvError(f"stage {plan.stage}: not inside a Slurm job (SLURM_JOB_NUM_NODES is not set); "
                              "`run --slurm` is what the scripts of `fakehr-orchestra submit` run")
    task = slurm_plan(plan, export_cuda_visible_devices)
    path = write_json_atomic(task_plan_path(log_path), task.to_dict())
    srun = Plan(stage=plan.stage, argv=["srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
                                        str(Path(venv_bin()) / "python3"), "-m", "fakehr_orchestra.launch.srun",
                                        str(path)])
    return run_plan(srun, log_path, environ, echo=echo)


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fakehr_orchestra.launch.srun PLAN.json", file=sys.stderr)
        return 2
    plan = Plan.from_dict(json.loads(Path(args[0]).read_text()))
    try:
        exec_plan(plan)
    except (MissingEnvError, OSError) as exc:
        print(f"fakehr-orchestra: node {os.environ.get('SLURM_NODEID', '?')}: {exc}", file=sys.stderr)
        return 127 if isinstance(exc, OSError) else 2
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())
