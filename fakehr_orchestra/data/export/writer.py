"""One streaming pass over the validated manifest writes every export; each file is atomic, and on any error none
of them is left behind (the temp files are removed, earlier versions stay untouched)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from ...io import atomic_open
from ..manifest import Record, dumps_line, iter_manifest
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


class Exporter:
    """The export files of one folder, open together: `add` each final record (any status, in order), then close.

    Used by the data stage's single final pass and by `export_manifest`. Every file is atomic: on an exception
    inside the `with`, none is left behind."""

    def __init__(self, out_dir: str | Path, settings: ExportSettings, only: Optional[Iterable[str]] = None) -> None:
        names = list(only or FILES)
        unknown = set(names) - set(FILES)
        if unknown:
            raise ValueError(f"unknown export(s) {sorted(unknown)}; known: {', '.join(FILES)}")
        out = Path(out_dir).absolute()
        self.names = names
        self.settings = settings
        self.paths = {name: str(out / FILES[name]) for name in names}
        self.counts: dict[str, int] = {name: 0 for name in names}
        self.samples: dict[str, Any] = {}
        self._stack = contextlib.ExitStack()
        self._targets: dict[tuple[str, Optional[str]], tuple[Optional[str], str]] = {}

    def __enter__(self) -> "Exporter":
        with self._stack as stack:
            self.handles = {n: stack.enter_context(atomic_open(p, "wb" if n in PARQUETS else "w"))
                            for n, p in self.paths.items()}
            self.sinks = {}
            for name in PARQUETS:
                if name in self.handles:
                    self.sinks[name] = verl.ParquetSink(self.handles[name], self.settings)
                    stack.callback(self.sinks[name].close)  # runs before the handle is renamed into place
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> Optional[bool]:
        return self._stack.__exit__(*exc)

    def _target(self, rec: Record) -> tuple[Optional[str], str]:
        settings = self.settings
        if settings.answer_format == "fake_hr1" and not rec.explanation:  # the common case: one text per label
            key = (rec.label or "", None)
            if key not in self._targets:
                self._targets[key] = sft_target(rec, settings.answer_format, settings.think_fraction, settings.seed)
            return self._targets[key]
        return sft_target(rec, settings.answer_format, settings.think_fraction, settings.seed)

    def add(self, rec: Record) -> None:
        counts, handles = self.counts, self.handles
        if rec.status != "ok":
            counts["skipped_" + rec.status] = counts.get("skipped_" + rec.status, 0) + 1
            return
        rows: dict[str, Any] = {}
        if rec.split == "test":
            if "eval" in handles:
                rows["eval"] = evaljsonl.row(rec)
            if "val_parquet" in self.sinks:
                self.sinks["val_parquet"].add(rec)
                counts["val_parquet"] += 1
        else:
            if "sft" in handles:
                target, tag = self._target(rec)
                counts["sft_" + tag] = counts.get("sft_" + tag, 0) + 1
                if target is not None:
                    rows["sft"] = swift.sft_row(rec, self.settings, target)
            if "grpo" in handles:
                rows["grpo"] = swift.grpo_row(rec, self.settings)
            if "parquet" in self.sinks:
                self.sinks["parquet"].add(rec)
                counts["parquet"] += 1
        for name, row in rows.items():
            counts[name] += 1
            if name not in self.samples:
                self.samples[name] = row
            handles[name].write(_line(row))

    def result(self, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """{"paths", "counts", "samples"} after close; logs one line per file with its first row."""
        for name in PARQUETS:
            if name in self.sinks and self.sinks[name].sample is not None:
                self.samples[name] = self.sinks[name].sample
        for name in self.names:
            sample = self.samples.get(name)
            if name in PARQUETS and sample and self.settings.images == "bytes":
                sample = {**sample, "images": [{"bytes": f"<{len(sample['images'][0]['bytes'])} bytes>"}]}
            log(f"{FILES[name]}: {self.counts[name]} rows -> {self.paths[name]}")
            log(f"  sample: {json.dumps(sample, ensure_ascii=False, default=str)[:600] if sample else '(no rows)'}")
        extra = {k: v for k, v in self.counts.items() if k not in FILES}
        if extra:
            log("  " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
        return {"paths": self.paths, "counts": self.counts, "samples": self.samples}


def export_manifest(manifest: str | Path, out_dir: str | Path, settings: ExportSettings,
                    only: Optional[Iterable[str]] = None,
                    log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Write the exports named in `only` (default all of FILES) into out_dir.

    Returns {"paths": {name: abs path}, "counts": {...}, "samples": {name: first row}}.
    Train records feed sft / grpo / parquet; test records feed eval. Records that are not ok are skipped.
    """
    with Exporter(out_dir, settings, only) as exporter:
        for rec in iter_manifest(manifest):
            exporter.add(rec)
    return exporter.result(log)
