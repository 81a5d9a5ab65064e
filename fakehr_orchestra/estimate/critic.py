"""The critic server's GPU share (FakeVLM-R1's judge, `critic.mode: server` on vLLM), beside the training stages.

A `swift deploy --infer_backend vllm` server reserves `gpu_memory_utilization` of each of its
`tensor_parallel_size x data_parallel_size` GPUs; the judge's weights (bf16, split over TP) must fit in that share
with room left for its KV cache. With `node: shared` those GPUs come out of the node that also trains GRPO, so
training GPUs + critic GPUs must not exceed `cluster.gpus_per_node`. Pure arithmetic, like the rest of estimate/.
"""

from __future__ import annotations

from typing import Any

from .gpus import Gpu
from .models import ModelError, resolve

GIB = 2**30
RUNTIME_GIB = 1.5  # CUDA context, vLLM's profiled activations and sampler: a floor, not a fit


def critic_lines(model: Any, gpu: Gpu, training_gpus_per_node: int | None) -> list[str]:
    """What the critic takes (one line each); empty when the recipe has no critic."""
    critic = getattr(model, "critic", None)
    if critic is None or critic.mode == "off":
        return []
    if critic.mode == "external":
        return [f"critic: external at {critic.url}: runs outside these GPUs (not estimated)"]
    server = critic.server
    if server.backend != "vllm":
        return ["critic: served with the transformers backend (CPU or a GPU it is given): no vLLM reservation to "
                "estimate"]
    gpus = server.gpus()
    share = server.gpu_memory_utilization * gpu.memory_gib
    lines = [f"critic: vLLM server on {gpus} GPU(s) (TP {server.tensor_parallel_size} x "
             f"{server.data_parallel_size} replica(s)), reserving {server.gpu_memory_utilization} x "
             f"{gpu.memory_gib:.1f} GiB = {share:.1f} GiB of each"]
    try:
        spec = resolve(server.model, model.workdir)
    except ModelError as exc:
        lines.append(f"critic: weights not sized ({exc})")
    else:
        weights = spec.params().total * 2 / GIB / server.tensor_parallel_size
        room = share - weights - RUNTIME_GIB
        verdict = "fits" if room > 0 else "does not fit"
        lines.append(f"critic: {spec.name} weights {weights:.1f} GiB per GPU (bf16 / TP "
                     f"{server.tensor_parallel_size}) + {RUNTIME_GIB} GiB runtime in {share:.1f} GiB: {verdict}"
                     + (f", {room:.1f} GiB left for its KV cache" if room > 0 else
                        "; raise critic.server.gpu_memory_utilization or tensor_parallel_size"))
    node_gpus = model.cluster.gpus_per_node if isinstance(model.cluster.gpus_per_node, int) else None
    if server.node == "shared" and node_gpus and training_gpus_per_node:
        total = training_gpus_per_node + gpus
        state = "fits" if total <= node_gpus else "does not fit"
        lines.append(f"critic: shares the GRPO node: {training_gpus_per_node} training + {gpus} critic GPUs of "
                     f"{node_gpus} per node: {state}"
                     + ("" if total <= node_gpus else " (lower trainer.n_gpus_per_node or use critic.server.node: own)"))
    return lines
