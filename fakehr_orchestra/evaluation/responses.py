"""Scoring responses that `eval infer` did not write: rows from another tool, or the seed's
inference script, that carry a raw `response` and no parse fields (`pred`, `mode`, `well_formed`).

`prepare_rows` turns such rows into the rows `metrics.table_from_rows` reads: the response is parsed with the one
strict parser (`answers.parse_answer`, the format given by `--answer-format`), and labels / groups come from the
seed's eval jsonl (`--data`), joined on the image path, where the rows do not carry them. Nothing is guessed:
a row with neither a parse nor a response, a row whose image is not in the eval set, or a label that disagrees with
the eval set is an error naming the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from .reader import EvalDataError, EvalItem, read_eval_set

IDENTITY_KEYS = ("key", "file_path", "image", "path")  # how a row names its image, in order of preference


def row_key(row: dict[str, Any]) -> Optional[str]:
    """The image a row is about, or None when it names none."""
    for name in IDENTITY_KEYS:
        value = row.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def eval_labels(data: str | Path, convention: str = "text") -> dict[str, EvalItem]:
    """The eval set's rows by image path (as written in the set), read with the eval reader's checks."""
    return {item.key: item for item in read_eval_set(data, convention, check_files=False)}


def prepare_rows(rows: Iterable[dict[str, Any]], answer_format: Optional[str] = None,
                 response_prefix: Optional[str] = None, labels: Optional[dict[str, EvalItem]] = None,
                 data: Optional[str | Path] = None, first: int = 1) -> Iterator[dict[str, Any]]:
    """Rows ready for `table_from_rows` (`labels`: `eval_labels(data)`); see the module docstring. `first`: the
    row number of the first row (for messages)."""
    if answer_format is None and not labels:  # rows as `eval infer` writes them: only checked, row by row
        for number, row in enumerate(rows, first):
            if "pred" not in row or "label" not in row:
                yield from _prepared([row], answer_format, response_prefix, labels, data, number)
            else:
                yield row
        return
    yield from _prepared(rows, answer_format, response_prefix, labels, data, first)


def _prepared(rows: Iterable[dict[str, Any]], answer_format: Optional[str], response_prefix: Optional[str],
              labels: Optional[dict[str, EvalItem]], data: Optional[str | Path], first: int) -> Iterator[dict[str, Any]]:
    from ..answers import parse_answer
    for number, row in enumerate(rows, first):
        where = f"row {number}"
        if "pred" not in row:
            response = row.get("response")
            if not isinstance(response, str):
                raise EvalDataError([f"{where}: neither a parsed answer ('pred') nor a raw 'response' to parse; "
                                     f"score a file written by `eval infer`, or rows with a 'response' text"])
            if answer_format is None:
                raise EvalDataError([f"{where}: the rows carry a raw 'response' but no parse ('pred'); say how to "
                                     f"parse it: --answer-format fake_hr1 or --answer-format fakevlm_r1"])
            parsed = parse_answer(response, answer_format, response_prefix)
            row = {**row, "pred": parsed.label, "mode": parsed.mode, "well_formed": parsed.well_formed,
                   "parsed_by": answer_format}
            if parsed.paired is not None:
                row["paired"] = parsed.paired
        if labels:
            key = row_key(row)
            item = labels.get(key) if key is not None else None
            if item is None:
                raise EvalDataError([f"{where}: image {key!r} is not in the eval set {data} (rows are joined on "
                                     f"{'/'.join(IDENTITY_KEYS)}, written as in the eval set)"])
            if row.get("label") is not None and str(row["label"]).strip().lower() != item.label:
                raise EvalDataError([f"{where}: label {row['label']!r} but the eval set {data} says "
                                     f"{item.label!r} (line {item.line})"])
            row = {**row, "key": key, "label": item.label,
                   **{k: v for k, v in item.groups.items() if row.get(k) in (None, "")}}
        elif "label" not in row:
            raise EvalDataError([f"{where}: no 'label'; pass the eval set with --data EVAL.jsonl to take labels "
                                 f"from it (joined on the image path)"])
        yield row
