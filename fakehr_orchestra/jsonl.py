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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

BOM = b"\xef\xbb\xbf"


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


def _decode(raw: bytes, objects: bool) -> tuple[Any, Optional[str]]:
    value: Any = None
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
    if objects and not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


def read_jsonl(path: str | Path, *, objects: bool = True, on_error: Literal["raise", "collect"] = "raise",
               tail: Literal["error", "skip"] = "error", limit: Optional[int] = None) -> Iterator[Row]:
    """Rows of a jsonl file, in order, with their 1-based line numbers.

    `tail="skip"`: a bad last line without its newline (a torn write) is left out silently — only for files whose
    writer repairs and rewrites that row (the predictions file on resume). Otherwise it is reported with a note
    that the file looks cut off. `limit` stops after that many good rows."""
    path = Path(path)
    name = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise JsonlError([f"{name}: file not found"]) from None
    except IsADirectoryError:
        raise JsonlError([f"{name}: is a folder, not a jsonl file"]) from None
    except OSError as exc:
        raise JsonlError([f"{name}: cannot read ({exc.strerror})"]) from None
    good = 0
    with handle:
        pending: Optional[tuple[int, bytes]] = None
        number = 0
        for raw in handle:
            number += 1
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if pending is not None:  # every line but the last (inline: this loop runs once per row of big files)
                value, error = _decode(pending[1], objects)
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
            value, error = _decode(raw, objects)
            if error is None:
                yield Row(name, line, value)
            elif not (torn and tail == "skip"):
                if torn:
                    error += " — the last line has no newline: the file looks cut off (a writer was killed?)"
                row = Row(name, line, None, error, torn)
                if on_error == "raise":
                    raise JsonlError([f"{row.where}: {error}"])
                yield row


def read_objects(path: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    """Every row of a small jsonl as a list of objects; the first problem raises `JsonlError`."""
    return [row.value for row in read_jsonl(path, objects=True, on_error="raise", **kwargs)]
