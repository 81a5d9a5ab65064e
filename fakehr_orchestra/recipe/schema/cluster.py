"""Cluster shape: where and on how many processes a stage runs. `null` means: do not set it."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from .base import IntOrEnv, Strict


class SlurmSection(Strict):
    partition: Optional[str] = None
    time: Optional[str] = None  # sbatch --time, e.g. "2-00:00:00"
    account: Optional[str] = None
    qos: Optional[str] = None
    cpus_per_task: Optional[int] = None
    gres: Optional[str] = None  # e.g. "gpu:8"; null for CPU-only clusters
    requeue: bool = True
    signal_before_end_s: int = 300  # USR1 this long before the time limit, so the job can checkpoint / requeue
    extra_sbatch: list[str] = Field(default_factory=list)  # verbatim `#SBATCH` options


class RaySection(Strict):
    address: Optional[str] = None  # attach to an existing cluster instead of starting one (also RAY_ADDRESS)
    head_port: int = 6379
    wait_timeout_s: int = 600


class ClusterSection(Strict):
    nodes: Optional[IntOrEnv] = None  # NNODES
    node_rank: Optional[IntOrEnv] = None  # NODE_RANK
    master_addr: Optional[str] = None  # MASTER_ADDR (a host, or ${env:MASTER_ADDR})
    master_port: Optional[IntOrEnv] = None  # MASTER_PORT
    gpus_per_node: Optional[IntOrEnv] = None  # NPROC_PER_NODE (processes per node; CPU processes on a CPU box)
    cuda_visible_devices: Optional[str] = None
    device: Literal["cuda", "cpu"] = "cuda"
    # The GPU model, for memory estimates (`fakehr-orchestra estimate`; `validate` warns when a stage won't fit):
    # a name from `estimate --help` (e.g. h100-80gb) or NNgib for a GPU with NN GiB. null: not declared.
    gpu: Optional[str] = None
    slurm: SlurmSection = Field(default_factory=SlurmSection)
    ray: RaySection = Field(default_factory=RaySection)

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        from ...estimate.gpus import lookup, names
        if lookup(value) is None:
            from ..errors import closest
            match = closest(value.lower(), names())
            hint = f"did you mean {match!r}? " if match else ""
            raise ValueError(f"unknown GPU {value!r}: {hint}known: {', '.join(names())}, or NNgib")
        return value
