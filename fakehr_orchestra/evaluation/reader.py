"""Reading the eval set and the predictions file.

The eval set is the seed's jsonl, `{"file_path": ..., "label": "fake"|"real"}` plus optional `source`, `category`,
`generator`. Every bad row is reported (file:line, what, how to fix) before any inference starts.

The predictions file is append-only jsonl written one batch at a time. A kill can leave a torn last line (no
trailing newline, or half a JSON object): `repair_tail` cuts it off before appending, so a resumed run rewrites
that image instead of losing or duplicating it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from ..jsonl import JsonlError, read_jsonl
from ..labels import LabelError, normalize_label

GROUP_KEYS = ("source", "category", "generator")


class EvalDataError(ValueError):
    """The eval set or a predictions file cannot be used as it is; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__("\n  ".join([f"{len(problems)} problem(s):"] + shown) + more)


@dataclass(frozen=True)
class EvalItem:
    """One image to evaluate. `key` identifies it in the predictions file (its path as written in the set)."""

    key: str
    file_path: str
    label: str  # 'real' | 'fake'
    groups: dict[str, str] = field(default_factory=dict)  # source / category / generator when given
    line: int = 0


def read_eval_set(path: str | Path, convention: str = "text", check_files: bool = True) -> list[EvalItem]:
    """All rows of an eval jsonl, validated. Relative file paths are taken relative to the jsonl's folder."""
    path = Path(path)
    if not path.is_file():
        raise EvalDataError([f"{path}: eval set not found (give --data EVAL.jsonl or set eval.dataset)"])
    problems: list[str] = []
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for line in read_jsonl(path, on_error="collect", unique_keys=True):
        number, where, row = line.line, line.where, line.value
        if line.error is not None:
            problems.append(f"{where}: {line.error} (each row is an object with file_path and label)")
            continue
        file_path = row.get("file_path")
        if not isinstance(file_path, str) or not file_path:
            problems.append(f"{where}: missing 'file_path'")
            continue
        try:
            label = normalize_label(row.get("label"), convention)
        except LabelError as exc:
            problems.append(f"{where}: {exc} (set eval.label_convention if the set uses another one)")
            continue
        if file_path in seen:
            problems.append(f"{where}: image {file_path} is listed again (first at line {seen[file_path]}); "
                            f"each image must appear once")
            continue
        seen[file_path] = number
        resolved = file_path if os.path.isabs(file_path) else str(path.parent / file_path)
        if check_files and not os.path.isfile(resolved):
            problems.append(f"{where}: image not found: {resolved}")
            continue
        groups = {k: str(row[k]) for k in GROUP_KEYS if row.get(k) not in (None, "")}
        items.append(EvalItem(file_path, resolved, label, groups, number))
    if problems:
        raise EvalDataError(problems)
    if not items:
        raise EvalDataError([f"{path}: no rows"])
    return items


def read_meta(predictions: str | Path) -> Optional[dict[str, Any]]:
    """The `.meta.json` `eval infer` writes beside a predictions file (None when there is none), checked: a
    corrupt one is an error that says how to recover, never a traceback."""
    meta_file = Path(predictions).with_name(Path(predictions).name + ".meta.json")
    if not meta_file.exists():
        return None
    hint = (f"; it is written by `eval infer`: rerun it with the same --out to rewrite it, or delete {meta_file} "
            f"to score the rows as they are")
    try:
        from ..bounded import read_file

        meta = json.loads(read_file(str(meta_file), 64 * 2**20).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise EvalDataError([f"{meta_file}: unreadable ({type(exc).__name__}: {str(exc)[:120]}){hint}"]) from None
    if not isinstance(meta, dict):
        raise EvalDataError([f"{meta_file}: expected a JSON object, got {type(meta).__name__}{hint}"])
    rows = meta.get("rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
        raise EvalDataError([f"{meta_file}: 'rows' is {rows!r}, not a row count{hint}"])
    for key in ("settings", "fingerprint"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise EvalDataError([f"{meta_file}: {key!r} is not an object{hint}"])
    return meta


def repair_tail(path: str | Path) -> int:
    """Cut a torn last line (written partly when the process was killed). Returns the bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            # complete last line; still check it is valid JSON (a kill between write and newline cannot do
            # this, but a disk-full truncation can)
            return _drop_invalid_last_line(handle, size)
        # find the last newline; everything after it is the torn line
        keep = _last_newline_end(handle, size)
        handle.truncate(keep)
        return size - keep


def _last_newline_end(handle: Any, size: int) -> int:
    chunk = 1 << 16
    pos = size
    while pos > 0:
        start = max(0, pos - chunk)
        handle.seek(start)
        data = handle.read(pos - start)
        idx = data.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0


def _drop_invalid_last_line(handle: Any, size: int) -> int:
    start = _last_newline_end(handle, size - 1)
    handle.seek(start)
    try:
        json.loads(handle.read(size - start))
        return 0
    except ValueError:  # not JSON, or not UTF-8
        handle.truncate(start)
        return size - start


def iter_predictions(path: str | Path, torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Rows of a predictions file. Any broken line is an error naming it.
    With `torn_tail` a bad last line without its newline (the torn tail of an interrupted write, which a resume
    cuts and rewrites) is left out: only where something else says whether the file is complete (its .meta.json
    row count, or `eval infer` resuming).

    A predictions file can hold millions of rows, so they are decoded a block of lines at a time with orjson; the
    first line that does not decode to an object hands over to the one jsonl reader (`jsonl.read_jsonl`), which
    reports it (and tolerates a torn tail) exactly as for every other file."""
    done = [0]  # lines the fast path has yielded the rows of
    try:
        yield from _fast_rows(Path(path), done)
    except _Careful:
        yield from _careful_rows(path, torn_tail, after=done[0])


class _Careful(Exception):
    """A line the fast path does not decide on; the careful reader takes the file from its start."""


BLOCK = 1 << 15  # lines decoded per block


def _fast_rows(path: Path, done: list[int]) -> Iterator[dict[str, Any]]:
    """Rows of a clean file, fast; raises _Careful before yielding anything of a block that needs care, with
    `done[0]` the number of lines whose rows were yielded (the careful reader goes on after them)."""
    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - orjson is in the `data` extra
        raise _Careful() from None
    import itertools

    try:
        handle = path.open("rb")
    except OSError:
        raise _Careful() from None
    with handle:
        first = True
        while True:
            lines = list(itertools.islice(handle, BLOCK))
            if not lines:
                return
            if first and lines[0].startswith(b"\xef\xbb\xbf"):
                raise _Careful()
            first = False
            try:
                rows = [loads(line) for line in lines if line.strip()]
            except ValueError:
                raise _Careful() from None
            if any(row.__class__ is not dict for row in rows):
                raise _Careful()
            yield from rows
            done[0] += len(lines)


def _careful_rows(path: str | Path, torn_tail: bool, after: int = 0) -> Iterator[dict[str, Any]]:
    try:
        for row in read_jsonl(path, tail="skip" if torn_tail else "error", unique_keys=True):
            if row.line > after:
                yield row.value
    except JsonlError as exc:
        raise EvalDataError([f"{problem}; the predictions file was edited or corrupted (rerun `eval infer` with "
                             f"the same --out to repair and finish it)" for problem in exc.problems]) from None


def done_keys(path: str | Path) -> set[str]:
    """Keys already answered in a predictions file (for resume)."""
    if not Path(path).exists():
        return set()
    return {row["key"] for row in iter_predictions(path) if "key" in row}
