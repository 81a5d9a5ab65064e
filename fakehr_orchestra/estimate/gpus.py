"""GPUs the estimate knows: memory the process can use, bf16 dense peak and memory bandwidth (for time figures).

`memory_gib` is the capacity PyTorch reports (torch.cuda.get_device_properties().total_memory), which is what
vLLM's gpu_memory_utilization multiplies and what an allocation can reach; it is a little below the marketing size.
Where a public out-of-memory message states it ("GPU 0 has a total capacity of X GiB") that figure is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GIB = 1024 ** 3


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float
    bf16_tflops: float  # dense bf16 tensor-core peak (no sparsity)
    hbm_gbps: float
    note: str = ""

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GIB


GPUS: dict[str, Gpu] = {g.name: g for g in (
    Gpu("h100-80gb", 79.1, 989, 3350, "H100 SXM 80 GB"),
    Gpu("h800-80gb", 79.1, 989, 3350, "H800 SXM 80 GB"),
    Gpu("h200-141gb", 139.8, 989, 4800, "H200 SXM 141 GB"),
    Gpu("h20-96gb", 95.0, 148, 4000, "H20 96 GB"),
    Gpu("a100-80gb", 79.1, 312, 2039, "A100 SXM 80 GB (an OOM message reports 'total capacity of 79.11 GiB')"),
    Gpu("a800-80gb", 79.1, 312, 2039, "A800 80 GB"),
    Gpu("a100-40gb", 39.4, 312, 1555, "A100 40 GB"),
    Gpu("l40s-48gb", 44.4, 362, 864, "L40S 48 GB"),
    Gpu("a6000-48gb", 44.55, 155, 768, "RTX A6000 48 GB ('total capacity of 44.55 GiB', ms-swift issue #2753)"),
    Gpu("rtx4090-24gb", 23.65, 165, 1008, "RTX 4090 24 GB ('total capacity of 23.65 GiB', sglang issue #6082)"),
    Gpu("a10-24gb", 22.0, 125, 600, "A10 24 GB"),
)}

_CUSTOM = re.compile(r"^(\d+(?:\.\d+)?)\s*gib$", re.IGNORECASE)


def lookup(name: str) -> Gpu | None:
    """A known GPU by name (case-insensitive), or 'NNgib' for a GPU of NN GiB usable memory."""
    key = str(name).strip().lower()
    if key in GPUS:
        return GPUS[key]
    m = _CUSTOM.match(key)
    if m:
        return custom(float(m.group(1)))
    return None


def custom(memory_gib: float) -> Gpu:
    """A GPU known only by its memory (time figures use H100 rates, marked as such)."""
    return Gpu(f"{memory_gib:g}gib", float(memory_gib), 989, 3350, "custom size; time figures assume H100 rates")


def names() -> list[str]:
    return sorted(GPUS)
