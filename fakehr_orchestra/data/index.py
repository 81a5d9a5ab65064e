"""The stage's one on-disk index of usable records: what splitting and de-duplication need, nothing else.

Why one index: splitting needs, per (source, label) stratum, the records with the smallest keys; de-duplication
needs every record grouped by content hash with its final split. Both are questions over (id, hash, source, label,
split, key), so the import fills one SQLite table as records stream by and the two answers come from SQL. The
manifest itself is then read once more, in id order, next to `decisions()`, to write the final manifest, the
report and every export in a single pass. Memory stays flat (SQLite pages to disk) at any number of records.

Split rule (unchanged from the three-pass version it replaces): within each stratum of ok records that have no
split of their own, the `round(n * test_fraction)` records with the smallest key blake2b(seed:hash) go to test,
ties by id. Keying on the content hash means reordering sources does not move records, and byte-identical copies
sort together instead of landing on both sides.

Duplicate policy: of byte-identical copies the first test copy is kept, and every train copy of an image that is
also in test is `leaked`; otherwise the first copy (lowest id) is kept and the others are `duplicate`. Copies that
disagree on the label (the same bytes called real and fake) are all `bad_label`: one of them is mislabelled, and
keeping either would train on a guess.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Iterator, Optional

from .manifest import Record

BATCH = 8192
_OFFSET = 2**63  # blake2b-64 keys are unsigned; SQLite integers are signed: shift, keeping the order

_FLAGS = """
CREATE TABLE flags AS
WITH copied AS (SELECT hash FROM recs WHERE hash IS NOT NULL GROUP BY hash HAVING COUNT(*) > 1),
conflicted AS (SELECT hash FROM recs WHERE hash IN copied GROUP BY hash HAVING COUNT(DISTINCT label) > 1),
t AS (
  SELECT id, split, hash, label,
         MAX(split = 'test') OVER w AS has_test,
         ROW_NUMBER() OVER (w ORDER BY split != 'test', id) AS rn,
         FIRST_VALUE(id) OVER (w ORDER BY split != 'test', id) AS keep
  FROM recs WHERE hash IN copied WINDOW w AS (PARTITION BY hash))
SELECT id, 'bad_label' AS status,
       (SELECT MIN(r.id) FROM recs r WHERE r.hash = t.hash AND r.label IS NOT t.label) AS keep
FROM t WHERE hash IN conflicted
UNION ALL
SELECT id, CASE WHEN split != 'test' AND has_test THEN 'leaked' ELSE 'duplicate' END AS status, keep
FROM t WHERE rn > 1 AND hash NOT IN conflicted
"""

INDEX_FILE = "index.sqlite"
_DECISIONS = ("SELECT r.id, r.split, f.status, f.keep FROM recs r LEFT JOIN flags f ON f.id = r.id "
              "ORDER BY r.id")
Decision = tuple[int, str, Optional[str], Optional[int]]  # (id, split, duplicate|leaked|None, id of the kept copy)


def split_key(seed: int, rec: Record) -> int:
    digest = hashlib.blake2b(f"{seed}:{rec.hash or rec.path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") - _OFFSET


class RecordIndex:
    """SQLite index of the ok records of one manifest, in a folder the caller removes."""

    def __init__(self, folder: str | Path, seed: int = 0) -> None:
        self.seed = seed
        self.path = str(Path(folder) / INDEX_FILE)
        self.con = sqlite3.connect(self.path)
        # 4 MiB of page cache, sorts spilled to disk: the stage's memory stays flat at any number of records
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", "cache_size=-4096"):
            self.con.execute(f"PRAGMA {pragma}")
        self.con.execute("CREATE TABLE recs (id INTEGER PRIMARY KEY, hash TEXT, source TEXT, label TEXT, "
                         "split TEXT, key INTEGER)")
        self._rows: list[tuple] = []
        self._flagged = False

    def __enter__(self) -> "RecordIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def add(self, rec: Record) -> None:
        """Index `rec` if it is usable (status ok); call in id order."""
        if rec.status == "ok":
            self._rows.append((rec.id, rec.hash, rec.source, rec.label, rec.split, split_key(self.seed, rec)))
            if len(self._rows) >= BATCH:
                self._flush()

    def _flush(self) -> None:
        self.con.executemany("INSERT INTO recs VALUES (?, ?, ?, ?, ?, ?)", self._rows)
        self._rows.clear()

    def assign_splits(self, test_fraction: float) -> dict[str, int]:
        """Give every unsplit record its split; return usable records per split."""
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
        self._flush()
        strata = self.con.execute("SELECT source, label, COUNT(*) FROM recs WHERE split IS NULL "
                                  "GROUP BY source, label").fetchall()
        for source, label, n in strata:
            want = round(n * test_fraction)  # Python's round (half to even), as before
            if want:
                self.con.execute("UPDATE recs SET split = 'test' WHERE id IN (SELECT id FROM recs WHERE split IS "
                                 "NULL AND source IS ? AND label IS ? ORDER BY key, id LIMIT ?)",
                                 (source, label, want))
        self.con.execute("UPDATE recs SET split = 'train' WHERE split IS NULL")
        counts = {"train": 0, "test": 0}
        counts.update(dict(self.con.execute("SELECT split, COUNT(*) FROM recs GROUP BY split").fetchall()))
        return counts

    def flag_copies(self) -> dict[str, int]:
        """Mark duplicate and leaked copies (after `assign_splits`); return how many of each."""
        self._flush()
        self.con.execute(_FLAGS)  # the window runs over copied hashes only: 3x faster than over every record
        self.con.execute("CREATE UNIQUE INDEX flags_id ON flags (id)")
        self._flagged = True
        self.con.commit()  # read_decisions() in another process sees the final table
        return dict(self.con.execute("SELECT status, COUNT(*) FROM flags GROUP BY status").fetchall())

    def decisions(self) -> Iterator[Decision]:
        """(id, split, flag, kept id) of every indexed record, in id order (flag None before `flag_copies`)."""
        self._flush()
        if not self._flagged:  # split only (the `data split` verb)
            yield from self.con.execute("SELECT id, split, NULL, NULL FROM recs ORDER BY id")
            return
        yield from self.con.execute(_DECISIONS)


def read_decisions(path: str) -> Iterator[Decision]:
    """`decisions()` of a finished index (after `flag_copies`), read from another process."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield from con.execute(_DECISIONS)
    finally:
        con.close()


def apply_decisions(records: Iterator[Record], decisions: Iterator[Decision]) -> Iterator[Record]:
    """Records (in id order) with their split and duplicate/leaked status set from the index."""
    pending = next(decisions, None)
    for rec in records:
        while pending is not None and pending[0] < rec.id:
            pending = next(decisions, None)
        if pending is not None and pending[0] == rec.id and rec.status == "ok":
            if rec.split is None:
                rec.split = pending[1]
            if pending[2] is not None:
                rec.status = pending[2]
                rec.reason = (f"same image bytes as record {pending[3]} in test" if pending[2] == "leaked"
                              else f"same image bytes as record {pending[3]}, which is labelled otherwise: one of "
                                   "them is mislabelled (both are left out)" if pending[2] == "bad_label"
                              else f"same image bytes as record {pending[3]}")
        yield rec
