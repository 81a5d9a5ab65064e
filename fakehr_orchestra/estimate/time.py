"""How long: optimizer steps from dataset rows, batch sizes, epochs and GPU count; tokens and FLOPs per step.

Rows are counted when the data files are here (jsonl / json lines, parquet metadata), else given with --sft-rows /
--grpo-rows. Token counts are upper bounds (every sample at its longest). Seconds are a lower bound on compute at an
assumed model-FLOPs utilisation (--mfu, stated): 6 x active parameters x tokens per training pass (8 with gradient
checkpointing's recomputation), 2 x for forward-only passes; GRPO's generation is bounded below by reading the
weights once per decoded token at the GPU's memory bandwidth. Neither includes data loading, communication stalls or
checkpointing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .gpus import Gpu
from .memory_grpo import GrpoSettings
from .memory_sft import SftSettings
from .models import ModelSpec


@dataclass
class TimeEstimate:
    rows: int | None
    rows_source: str
    global_batch: int  # samples (SFT) or prompts (GRPO) per optimizer step / training step
    steps_per_epoch: int | None
    total_steps: int | None
    tokens_per_step: int  # upper bound
    flops_per_step: float
    seconds_per_step: float  # lower bound at the stated MFU
    notes: list[str]

    @property
    def hours(self) -> float | None:
        return None if self.total_steps is None else self.total_steps * self.seconds_per_step / 3600


def count_rows(paths: Iterable[str], workdir: Path) -> tuple[int | None, str]:
    """Rows in data files that are here; (None, why) when any is not (a dataset id, a launch-time path)."""
    total = 0
    seen: list[str] = []
    for raw in paths:
        text = str(raw)
        limit = None
        if "#" in text:
            text, _, num = text.rpartition("#")
            limit = int(num) if num.isdigit() else None
        if "${" in text:
            return None, f"{raw} is set at launch"
        path = Path(text) if Path(text).is_absolute() else workdir / text
        if not path.is_file():
            return None, f"{path} is not here"
        n = _rows_in(path)
        if n is None:
            return None, f"{path}: cannot count rows"
        total += min(n, limit) if limit is not None else n
        seen.append(path.name)
    return total, f"counted in {', '.join(seen)}"


def _rows_in(path: Path) -> int | None:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq  # metadata only
            return int(pq.read_metadata(path).num_rows)
        if suffix == ".json":
            with path.open("rb") as fh:
                head = fh.read(1).lstrip()
            if head == b"[":
                data = json.loads(path.read_text(encoding="utf-8"))
                return len(data) if isinstance(data, list) else None
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    except (OSError, ValueError, ImportError):
        return None


def sft_time(spec: ModelSpec, s: SftSettings, extra: dict[str, Any], rows: int | None, rows_source: str,
             tokens_per_sample: int, image_tokens: int, gpu: Gpu, mfu: float) -> TimeEstimate:
    notes = []
    accum = extra.get("grad_accum")
    if accum is None:
        accum = max(1, math.ceil(16 / s.batch / s.world))  # ms-swift: swift/trainers/arguments.py
        notes.append(f"gradient_accumulation_steps not set: ms-swift uses ceil(16 / batch / world) = {accum}")
    global_batch = s.batch * s.world * accum
    steps = total = None
    if rows is not None:
        train_rows = math.floor(rows * (1 - extra.get("split", 0.0)))
        steps = math.ceil(train_rows / global_batch)
        total = math.ceil(steps * extra.get("epochs", 3.0))
    if extra.get("max_steps", -1) > 0:
        total = extra["max_steps"]
        notes.append(f"max_steps {total} caps the run")
    tokens = global_batch * tokens_per_sample
    patches = global_batch * image_tokens * spec.vision.merge ** 2
    p = spec.params()
    train = 8 if s.gradient_checkpointing else 6
    vision_factor = train if not s.freeze_vit else 2
    flops = train * spec.active_llm_params() * tokens + vision_factor * (p.vision + p.aligner) * patches
    seconds = flops / (s.world * gpu.bf16_tflops * 1e12 * mfu)
    return TimeEstimate(rows, rows_source, global_batch, steps, total, tokens, flops, seconds, notes)


def grpo_time(spec: ModelSpec, s: GrpoSettings, extra: dict[str, Any], rows: int | None, rows_source: str,
              image_tokens: int, waves: int, gpu: Gpu, mfu: float) -> TimeEstimate:
    notes = []
    steps = total = None
    if rows is not None:
        steps = rows // s.train_batch_size  # verl's train dataloader drops the last partial batch
        total = steps * int(extra.get("epochs") or 1)
    if extra.get("total_steps"):
        total = extra["total_steps"]
        notes.append(f"trainer.total_training_steps {total} caps the run")
    seqs = s.train_batch_size * s.n
    tokens = seqs * s.seq
    patches = seqs * image_tokens * spec.vision.merge ** 2
    p = spec.params()
    active = spec.active_llm_params()
    train = (8 if s.gradient_checkpointing else 6) * s.ppo_epochs
    forward = 2 * (2 if s.ref_needed else 1)
    flops = (train + forward) * (active * tokens + (p.vision + p.aligner) * patches)
    seconds = flops / (s.world * gpu.bf16_tflops * 1e12 * mfu)
    decode = max(waves, 1) * s.max_response * (2 * active / s.tp) / (gpu.hbm_gbps * 1e9)
    notes.append(f"generation: at least {decode:,.0f} s per step (each decoded token reads the weights / TP once at "
                 f"{gpu.hbm_gbps:,.0f} GB/s; {max(waves, 1)} wave(s) of up to {s.max_response:,} tokens)")
    return TimeEstimate(rows, rows_source, s.train_batch_size, steps, total, tokens, flops, seconds + decode, notes)
