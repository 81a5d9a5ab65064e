"""The seed's eval format, one line per test image: {"file_path": abs path, "label": real|fake} plus `source` and
`category` for per-generator / per-category metrics. `read_eval` is the reader evaluation uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ...jsonl import read_jsonl
from ...labels import normalize_label
from ..manifest import Record


def row(rec: Record) -> dict[str, Any]:
    return {"file_path": rec.path, "label": rec.label, "source": rec.source, "category": rec.category}


def read_eval(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream eval rows, labels normalised (text convention); raises ValueError naming the line on a bad row."""
    for line in read_jsonl(path, on_error="collect"):
        try:
            if line.error is not None:
                raise ValueError(line.error)
            data = line.value
            yield {**data, "file_path": str(data["file_path"]), "label": normalize_label(data["label"], "text")}
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{line.where}: not an eval row ({type(exc).__name__}: {exc})") from None
