"""One streaming pass over the validated manifest writes every export; each file is atomic, and on any error none
of them is left behind (the temp files are removed, earlier versions stay untouched)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from ...io import atomic_open
from ..manifest import dumps_line, iter_manifest
from . import evaljsonl, swift, verl
from .settings import ExportSettings
from .targets import sft_target

# val_parquet: the test split for verl's validation set (verl builds it from data.val_files whatever test_freq says)
FILES = {"sft": "sft.jsonl", "grpo": "grpo.jsonl", "parquet": "grpo.parquet", "val_parquet": "grpo_val.parquet",
         "eval": "eval.jsonl"}
PARQUETS = ("parquet", "val_parquet")


def stage_inputs(grpo_engine: str) -> dict[str, str]:
    """Which export feeds which recipe key when the data stage runs before training (the pipeline's wiring, and what
    `validate` checks for a pipeline run): recipe key -> export name (a key of FILES and of artifacts.json)."""
    if grpo_engine == "verl":
        return {"sft.dataset": "sft", "grpo.train_files": "parquet", "grpo.val_files": "val_parquet"}
    return {"sft.dataset": "sft", "grpo.train_files": "grpo"}


def _line(row: dict[str, Any]) -> str:
    return dumps_line(row) + "\n"


def export_manifest(manifest: str | Path, out_dir: str | Path, settings: ExportSettings,
                    only: Optional[Iterable[str]] = None,
                    log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Write the exports named in `only` (default all of FILES) into out_dir.

    Returns {"paths": {name: abs path}, "counts": {...}, "samples": {name: first row}}.
    Train records feed sft / grpo / parquet; test records feed eval. Records that are not ok are skipped.
    """
    names = list(only or FILES)
    unknown = set(names) - set(FILES)
    if unknown:
        raise ValueError(f"unknown export(s) {sorted(unknown)}; known: {', '.join(FILES)}")
    out = Path(out_dir).absolute()
    paths = {name: str(out / FILES[name]) for name in names}
    counts: dict[str, int] = {name: 0 for name in names}
    samples: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        handles = {n: stack.enter_context(atomic_open(p, "wb" if n in PARQUETS else "w")) for n, p in paths.items()}
        sinks = {}
        for name in PARQUETS:
            if name in handles:
                sinks[name] = verl.ParquetSink(handles[name], settings)
                stack.callback(sinks[name].close)  # runs before the handle is renamed into place
        for rec in iter_manifest(manifest):
            if not rec.ok:
                counts["skipped_" + rec.status] = counts.get("skipped_" + rec.status, 0) + 1
                continue
            rows: dict[str, Any] = {}
            if rec.split == "test":
                if "eval" in handles:
                    rows["eval"] = evaljsonl.row(rec)
                if "val_parquet" in sinks:
                    rows["val_parquet"] = verl.row(rec, settings)
            else:
                if "sft" in handles:
                    target, tag = sft_target(rec, settings.answer_format, settings.think_fraction, settings.seed)
                    counts["sft_" + tag] = counts.get("sft_" + tag, 0) + 1
                    if target is not None:
                        rows["sft"] = swift.sft_row(rec, settings, target)
                if "grpo" in handles:
                    rows["grpo"] = swift.grpo_row(rec, settings)
                if "parquet" in sinks:
                    rows["parquet"] = verl.row(rec, settings)
            for name, row in rows.items():
                counts[name] += 1
                samples.setdefault(name, row)
                if name in sinks:
                    sinks[name].add(row)
                else:
                    handles[name].write(_line(row))
    for name in names:
        sample = samples.get(name)
        if name in PARQUETS and sample and settings.images == "bytes":
            sample = {**sample, "images": [{"bytes": f"<{len(sample['images'][0]['bytes'])} bytes>"}]}
        log(f"{FILES[name]}: {counts[name]} rows -> {paths[name]}")
        log(f"  sample: {json.dumps(sample, ensure_ascii=False, default=str)[:600] if sample else '(no rows)'}")
    extra = {k: v for k, v in counts.items() if k not in FILES}
    if extra:
        log("  " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    return {"paths": paths, "counts": counts, "samples": samples}
