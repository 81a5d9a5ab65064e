"""The one interface every launcher has, and the one place a step's launcher is chosen.

A launcher runs one plan to completion, its output teed to `log_path` (and echoed when `echo`), and returns the
plan's exit code (128+n when it died of signal n). Which one runs a step follows from the plan's launcher (local,
torchrun, ray) and from where we run: on this node, or as the batch step of a Slurm job of `slurm_nodes` nodes.
Submitting to Slurm (slurm.py, slurm_chain.py) is not a launcher: it queues jobs and returns their ids, and each
job runs `fakehr-orchestra run --slurm`, which launches its steps through here.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Protocol

from ..engines.plan import Plan

if TYPE_CHECKING:
    from ..recipe.schema.cluster import ClusterSection


class Launcher(Protocol):
    def __call__(self, plan: Plan, log_path: Path, *, echo: bool = True) -> int: ...


def choose_launcher(plan: Plan, cluster: "ClusterSection", slurm_nodes: Optional[int] = None,
                    environ: Optional[Mapping[str, str]] = None) -> Launcher:
    """run_plan for a plan on this node; for a verl driver, a Ray cluster sized as the plan says (in a Slurm job:
    the job's own Ray cluster, RAY_ADDRESS); in a Slurm job, a torchrun plan on every node of the job."""
    from .local import run_plan

    environ = os.environ if environ is None else environ
    if slurm_nodes and plan.launcher == "torchrun":
        from .srun import run_on_allocation
        return functools.partial(run_on_allocation,
                                 export_cuda_visible_devices=cluster.slurm.export_cuda_visible_devices)
    if plan.launcher != "ray":
        return run_plan

    from .ray_cluster import run_on_ray

    nodes, gpus_per_node = plan.world(environ)
    ray = cluster.ray
    address = (environ.get("RAY_ADDRESS") or ray.address) if slurm_nodes else ray.address
    # Ray takes the GPUs it may use from CUDA_VISIBLE_DEVICES when `ray start` runs: the GRPO plan's
    # (grpo.env.CUDA_VISIBLE_DEVICES), else the cluster's, so a critic server on other GPUs of this node
    # (critic.server.cuda_visible_devices) keeps them to itself
    devices = plan.env.get("CUDA_VISIBLE_DEVICES", cluster.cuda_visible_devices)
    ray_env = {"CUDA_VISIBLE_DEVICES": str(devices)} if devices is not None and "${" not in str(devices) else None
    return functools.partial(run_on_ray, nodes=nodes, gpus_per_node=gpus_per_node, address=address,
                             head_port=ray.head_port, wait_timeout_s=ray.wait_timeout_s, environ=ray_env)
