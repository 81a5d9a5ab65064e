"""One streaming pass over the validated manifest writes every export; each file is atomic, and on any error none
of them is left behind (the temp files are removed, earlier versions stay untouched)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from ...io import atomic_open
from ..manifest import Record, chunked, iter_manifest, line_bytes
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


def wired_inputs(model: Any) -> dict[str, str]:
    """The keys of `stage_inputs` the data stage feeds in a pipeline run of this recipe (`run`, `validate`, the
    rehearsal all wire these, and only these).

    The training sets are always the data stage's: making them from the sources is what the pipeline is for.
    `grpo.val_files` is the data stage's test split only when the recipe leaves it unset or names a file in
    `data.workdir` (where the data stage writes, e.g. the shipped `${data.workdir}/grpo_val.parquet`); a val file
    declared anywhere else is a set of the user's own, passed to verl as declared (and checked as declared): replacing
    it would validate one file and train against another."""
    engine = model.grpo.engine if getattr(model, "grpo", None) is not None else "verl"
    wired = dict(stage_inputs(engine))
    if "grpo.val_files" in wired and model.grpo is not None and not _in_workdir(model, model.grpo.val_files):
        del wired["grpo.val_files"]
    return wired


def _in_workdir(model: Any, value: Any) -> bool:
    """True when a path value is unset or every path in it lies in data.workdir (relative ones taken from the
    recipe's workdir, as everywhere else)."""
    if value is None:
        return True
    items = value if isinstance(value, list) else [value]
    base = Path(str(model.workdir)).expanduser()
    workdir = Path(str(model.data.workdir)).expanduser()
    workdir = (workdir if workdir.is_absolute() else base / workdir).resolve() if "${" not in str(workdir) else None

    def inside(text: str) -> bool:
        if "${" in text:  # known only at launch: in data.workdir when written under it (`${data.workdir}/...`)
            return text.startswith(str(model.data.workdir).rstrip("/") + "/")
        p = Path(text).expanduser()
        p = (p if p.is_absolute() else base / p).resolve()
        return workdir is not None and (p == workdir or workdir in p.parents)

    return bool(items) and all(inside(str(i)) for i in items)


class Exporter:
    """The export files of one folder, open together: `add` final records (any status, in id order, a chunk at a
    time), then close. Used by the data stage's single final pass and by `export_manifest`. Every file is atomic: on
    an exception inside the `with`, none is left behind.

    Chunks, binary handles and orjson lines: at GenImage scale the per-record Python here was most of the pass."""

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
        self._targets: dict[str, tuple[Optional[str], str]] = {}
        self._encoded: dict[str, bytes] = {}
        self._lines = swift.RowLines(settings)

    def __enter__(self) -> "Exporter":
        with self._stack as stack:
            self.handles = {n: stack.enter_context(atomic_open(p, "wb")) for n, p in self.paths.items()}
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
            cached = self._targets.get(rec.label or "")
            if cached is None:
                cached = self._targets[rec.label or ""] = sft_target(rec, settings.answer_format,
                                                                     settings.think_fraction, settings.seed)
            return cached
        return sft_target(rec, settings.answer_format, settings.think_fraction, settings.seed)

    def add(self, records: list[Record]) -> None:
        counts = self.counts
        train, test = [], []
        for rec in records:
            if rec.status != "ok":
                counts["skipped_" + rec.status] = counts.get("skipped_" + rec.status, 0) + 1
            elif rec.split == "test":
                test.append(rec)
            else:
                train.append(rec)
        if "eval" in self.handles:
            self._write("eval", [evaljsonl.row(rec) for rec in test])
        if "sft" in self.handles:
            lines = []
            for rec in train:
                target, tag = self._target(rec)
                counts["sft_" + tag] = counts.get("sft_" + tag, 0) + 1
                if rec.extra.get("annotated_by"):  # provenance: the text came from an annotations file
                    key = f"sft_{tag}_annotated_{rec.source}"
                    counts[key] = counts.get(key, 0) + 1
                if target is not None:
                    if "sft" not in self.samples:
                        self.samples["sft"] = swift.sft_row(rec, self.settings, target)
                    encoded = self._encoded.get(target)
                    if encoded is None:
                        encoded = self._lines.value(target)
                        if len(self._encoded) < 1024:  # the no-think targets repeat; explanations do not
                            self._encoded[target] = encoded
                    lines.append(self._lines.sft(rec.path, encoded))
            self._write_lines("sft", lines)
        if "grpo" in self.handles:
            if train and "grpo" not in self.samples:
                self.samples["grpo"] = swift.grpo_row(train[0], self.settings)
            self._write_lines("grpo", [self._lines.grpo(rec.path, rec.label, rec.source) for rec in train])
        for name, part in (("parquet", train), ("val_parquet", test)):
            if name in self.sinks and part:
                self.sinks[name].add(part)
                counts[name] += len(part)

    def _write(self, name: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.counts[name] += len(rows)
            self.samples.setdefault(name, rows[0])
            self.handles[name].write(b"".join([line_bytes(row) for row in rows]))

    def _write_lines(self, name: str, lines: list[bytes]) -> None:
        if lines:
            self.counts[name] += len(lines)
            self.handles[name].write(b"".join(lines))

    def result(self) -> dict[str, Any]:
        """{"paths", "counts", "samples"} after close (picklable: the stage may export in a child process)."""
        for name in PARQUETS:
            if name in self.sinks and self.sinks[name].sample is not None:
                self.samples[name] = self.sinks[name].sample
        return {"paths": self.paths, "counts": self.counts, "samples": self.samples}


def log_result(result: dict[str, Any], log: Callable[[str], None]) -> None:
    """One line per file with its row count, then its first row (image bytes shown as their length)."""
    for name, path in result["paths"].items():
        sample = result["samples"].get(name)
        if name in PARQUETS and sample and "bytes" in sample["images"][0]:
            sample = {**sample, "images": [{"bytes": f"<{len(sample['images'][0]['bytes'])} bytes>"}]}
        log(f"{FILES[name]}: {result['counts'][name]} rows -> {path}")
        log(f"  sample: {json.dumps(sample, ensure_ascii=False, default=str)[:600] if sample else '(no rows)'}")
    extra = {k: v for k, v in result["counts"].items() if k not in FILES}
    if extra:
        log("  " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))


def export_manifest(manifest: str | Path, out_dir: str | Path, settings: ExportSettings,
                    only: Optional[Iterable[str]] = None,
                    log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Write the exports named in `only` (default all of FILES) into out_dir.

    Returns {"paths": {name: abs path}, "counts": {...}, "samples": {name: first row}}.
    Train records feed sft / grpo / parquet; test records feed eval. Records that are not ok are skipped. An image
    whose size changed since the import (data/fingerprint.py) stops the export: its checks no longer hold.
    """
    from ..fingerprint import refuse_changed

    refuse_changed(manifest)
    with Exporter(out_dir, settings, only) as exporter:
        for records in chunked(iter_manifest(manifest), settings.chunk_size):
            exporter.add(records)
    result = exporter.result()
    log_result(result, log)
    return result
