"""The one JSON-lines reader: every jsonl the tool reads (sources, manifests, eval sets, predictions, reward
responses, preflight samples) goes through `read_jsonl`, so every reader has the same error model.

What it handles, once:
- a UTF-8 byte-order mark at the start of the file (Windows editors write one; it used to cost the first row);
- bytes that are not UTF-8: that line is a problem "not UTF-8 at byte N", never a UnicodeDecodeError traceback;
- blank lines (skipped), lines that are not JSON, rows that are not objects (when `objects=True`);
- a torn or invalid *last* line (a writer killed mid-line): reported as such, and tolerated only when the caller
  says so (`tail="skip"`, for an append-only file a resume rewrites) — by default it is an error like any other.

Every problem names `file:line`. A reader chooses what a problem is: `on_error="raise"` stops at the first one
with a `JsonlError`; `"collect"` yields a `Row` whose `error` is set, so the caller can list every problem at once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

BOM = b"\xef\xbb\xbf"
# No row of ours comes near this; a longer line is not parsed (a 200 MB line could take the JSON parser down with
# the process under a memory limit) and is reported instead. Its bytes are skipped in chunks, never held whole.
MAX_LINE_BYTES = 32 * 2**20
_TOO_LONG = b"\0too long\0"  # a marker no real line can equal (a raw NUL is never valid JSON)


def _lines(handle: Any, cap: int) -> Iterator[bytes]:
    """The file's lines, each at most `cap` bytes; a longer one is yielded as _TOO_LONG (plus its newline if it
    had one, so a torn last line is still told apart)."""
    while True:
        raw = handle.readline(cap + 1)
        if not raw:
            return
        if len(raw) > cap and not raw.endswith(b"\n"):
            ended = False
            while True:
                rest = handle.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    ended = bool(rest)
                    break
            yield _TOO_LONG + (b"\n" if ended else b"")
            continue
        yield raw


class JsonlError(ValueError):
    """A jsonl file cannot be read as it is; the message names file:line and what is wrong."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(problems[0] if len(problems) == 1 else
                         "\n  ".join([f"{len(problems)} problem(s):"] + shown) + more)


@dataclass(frozen=True)
class Row:
    """One non-blank line. `value` is the decoded JSON (None when `error` is set); `torn` marks a bad last line
    with no trailing newline (the signature of a killed writer)."""

    path: str
    line: int
    value: Any
    error: Optional[str] = None
    torn: bool = False

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


try:  # manifests are read several times per stage: orjson is ~4x cheaper; json.loads explains its failures
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is in the `train` extra
    _fast_loads = None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    """Whether decoded JSON holds a lone surrogate ("\\udcff" written as an escape): valid JSON text, but no UTF-8
    file (a manifest, metrics, an export) can hold it, so the row is refused here, where the line is known."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return False
        except UnicodeEncodeError:
            return True
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def _checked(raw: bytes, value: Any, objects: bool) -> tuple[Any, Optional[str]]:
    if _SURROGATE_ESCAPE.search(raw) and _lone_surrogate(value):
        return None, "holds a lone surrogate escape (\\udXXX): text that is not Unicode; fix the writer"
    if objects and not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _decode_unique(raw: bytes, objects: bool) -> tuple[Any, Optional[str]]:
    """As _decode, and a key written twice in one object is an error (JSON parsers keep the last silently, so
    `{"label": "real", "label": "fake"}` would import as fake with no word; YAML recipes refuse the same)."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return None, f"the key {exc.args[0]!r} appears twice in one object: which value is meant? keep one"
    except (ValueError, RecursionError):
        return _decode(raw, objects)  # the plain path explains what is wrong
    return _checked(raw, value, objects)


def _decode(raw: bytes, objects: bool) -> tuple[Any, Optional[str]]:
    value: Any = None
    if raw.startswith(_TOO_LONG):
        return None, f"the line is longer than {MAX_LINE_BYTES // 2**20} MiB: not read (no row is that long)"
    if _fast_loads is not None:
        try:
            value = _fast_loads(raw)
        except ValueError:
            value = None
        else:
            if objects and not isinstance(value, dict):
                return None, f"expected a JSON object, got {type(value).__name__}"
            return value, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start + 1} of the line is 0x{raw[exc.start]:02x}); re-save the file as UTF-8"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "not JSON (nested too deeply)"
    return _checked(raw, value, objects)


def read_jsonl(path: str | Path, *, objects: bool = True, on_error: Literal["raise", "collect"] = "raise",
               tail: Literal["error", "skip"] = "error", limit: Optional[int] = None,
               unique_keys: bool = False) -> Iterator[Row]:
    """Rows of a jsonl file, in order, with their 1-based line numbers.

    `tail="skip"`: a bad last line without its newline (a torn write) is left out silently — only for files whose
    writer repairs and rewrites that row (the predictions file on resume). Otherwise it is reported with a note
    that the file looks cut off. `limit` stops after that many good rows. `unique_keys`: a key written twice in an
    object is an error for its line (for files people write: sources, eval sets, responses; our own manifests are
    read the fast way)."""
    decode = _decode_unique if unique_keys else _decode
    path = Path(path)
    name = str(path)
    from .data.image_file import ImageFileError, open_image_file

    try:  # regular files only, opened without blocking: a FIFO would hang here, /dev/zero never end
        handle, _ = open_image_file(name, None)
    except ImageFileError as exc:
        reason = exc.reason.replace("is a directory", "is a folder, not a jsonl file")
        raise JsonlError([f"{name}: {reason}"]) from None
    good = 0
    with handle:
        pending: Optional[tuple[int, bytes]] = None
        number = 0
        for raw in _lines(handle, MAX_LINE_BYTES):
            number += 1
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if pending is not None:  # every line but the last (inline: this loop runs once per row of big files)
                value, error = decode(pending[1], objects)
                if error is not None and on_error == "raise":
                    raise JsonlError([f"{name}:{pending[0]}: {error}"])
                yield Row(name, pending[0], value, error)
                good += 1
                if limit is not None and good >= limit:
                    return
            pending = (number, raw) if raw.strip() else None
        if pending is not None:
            line, raw = pending
            torn = not raw.endswith(b"\n")
            value, error = decode(raw, objects)
            if error is None:
                yield Row(name, line, value)
            elif not (torn and tail == "skip"):
                if torn:
                    error += " — the last line has no newline: the file looks cut off (a writer was killed?)"
                row = Row(name, line, None, error, torn)
                if on_error == "raise":
                    raise JsonlError([f"{row.where}: {error}"])
                yield row

