"""Batch inference over an eval set, written incrementally and resumable.

The predictions file is append-only jsonl: one row per image, one `write` + flush + fsync per batch. Beside it,
`<out>.meta.json` (written atomically) records the settings and the eval set; a resumed run must ask the same
question of the same model (else it refuses: mixing two settings in one file would make the metrics meaningless).
On resume a torn last line from a kill is cut off, images already answered are skipped, and the rest is appended,
so a finished file has exactly one row per image.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ...answers import parse_answer
from ...io import write_json_atomic
from ..reader import EvalDataError, EvalItem, done_keys, read_meta, repair_tail
from .base import Backend, Generation
from .settings import InferSettings, SettingsError, drift_notes, from_recipe

__all__ = ["InferSettings", "SettingsError", "from_recipe", "drift_notes", "run_inference", "make_backend",
           "meta_path", "InferSummary", "ResumeError", "PredictionsFile", "batches"]

META_VERSION = 1


class ResumeError(ValueError):
    """The output file belongs to another run (other settings, other eval set)."""


@dataclass
class InferSummary:
    total: int
    already_done: int
    written: int
    repaired_bytes: int
    seconds: float


def meta_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".meta.json")


def make_backend(settings: InferSettings) -> Backend:
    if settings.backend == "transformers":
        from .transformers_backend import TransformersBackend
        return TransformersBackend(settings)
    if settings.backend == "vllm":
        from .vllm_backend import VllmBackend
        return VllmBackend(settings)
    raise SettingsError(f"unknown backend {settings.backend!r}; choose transformers or vllm")


def _check_meta(out: Path, settings: InferSettings) -> None:
    meta_file = meta_path(out)
    meta = read_meta(out)
    if meta is not None:
        old = meta.get("fingerprint", {})
        new = json.loads(json.dumps(settings.fingerprint()))
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            raise ResumeError(f"{out} was written with other settings ({', '.join(diff)} differ); "
                              f"use another --out, or delete {out} and {meta_file} to start over")
    elif out.exists() and out.stat().st_size > 0:
        raise ResumeError(f"{out} exists without {meta_file.name}: it was not written by `eval infer`; "
                          f"use another --out")


def _write_meta(out: Path, settings: InferSettings, items: list[EvalItem], data: str) -> None:
    keys = sorted(item.key for item in items)
    write_json_atomic(meta_path(out), {"version": META_VERSION, "data": data, "rows": len(items),
                                  "settings": settings.to_json(), "fingerprint": settings.fingerprint(),
                                  "keys_sha1": _sha1("\n".join(keys))})


def _sha1(text: str) -> str:
    import hashlib
    return hashlib.sha1(text.encode()).hexdigest()


def prediction_row(item: EvalItem, gen: Generation, settings: InferSettings, latency: float,
                   batch_size: int) -> dict[str, Any]:
    parsed = parse_answer(gen.text, settings.answer_format, settings.response_prefix)
    row: dict[str, Any] = {
        "key": item.key, "file_path": item.file_path, "label": item.label, **item.groups,
        "response": gen.text, "pred": parsed.label, "mode": parsed.mode, "well_formed": parsed.well_formed,
        "response_tokens": gen.tokens, "finish_reason": gen.finish_reason,
        "latency_s": round(latency, 6), "batch_size": batch_size,
    }
    if parsed.paired is not None:
        row["paired"] = parsed.paired
    if gen.prob_fake is not None:
        row["prob_fake"] = gen.prob_fake
    if gen.error:
        row["error"] = gen.error
    return row


def batches(items: list[EvalItem], size: int) -> Iterable[list[EvalItem]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class PredictionsFile:
    """One predictions file open for answering: checked against its meta (else ResumeError), a torn last line cut
    off, the meta written, and what is left to answer known (`pending`, in eval-set order). `answer` appends one
    batch. run_inference drives one; a suite drives one per perturbation of a set, batch by batch, so each image is
    decoded once for all of them."""

    def __init__(self, settings: InferSettings, items: list[EvalItem], out: str | Path, data: str = ""):
        self.settings, self.out = settings, Path(out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        _check_meta(self.out, settings)
        repaired = repair_tail(self.out)
        done = done_keys(self.out)
        stray = done - {item.key for item in items}
        if stray:
            raise ResumeError(f"{self.out} has {len(stray)} row(s) for images not in this eval set "
                              f"(e.g. {sorted(stray)[0]}); use another --out")
        _write_meta(self.out, settings, items, data)
        self.pending = [item for item in items if item.key not in done]
        self.pending_keys = {item.key for item in self.pending}
        self.summary = InferSummary(len(items), len(items) - len(self.pending), 0, repaired, 0.0)

    def answer(self, backend: Backend, batch: list[EvalItem], decoded: Optional[Sequence[Any]] = None) -> None:
        """Answer `batch` and append its rows: one write + flush + fsync, so a kill can tear only the last line.
        `decoded`: the batch's images already read (prompting.read_images), else the backend reads them."""
        t0 = time.perf_counter()
        generations = backend.generate(batch) if decoded is None else backend.generate(batch, decoded)
        if len(generations) != len(batch):
            raise RuntimeError(f"backend returned {len(generations)} answers for {len(batch)} images")
        per_image = (time.perf_counter() - t0) / len(batch)
        lines = "".join(json.dumps(prediction_row(item, gen, self.settings, per_image, len(batch)),
                                   ensure_ascii=False) + "\n" for item, gen in zip(batch, generations))
        with self.out.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        self.summary.written += len(batch)
        self.pending_keys.difference_update(item.key for item in batch)


def run_inference(settings: InferSettings, items: list[EvalItem], out: str | Path, data: str = "",
                  backend_factory: Callable[[InferSettings], Backend] = make_backend,
                  progress: Optional[Callable[[int, int], None]] = None) -> InferSummary:
    """Answer every item not yet in `out`; append one batch at a time. Loads the model only if work remains."""
    start = time.perf_counter()
    predictions = PredictionsFile(settings, items, out, data)
    summary = predictions.summary
    if predictions.pending:
        backend = backend_factory(settings)
        for batch in batches(predictions.pending, settings.batch_size):
            predictions.answer(backend, batch)
            if progress:
                progress(summary.already_done + summary.written, summary.total)
    summary.seconds = time.perf_counter() - start
    return summary


# re-exported so callers need one import
EvalDataError = EvalDataError
