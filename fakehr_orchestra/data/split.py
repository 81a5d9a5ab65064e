"""split: records without a split of their own go to train or test, stratified by (source, label), deterministic.

Within each stratum the `round(n * test_fraction)` records with the smallest key blake2b(seed, content hash) go to
test. Keying on the content hash (not the position) means the split does not change when sources are reordered,
and byte-identical copies of an image sort together instead of landing on both sides. Three streaming passes over
the manifest; memory holds only the test keys (test_fraction of the unsplit records), never the records.
"""

from __future__ import annotations

import hashlib
import heapq
from pathlib import Path

from ..io import atomic_open
from .manifest import Record, iter_manifest


def _key(seed: int, rec: Record) -> tuple[int, int]:
    digest = hashlib.blake2b(f"{seed}:{rec.hash or rec.path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big"), rec.id


def _stratum(rec: Record) -> tuple[str, str]:
    return rec.source, rec.label or ""


def split_manifest(in_path: str | Path, out_path: str | Path, test_fraction: float, seed: int = 0) -> dict[str, int]:
    """Write `in_path` with splits assigned to `out_path`; return counts of records per split (ok records only)."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    sizes: dict[tuple[str, str], int] = {}
    for rec in iter_manifest(in_path):
        if rec.ok and rec.split is None:
            sizes[_stratum(rec)] = sizes.get(_stratum(rec), 0) + 1
    want = {s: round(n * test_fraction) for s, n in sizes.items()}
    heaps: dict[tuple[str, str], list[tuple[int, int]]] = {s: [] for s, k in want.items() if k}
    for rec in iter_manifest(in_path):
        s = _stratum(rec)
        if rec.ok and rec.split is None and s in heaps:
            k, heap = want[s], heaps[s]
            neg = tuple(-x for x in _key(seed, rec))  # max-heap of the k smallest keys
            if len(heap) < k:
                heapq.heappush(heap, neg)  # type: ignore[arg-type]
            elif neg > heap[0]:
                heapq.heapreplace(heap, neg)  # type: ignore[arg-type]
    test_ids = {-neg[1] for heap in heaps.values() for neg in heap}
    counts = {"train": 0, "test": 0}
    with atomic_open(out_path) as handle:
        for rec in iter_manifest(in_path):
            if rec.ok and rec.split is None:
                rec.split = "test" if rec.id in test_ids else "train"
            if rec.ok:
                counts[rec.split or "train"] = counts.get(rec.split or "train", 0) + 1
            handle.write(rec.to_json() + "\n")
    return counts
