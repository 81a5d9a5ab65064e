"""split (the `data split` verb): records without a split of their own go to train or test, stratified by
(source, label), deterministic; the rule and its key are the record index's (index.py).

Two streaming passes over the manifest (fill the index, write); memory holds one batch of index rows. The data
stage does not call this: it splits inside its one index (stage.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..io import atomic_open
from .index import RecordIndex, apply_decisions
from .manifest import iter_manifest


def split_manifest(in_path: str | Path, out_path: str | Path, test_fraction: float, seed: int = 0) -> dict[str, int]:
    """Write `in_path` with splits assigned to `out_path`; return counts of records per split (ok records only)."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    out = Path(out_path)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None, prefix=".split-") as tmp, \
            RecordIndex(tmp, seed) as index:
        for rec in iter_manifest(in_path):
            index.add(rec)
        counts = index.assign_splits(test_fraction)
        with atomic_open(out_path) as handle:
            for rec in apply_decisions(iter_manifest(in_path), index.decisions()):
                handle.write(rec.to_json() + "\n")
    return counts
