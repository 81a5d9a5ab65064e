"""The fast way through a predictions file as `eval infer` writes it, for `eval score` over millions of rows.

Each line is decoded by msgspec straight into a struct of the fields the metrics read (the long `response` text
is skipped unless a protocol parses it), and the columns are taken by attribute. Anything this path does not
decide on returns None and `eval score` takes the careful path (the one jsonl reader and the row checks), which
reports the problem as for every other file: a line that is not a JSON object, a torn last line, a row without
`label` or `pred`, a row naming no image (identified by its whole content there).
"""

from __future__ import annotations

from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, Optional

import msgspec

BLOCK_BYTES = 16 << 20  # bytes decoded at a time (a few tens of thousands of rows)


class Prediction(msgspec.Struct):
    key: Any = None
    file_path: Any = None
    image: Any = None
    path: Any = None
    label: Any = msgspec.UNSET
    pred: Any = msgspec.UNSET
    mode: Any = None
    response_tokens: Any = None
    prob_fake: Any = None
    well_formed: Any = None
    paired: Any = None
    error: Any = None
    finish_reason: Any = None
    source: Any = None
    category: Any = None
    generator: Any = None
    parsed_by: Any = msgspec.UNSET


class PredictionWithResponse(Prediction):
    response: Any = None


class NeedsCare(Exception):
    """A row this path does not decide on (no label or pred, names no image): the careful path reads the file."""


class StructChunk:
    """A block of decoded rows, with the access `metrics._add_chunk` uses."""

    def __init__(self, rows: list[Prediction]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def values(self, name: str, default: Any = None) -> list[Any]:
        values = list(map(attrgetter(name), self.rows))
        if name == "parsed_by":
            return [default if v is msgspec.UNSET else v for v in values]
        if name in ("label", "pred") and msgspec.UNSET in values:
            raise NeedsCare(name)
        return values

    def row(self, i: int) -> dict[str, Any]:
        """One row as a dict of the fields read (asked for a row's identity: it must name its image here)."""
        row = self.rows[i]
        if not any(v.__class__ is str and v for v in (row.key, row.file_path, row.image, row.path)):
            raise NeedsCare("identity")  # identified by its whole content, which only the careful path has
        return {k: v for k, v in msgspec.structs.asdict(row).items() if v is not msgspec.UNSET}


def read_chunks(path: str | Path, with_response: bool, add: Callable[[StructChunk, int], None]) -> Optional[int]:
    """Feed every row of `path` to `add(chunk, offset)` a block of bytes at a time (msgspec's JSON-lines decoder,
    blank lines skipped); the number of rows, or None as soon as a block needs the careful path (the caller then
    starts over that way)."""
    decode_lines = msgspec.json.Decoder(PredictionWithResponse if with_response else Prediction).decode_lines
    offset = 0
    rest = b""
    with Path(path).open("rb") as handle:
        while True:
            block = handle.read(BLOCK_BYTES)
            if not block:
                if not rest.strip():
                    return offset
                block, rest = rest, b""  # the last line, without its newline: decoded as it is (a torn one fails)
            else:
                block = rest + block
                cut = block.rfind(b"\n") + 1
                if cut == 0:  # no newline yet: a long line, read on
                    rest = block
                    continue
                block, rest = block[:cut], block[cut:]
            try:
                rows = decode_lines(block)
            except (msgspec.DecodeError, UnicodeDecodeError):
                return None
            try:
                add(StructChunk(rows), offset)
            except NeedsCare:
                return None
            offset += len(rows)
