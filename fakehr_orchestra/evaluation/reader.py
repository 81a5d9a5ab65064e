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
from typing import Any, Iterator

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
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: not JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                problems.append(f"{where}: expected an object with file_path and label")
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
    except json.JSONDecodeError:
        handle.truncate(start)
        return size - start


def iter_predictions(path: str | Path, strict: bool = True) -> Iterator[dict[str, Any]]:
    """Rows of a predictions file. A torn last line is skipped (it is rewritten on resume); any other broken line
    is an error when `strict`."""
    import msgspec

    decoder = msgspec.json.Decoder()
    path = Path(path)
    with path.open("rb") as handle:
        pending: tuple[int, bytes] | None = None
        for number, raw in enumerate(handle, 1):
            if pending is not None and strict:
                _raise_bad(path, *pending)
            try:
                if raw.strip():
                    yield decoder.decode(raw)
                pending = None
            except msgspec.DecodeError:
                pending = (number, raw)
        # a broken *last* line is the torn tail of an interrupted write: tolerated, not counted


def _raise_bad(path: Path, number: int, raw: bytes) -> None:
    raise EvalDataError([f"{path}:{number}: not a JSON row ({raw[:60]!r}...); the file was edited or corrupted"])


def done_keys(path: str | Path) -> set[str]:
    """Keys already answered in a predictions file (for resume)."""
    if not Path(path).exists():
        return set()
    return {row["key"] for row in iter_predictions(path) if "key" in row}
