"""validate: duplicates by content hash, train/test leakage, label balance, plus what import found (missing,
corrupt, mislabelled) -> a manifest with every record's final status and a machine-readable report.

Duplicate and leak detection use an on-disk SQLite index of (id, hash, split), so memory stays flat however many
records there are. Policy (stated in the report): of byte-identical copies, the first test copy is kept and every
train copy of an image that is also in test is `leaked`; otherwise the first copy (lowest id) is kept and the
others are `duplicate`. Records that are not `ok` stay in the manifest and are skipped by the exports.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..io import atomic_open, write_json_atomic
from .manifest import STATUSES, iter_manifest

EXAMPLES_PER_STATUS = 50  # the report lists the first N problems of each kind (the manifest has them all)
BALANCE_WARN = (0.2, 0.8)  # fake share of a source outside this range is reported as imbalanced

_FLAGS = """
WITH t AS (
  SELECT id, split,
         MAX(split = 'test') OVER w AS has_test,
         ROW_NUMBER() OVER (w ORDER BY split != 'test', id) AS rn,
         FIRST_VALUE(id) OVER (w ORDER BY split != 'test', id) AS keep
  FROM recs WINDOW w AS (PARTITION BY hash))
SELECT id, CASE WHEN split != 'test' AND has_test THEN 'leaked' ELSE 'duplicate' END, keep
FROM t WHERE rn > 1 ORDER BY id
"""


def _flags(in_path: str | Path, db_dir: str | None) -> Iterator[tuple[int, str, int]]:
    with tempfile.TemporaryDirectory(dir=db_dir, prefix=".validate-") as tmp:
        con = sqlite3.connect(Path(tmp) / "index.sqlite")
        try:
            con.execute("PRAGMA journal_mode=OFF")
            con.execute("PRAGMA synchronous=OFF")
            con.execute("CREATE TABLE recs (id INTEGER PRIMARY KEY, hash TEXT, split TEXT)")
            batch: list[tuple[int, str, str]] = []
            for rec in iter_manifest(in_path):
                if rec.ok and rec.hash:
                    batch.append((rec.id, rec.hash, rec.split or "train"))
                    if len(batch) >= 10000:
                        con.executemany("INSERT INTO recs VALUES (?, ?, ?)", batch)
                        batch.clear()
            con.executemany("INSERT INTO recs VALUES (?, ?, ?)", batch)
            con.execute("CREATE INDEX by_hash ON recs (hash)")
            yield from con.execute(_FLAGS)
        finally:
            con.close()


def _bump(table: dict[str, Any], *keys: str) -> None:
    for key in keys[:-1]:
        table = table.setdefault(key, {})
    table[keys[-1]] = table.get(keys[-1], 0) + 1


def validate_manifest(in_path: str | Path, out_path: str | Path, report_path: str | Path | None = None,
                      *, tmp_dir: str | None = None) -> dict[str, Any]:
    """Write the final manifest (statuses set) and, if asked, the json report; return the report."""
    status_counts = {s: 0 for s in STATUSES}
    examples: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, Any] = {}  # source -> split -> label -> n (ok records)
    dims: dict[str, list[int]] = {}  # source -> [min_w, min_h, max_w, max_h]
    flags = _flags(in_path, tmp_dir)
    try:
        pending = next(flags, None)
        _write(in_path, out_path, flags, pending, status_counts, examples, counts, dims)
    finally:
        flags.close()
    report = _report(status_counts, counts, dims, examples)
    if report_path is not None:
        write_json_atomic(report_path, report)
    return report


def _write(in_path: str | Path, out_path: str | Path, flags: Iterator[tuple[int, str, int]],
           pending: tuple[int, str, int] | None, status_counts: dict[str, int],
           examples: dict[str, list[dict[str, Any]]], counts: dict[str, Any], dims: dict[str, list[int]]) -> None:
    with atomic_open(out_path) as handle:
        for rec in iter_manifest(in_path):
            while pending is not None and pending[0] < rec.id:
                pending = next(flags, None)
            if pending is not None and pending[0] == rec.id and rec.ok:
                rec.status = pending[1]
                rec.reason = (f"same image bytes as record {pending[2]} in test" if pending[1] == "leaked"
                              else f"same image bytes as record {pending[2]}")
            status_counts[rec.status] = status_counts.get(rec.status, 0) + 1
            if rec.ok:
                _bump(counts, rec.source, rec.split or "train", rec.label or "?")
                d = dims.setdefault(rec.source, [rec.width or 0, rec.height or 0, rec.width or 0, rec.height or 0])
                d[:] = [min(d[0], rec.width or 0), min(d[1], rec.height or 0),
                        max(d[2], rec.width or 0), max(d[3], rec.height or 0)]
            elif len(examples.setdefault(rec.status, [])) < EXAMPLES_PER_STATUS:
                examples[rec.status].append({"id": rec.id, "path": rec.path, "where": rec.where,
                                             "source": rec.source, "reason": rec.reason})
            handle.write(rec.to_json() + "\n")


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
