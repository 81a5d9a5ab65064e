"""The seed's eval format, one line per test image: {"file_path": abs path, "label": real|fake} plus `source` and
`category` for per-generator / per-category metrics. `read_eval` is the reader evaluation uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ...labels import normalize_label
from ..manifest import Record


def row(rec: Record) -> dict[str, Any]:
    return {"file_path": rec.path, "label": rec.label, "source": rec.source, "category": rec.category}


def read_eval(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream eval rows, labels normalised (text convention); raises ValueError naming the line on a bad row."""
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                yield {**data, "file_path": str(data["file_path"]), "label": normalize_label(data["label"], "text")}
            except (json.JSONDecodeError, KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: not an eval row ({type(exc).__name__}: {exc})") from None
