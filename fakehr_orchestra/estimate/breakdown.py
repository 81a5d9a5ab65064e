"""What an estimate is made of: terms (bytes with the formula and the recipe key behind them), phases (the moments
whose terms are alive together: the peak is the largest phase), and the verdict against a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .gpus import GIB, Gpu

Verdict = Literal["fits", "tight", "does not fit"]

# Outside what PyTorch's allocator reports (torch.cuda.max_memory_allocated): the CUDA context, cuBLAS/NCCL
# workspaces (per process on the GPU), and the caching allocator's reserved-but-unallocated blocks. Stand-ins until
# the calibration in docs/estimate.md has measured them; both are stated in every report.
CONTEXT_GIB = 1.0
ALLOCATOR_SLACK = 0.05
TIGHT = 0.90  # above this share of the GPU, the estimate's own error can decide: "tight"


@dataclass(frozen=True)
class Term:
    name: str
    bytes: float
    formula: str  # how it was computed, in words and numbers
    key: str | None = None  # the recipe key that drives it (advice and validate locate findings there)

    @property
    def gib(self) -> float:
        return self.bytes / GIB


@dataclass
class Phase:
    """Memory alive at one moment of a step, in one process (`contexts`: CUDA contexts on this GPU)."""

    name: str
    terms: list[Term]
    contexts: int = 1
    # other processes on the GPU (vLLM's reservation): not scaled by the allocator slack
    outside: list[Term] = field(default_factory=list)

    @property
    def allocated(self) -> float:
        return sum(t.bytes for t in self.terms)

    @property
    def needed(self) -> float:
        """Bytes of GPU memory this phase needs: allocated x (1 + slack) + contexts + other processes."""
        return (self.allocated * (1 + ALLOCATOR_SLACK) + self.contexts * CONTEXT_GIB * GIB
                + sum(t.bytes for t in self.outside))

    def dominant(self) -> Term:
        return max(self.terms + self.outside, key=lambda t: t.bytes)


@dataclass
class StageEstimate:
    stage: str
    gpu: Gpu
    phases: list[Phase]
    assumptions: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # model, world size, tokens, KV cache figures ...
    failures: list[tuple[str, str | None]] = field(default_factory=list)  # (reason, key): fails whatever the peak

    @property
    def peak(self) -> Phase:
        return max(self.phases, key=lambda p: p.needed)

    @property
    def needed(self) -> float:
        return self.peak.needed

    @property
    def verdict(self) -> Verdict:
        if self.failures or self.needed > self.gpu.memory_bytes:
            return "does not fit"
        if self.needed > TIGHT * self.gpu.memory_bytes:
            return "tight"
        return "fits"

    @property
    def fits(self) -> bool:
        return self.verdict != "does not fit"
