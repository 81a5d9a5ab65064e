"""validate: duplicates by content hash, train/test leakage, label balance, plus what import found (missing,
corrupt, mislabelled) -> a manifest with every record's final status and a machine-readable report.

Duplicates and leaks come from the on-disk record index (index.py: SQLite, so memory stays flat however many
records there are; its docstring states the policy). Records that are not `ok` stay in the manifest and are
skipped by the exports. `Validation` is the report's accumulator, fed one final record at a time: the data stage
feeds it from its single final pass, `validate_manifest` (the `data validate` verb) from its own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..io import atomic_open, write_json_atomic
from .index import RecordIndex, apply_decisions
from .manifest import STATUSES, Record, iter_manifest

EXAMPLES_PER_STATUS = 50  # the report lists the first N problems of each kind (the manifest has them all)
BALANCE_WARN = (0.2, 0.8)  # fake share of a source outside this range is reported as imbalanced


class Validation:
    """Counts, dimensions and examples of final records, turned into the report by `report()`."""

    def __init__(self) -> None:
        self.status_counts = {s: 0 for s in STATUSES}
        self.examples: dict[str, list[dict[str, Any]]] = {}
        self.counts: dict[str, Any] = {}  # source -> split -> label -> n (ok records)
        self.dims: dict[str, list[int]] = {}  # source -> [min_w, min_h, max_w, max_h]

    def add(self, rec: Record) -> None:
        self.status_counts[rec.status] = self.status_counts.get(rec.status, 0) + 1
        if rec.status == "ok":
            by_split = self.counts.setdefault(rec.source, {}).setdefault(rec.split or "train", {})
            label = rec.label or "?"
            by_split[label] = by_split.get(label, 0) + 1
            w, h = rec.width or 0, rec.height or 0
            d = self.dims.get(rec.source)
            if d is None:
                self.dims[rec.source] = [w, h, w, h]
            elif w < d[0] or h < d[1] or w > d[2] or h > d[3]:
                d[:] = [min(d[0], w), min(d[1], h), max(d[2], w), max(d[3], h)]
        elif len(self.examples.setdefault(rec.status, [])) < EXAMPLES_PER_STATUS:
            self.examples[rec.status].append({"id": rec.id, "path": rec.path, "where": rec.where,
                                              "source": rec.source, "reason": rec.reason})

    def report(self) -> dict[str, Any]:
        return _report(self.status_counts, self.counts, self.dims, self.examples)


def validate_manifest(in_path: str | Path, out_path: str | Path, report_path: str | Path | None = None,
                      *, tmp_dir: str | None = None) -> dict[str, Any]:
    """Write the final manifest (statuses set) and, if asked, the json report; return the report.

    Two passes: one fills the record index, one writes. A record with no split counts as train (and is written so)."""
    validation = Validation()
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix=".validate-") as tmp, RecordIndex(tmp) as index:
        for rec in iter_manifest(in_path):
            index.add(rec)
        index.assign_splits(0.0)
        index.flag_copies()
        with atomic_open(out_path) as handle:
            for rec in apply_decisions(iter_manifest(in_path), index.decisions()):
                validation.add(rec)
                handle.write(rec.to_json() + "\n")
    report = validation.report()
    if report_path is not None:
        write_json_atomic(report_path, report)
    return report


def _report(status_counts: dict[str, int], counts: dict[str, Any], dims: dict[str, list[int]],
            examples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    balance = {}
    warnings = []
    for source, splits in sorted(counts.items()):
        fake = sum(s.get("fake", 0) for s in splits.values())
        real = sum(s.get("real", 0) for s in splits.values())
        share = fake / (fake + real) if fake + real else 0.0
        balance[source] = {"fake": fake, "real": real, "fake_share": round(share, 4)}
        if not BALANCE_WARN[0] <= share <= BALANCE_WARN[1]:
            warnings.append(f"source {source!r} is imbalanced: {fake} fake / {real} real")
        for split, labels in splits.items():
            if len(labels) < 2:
                warnings.append(f"source {source!r} split {split!r} has only {', '.join(labels)} images")
    total = sum(status_counts.values())
    problems = total - status_counts.get("ok", 0)
    return {
        "total": total, "ok": status_counts.get("ok", 0), "problems": problems, "status": status_counts,
        "counts": counts, "balance": balance,
        "dimensions": {s: {"min_w": d[0], "min_h": d[1], "max_w": d[2], "max_h": d[3]} for s, d in dims.items()},
        "warnings": warnings, "examples": examples,
        "policy": "missing/corrupt/bad_label/bad_record are skipped; of identical files the first test copy (else "
                  "the first copy) is kept; train copies of a test image are 'leaked' and skipped",
    }


def summary_table(report: dict[str, Any]) -> str:
    """A human summary: per source and split, real/fake counts, then problems by kind with a few examples."""
    lines = [f"{'source':<20} {'split':<6} {'real':>8} {'fake':>8}"]
    for source, splits in sorted(report["counts"].items()):
        for split, labels in sorted(splits.items()):
            lines.append(f"{source:<20} {split:<6} {labels.get('real', 0):>8} {labels.get('fake', 0):>8}")
    lines.append(f"total {report['total']}, ok {report['ok']}, problems {report['problems']}")
    for status, n in report["status"].items():
        if status != "ok" and n:
            lines.append(f"  {status:<10} {n:>7}")
            for ex in report["examples"].get(status, [])[:3]:
                at = f" ({ex['where']})" if ex["where"] and ex["where"] != ex["path"] else ""
                lines.append(f"    {ex['path'] or '-'}{at}: {ex['reason']}")
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)
