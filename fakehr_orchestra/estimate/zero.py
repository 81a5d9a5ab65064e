"""DeepSpeed's model-state formulas, reproduced exactly, and how ms-swift's --deepspeed presets map onto them.

Source: deepspeedai/DeepSpeed at edaa7221267243c7be7fb49c5d5f5c4fb97b4641 (v0.19.6):
- deepspeed/runtime/zero/stage_1_and_2.py `estimate_zero2_model_states_mem_needs` (fixed by PR #5099, 2024-06-04:
  "2 = params_16bit, 18 = 2_grads_16bit + 4_grads_32bit + 4_params_32bit + 8_optimizer_states_32bit");
- deepspeed/runtime/zero/stage3.py `estimate_zero3_model_states_mem_needs`.
Both return (cpu_bytes, gpu_bytes[, largest_layer_memory]) and count only model states: no activations, logits,
communication buffers or allocator overhead (what users measure above them, see docs/estimate.md).
ms-swift 4.6's presets (swift/config/zero{0,1,2,3}.json, zero2_offload.json, zero3_offload.json) pick the stage and
whether the optimizer (and for ZeRO-3 the parameters) live on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass


def estimate_zero2_model_states_mem_needs(total_params: int, num_gpus_per_node: int = 1, num_nodes: int = 1,
                                          cpu_offload: bool = True,
                                          additional_buffer_factor: float = 1.5) -> tuple[int, int]:
    total_gpus = num_nodes * num_gpus_per_node
    if cpu_offload:
        gpu_mem = 2 * total_params
        cpu_mem = total_params * max(4 * total_gpus, 16) * additional_buffer_factor
    else:
        gpu_mem = 2 * total_params + int(18 * total_params / total_gpus)
        cpu_mem = total_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem)


def estimate_zero3_model_states_mem_needs(total_params: int, largest_layer_params: int, num_gpus_per_node: int = 1,
                                          num_nodes: int = 1, cpu_offload: bool = True,
                                          cpu_offload_params: bool = True, zero_init: bool = True,
                                          additional_buffer_factor: float = 1.5) -> tuple[int, int, int]:
    total_gpus = num_nodes * num_gpus_per_node
    gpus_factor = 1 / num_nodes
    largest_layer_memory = (4 * largest_layer_params)
    if cpu_offload:
        if cpu_offload_params:
            gpu_mem = largest_layer_memory
            if zero_init:
                cpu_mem = total_params * 18 * gpus_factor * additional_buffer_factor
            else:
                cpu_mem = total_params * max(4 * num_gpus_per_node, 18 * gpus_factor) * additional_buffer_factor
        else:
            gpu_mem = largest_layer_memory + int(2 * total_params / total_gpus)
            if zero_init:
                cpu_mem = total_params * 16 * gpus_factor * additional_buffer_factor
            else:
                cpu_mem = total_params * max(4 * num_gpus_per_node, 16 * gpus_factor) * additional_buffer_factor
    else:
        gpu_mem = largest_layer_memory + int(18 * total_params / total_gpus)
        if zero_init:
            cpu_mem = largest_layer_params * 4 * num_gpus_per_node * additional_buffer_factor
        else:
            cpu_mem = total_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem), largest_layer_memory


@dataclass(frozen=True)
class ZeroConfig:
    """What a --deepspeed value means for memory: stage, optimizer on CPU, parameters on CPU (ZeRO-3 only)."""

    stage: int | None  # None: no DeepSpeed (DDP, or one process)
    offload_optimizer: bool = False
    offload_params: bool = False
    reduce_bucket: int = 0  # elements (ZeRO-1/2 reduce_bucket_size + allgather_bucket_size, 16-bit)

    @property
    def label(self) -> str:
        if self.stage is None:
            return "no DeepSpeed"
        off = " + optimizer offload" if self.offload_optimizer else ""
        off += " + parameter offload" if self.offload_params else ""
        return f"ZeRO-{self.stage}{off}"


# swift/config/zero2.json: allgather_bucket_size 2e8, reduce_bucket_size 2e8 (16-bit elements)
_BUCKETS = int(2e8) + int(2e8)
PRESETS: dict[str, ZeroConfig] = {
    "zero0": ZeroConfig(0),
    "zero1": ZeroConfig(1, reduce_bucket=_BUCKETS),
    "zero2": ZeroConfig(2, reduce_bucket=_BUCKETS),
    "zero2_offload": ZeroConfig(2, offload_optimizer=True, reduce_bucket=_BUCKETS),
    "zero3": ZeroConfig(3),
    "zero3_offload": ZeroConfig(3, offload_optimizer=True, offload_params=True),
}


def preset(value: object) -> ZeroConfig | None:
    """The ZeroConfig of a --deepspeed value (None/'' -> no DeepSpeed); None for a json file we cannot read here."""
    if value in (None, "", False, "none", "None"):
        return ZeroConfig(None)
    return PRESETS.get(str(value))


def model_state_bytes(zc: ZeroConfig, trainable: int, frozen: int, largest_layer: int,
                      world: int) -> tuple[float, str]:
    """GPU bytes of weights + gradients + optimizer states per GPU, and the formula used.

    Trainable parameters follow DeepSpeed's formulas (16-bit mixed precision: 2 + 18/N bytes, or its ZeRO-3 form);
    frozen ones are 16-bit weights only, partitioned by ZeRO-3 and replicated otherwise. ZeRO-1 has no estimator in
    DeepSpeed; it is the ZeRO-2 breakdown with the 16-bit gradients unpartitioned (4 + 16/N).
    """
    n = max(world, 1)
    if zc.stage is None:
        raise ValueError("no DeepSpeed: see memory_sft.ddp_states")
    if zc.stage == 0:
        # DeepSpeed without ZeRO wraps a bf16 model in its fp16-style optimizer (engine._do_optimizer_sanity_check ->
        # DDP_BFLOAT16): 16-bit params and grads + fp32 master params, grads and Adam, all unsharded
        return 2 * trainable + 18 * trainable + 2 * frozen, "ZeRO-0: 2 + 18 bytes/trainable param, unsharded"
    if zc.stage == 1:
        return 4 * trainable + 16 * trainable / n + 2 * frozen, "ZeRO-1: 4 + 16/N bytes/trainable param"
    if zc.stage == 2:
        _, gpu = estimate_zero2_model_states_mem_needs(trainable, n, 1, cpu_offload=zc.offload_optimizer)
        return gpu + 2 * frozen, ("DeepSpeed estimate_zero2_model_states_mem_needs "
                                 f"({'offload: 2' if zc.offload_optimizer else '2 + 18/N'} bytes/trainable param)")
    _, gpu, _ = estimate_zero3_model_states_mem_needs(trainable, largest_layer, n, 1, cpu_offload=zc.offload_optimizer,
                                                      cpu_offload_params=zc.offload_params)
    frozen_bytes = 0 if zc.offload_params else 2 * frozen / n
    return gpu + frozen_bytes, "DeepSpeed estimate_zero3_model_states_mem_needs (4 x largest layer + 18/N)"
