"""The canonical manifest: one json line per image, whatever data set it came from.

Fields (see `Record`): `id` (position in the import, stable through split/validate), absolute `path`, `label`
real|fake, `label_raw` and `label_convention` (what the source wrote and how it was read), `source` (data set name
from the recipe), `category` (FakeClue `cate` / GenImage generator), `split` train|test|None (None = to be assigned),
`explanation` (free text, optional), `pairs` ([[why_fake, if_real], ...], optional), `width`, `height`, `hash`
(SHA-256 of the file bytes, first 128 bits, hex), `nbytes`, `format`, and `status`
ok|missing|corrupt|bad_label|bad_record|duplicate|leaked with `reason`. Records that are not `ok` stay in the
manifest (so nothing is lost) and are skipped by exports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from ..io import atomic_open

try:  # the manifest is read and written several times per stage: orjson makes those passes ~4x cheaper
    import orjson

    def dumps_line(obj: Any) -> str:
        return orjson.dumps(obj).decode()

    def line_bytes(obj: Any) -> bytes:
        """One jsonl line, newline included, as bytes (what the stage's binary handles write)."""
        return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)

    loads_line = orjson.loads
except ImportError:  # pragma: no cover - orjson is in the `train` extra
    def dumps_line(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False)

    def line_bytes(obj: Any) -> bytes:
        return (json.dumps(obj, ensure_ascii=False) + "\n").encode()

    loads_line = json.loads

STATUSES = ("ok", "missing", "corrupt", "bad_label", "bad_record", "duplicate", "leaked")


@dataclass
class Record:
    id: int
    path: str
    label: Optional[str]
    label_raw: Any
    label_convention: str
    source: str
    category: Optional[str] = None
    split: Optional[str] = None
    explanation: Optional[str] = None
    pairs: Optional[list[list[Optional[str]]]] = None
    width: Optional[int] = None
    height: Optional[int] = None
    hash: Optional[str] = None
    nbytes: Optional[int] = None
    format: Optional[str] = None
    status: str = "ok"
    reason: Optional[str] = None
    where: Optional[str] = None  # where in the source the record was read (file:index), for reports
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        # __dict__, not dataclasses.asdict: asdict deep-copies every field and was the stage's hottest call
        return dumps_line(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        if data.keys() == _FIELDS:  # the manifest's own lines: take the dict as is (5x cheaper than __init__)
            rec = object.__new__(cls)
            rec.__dict__ = data
            return rec
        try:
            return cls(**data)
        except TypeError:
            return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def iter_manifest(path: str | Path) -> Iterator[Record]:
    """Stream records from a manifest file (one json line each).

    The stage reads its manifest in its hot loop, so good lines take a direct path (orjson, no per-row wrapper);
    the first line that is not a record is handed to the one jsonl reader (`jsonl.py`), whose message (file:line,
    not UTF-8 / not JSON / a torn last line) is the error raised."""
    from ..jsonl import BOM, MAX_LINE_BYTES, _lines
    from .image_file import ImageFileError, open_image_file

    try:  # regular files only (a FIFO would hang, /dev/zero never end), lines of bounded length
        handle, _ = open_image_file(str(path), None)
    except ImageFileError:
        _raise_first_problem(path, None)
        raise
    with handle:
        for number, raw in enumerate(_lines(handle, MAX_LINE_BYTES), 1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if raw.isspace():
                continue
            try:
                value = loads_line(raw)
                if type(value) is not dict:
                    raise TypeError(f"expected a JSON object, got {type(value).__name__}")
                rec = Record.from_dict(value)
            except (ValueError, TypeError) as exc:
                _raise_first_problem(path, (number, exc))
            yield rec


def _raise_first_problem(path: str | Path, at: Optional[tuple[int, Exception]]) -> None:
    """Raise DataError for the first bad line, in the shared reader's words (or `at`'s own error)."""
    from ..jsonl import JsonlError, read_jsonl
    from . import DataError

    try:
        for row in read_jsonl(path, on_error="collect"):
            if row.error is not None:
                raise DataError(f"{row.where}: not a manifest record ({row.error})")
            if at is not None and row.line == at[0]:
                break
    except JsonlError as exc:
        raise DataError(str(exc)) from None
    if at is not None:
        raise DataError(f"{path}:{at[0]}: not a manifest record ({at[1]})") from None


def write_manifest(path: str | Path, records: Iterable[Record]) -> int:
    """Write records atomically; returns how many were written."""
    n = 0
    with atomic_open(path) as handle:
        for rec in records:
            handle.write(rec.to_json() + "\n")
            n += 1
    return n


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Bounded chunks of an iterable: the unit of work (and of memory) of every stage."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_FIELDS = frozenset(f.name for f in fields(Record))
