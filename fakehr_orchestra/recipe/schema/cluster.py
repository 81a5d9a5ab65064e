"""Cluster shape: where and on how many processes a stage runs. `null` means: do not set it."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, field_validator

from .base import IntOrEnv, Strict

# "cluster": the value the cluster section gives (nodes: --nodes, else cluster.nodes; GPUs: cluster.gpus_per_node
# when cluster.device is cuda, none on a CPU cluster)
FromCluster = Literal["cluster"]


class SlurmJob(Strict):
    """How one stage's Slurm job is sized (`submit`: each job of a chain, and `submit --stage`).

    null: the value in cluster.slurm (partition, time, cpus_per_task). A CPU job for data, the training allocation
    with its GPUs for sft and grpo, one node for merge (CPU) and eval (GPUs): each stage's defaults below.
    """

    nodes: Union[int, FromCluster] = 1
    gpus_per_node: Union[int, FromCluster] = 0
    time: Optional[str] = Field(None, description="sbatch --time for this stage's job")
    partition: Optional[str] = None
    cpus_per_task: Optional[int] = None
    extra_sbatch: list[str] = Field(default_factory=list, description="added after cluster.slurm.extra_sbatch")


class TrainingJob(SlurmJob):
    nodes: Union[int, FromCluster] = "cluster"
    gpus_per_node: Union[int, FromCluster] = "cluster"


class EvalJob(SlurmJob):
    gpus_per_node: Union[int, FromCluster] = "cluster"


class SlurmStages(Strict):
    data: SlurmJob = Field(default_factory=SlurmJob)
    sft: TrainingJob = Field(default_factory=TrainingJob)
    grpo: TrainingJob = Field(default_factory=TrainingJob)
    merge: SlurmJob = Field(default_factory=SlurmJob)
    eval: EvalJob = Field(default_factory=EvalJob)


class SlurmSection(Strict):
    partition: Optional[str] = None
    time: Optional[str] = Field(None, description="sbatch --time, e.g. \"2-00:00:00\"")
    account: Optional[str] = None
    qos: Optional[str] = None
    cpus_per_task: Optional[int] = None
    gres: Optional[str] = Field(None,
                                description="other generic resources, e.g. \"nvme:1\"; GPUs come from gpus_per_node")
    gpu_request: Literal["gpus-per-node", "gres"] = Field("gpus-per-node",
                                                          description="how a job asks for its GPUs: "
                                                                      "--gpus-per-node=N, or --gres=gpu:N on clusters "
                                                                      "configured for gres only")
    export_cuda_visible_devices: bool = Field(False,
                                              description="Slurm sets CUDA_VISIBLE_DEVICES to the GPUs it granted; "
                                                          "the recipe's cluster.cuda_visible_devices would override "
                                                          "that (a job confined to its GPUs then sees none), so it is "
                                                          "left out of jobs unless this is true")
    requeue: bool = True
    signal_before_end_s: int = Field(300,
                                     description="USR1 this long before the time limit, so the job can checkpoint / "
                                                 "requeue")
    extra_sbatch: list[str] = Field(default_factory=list, description="verbatim `#SBATCH` options")
    stages: SlurmStages = Field(default_factory=SlurmStages, description="each stage's job: nodes, GPUs, time limit")


class RaySection(Strict):
    address: Optional[str] = Field(None,
                                   description="attach to an existing cluster instead of starting one (also "
                                               "RAY_ADDRESS)")
    head_port: int = 6379
    wait_timeout_s: int = 600


class ClusterSection(Strict):
    nodes: Optional[IntOrEnv] = Field(None, description="NNODES")
    node_rank: Optional[IntOrEnv] = Field(None, description="NODE_RANK")
    master_addr: Optional[str] = Field(None, description="MASTER_ADDR (a host, or ${env:MASTER_ADDR})")
    master_port: Optional[IntOrEnv] = Field(None, description="MASTER_PORT")
    gpus_per_node: Optional[IntOrEnv] = Field(None,
                                              description="NPROC_PER_NODE (processes per node; CPU processes on a CPU "
                                                          "box)")
    cuda_visible_devices: Optional[str] = None
    device: Literal["cuda", "cpu"] = "cuda"
    gpu: Optional[str] = Field(None,
                               description="The GPU model, for memory estimates (`fakehr-orchestra estimate`; "
                                           "`validate` warns when a stage won't fit): a name from `estimate --help` "
                                           "(e.g. h100-80gb) or NNgib for a GPU with NN GiB. null: not declared.")
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
