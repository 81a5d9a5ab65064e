"""Plain jsonl, e.g. the seed's eval format {"file_path": ..., "label": "fake"|"real"}, one record per line.

Also read: `image`/`path` instead of `file_path`; `category`; `source` (a row's own source wins over the recipe's
source name, so a re-imported eval set keeps its per-source breakdown); `explanation`; `pairs`
([[why_fake, if_real], ...]); `split` (train|test|val). Relative paths are resolved against `image_root` or the
file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...jsonl import read_jsonl as read_lines
from . import Raw, parse_pairs, resolve_image

_SPLITS = {"train": "train", "test": "test", "val": "test"}


def read_jsonl(path: Path, image_root: str | Path | None) -> Iterator[Raw]:
    root = Path(image_root) if image_root else path.parent
    for line in read_lines(path, on_error="collect", unique_keys=True):
        where, row = line.where, line.value
        if line.error is not None:
            yield {"where": where, "path": None, "label_raw": None, "problem": line.error}
            continue
        value = next((row[k] for k in ("file_path", "image", "path") if k in row), None)
        raw: Raw = {"where": where, "path": resolve_image(value, root), "label_raw": row.get("label"),
                    "category": row.get("category"), "explanation": row.get("explanation") or None}
        if isinstance(row.get("source"), str):
            raw["source"] = row["source"]
        if row.get("split") is not None:
            if row["split"] in _SPLITS:
                raw["split"] = _SPLITS[row["split"]]
            else:
                raw["problem"] = f"split {row['split']!r} is not train/test/val"
        if raw["path"] is None:
            raw["problem"] = "row has no `file_path` (or `image` / `path`)"
        try:
            raw["pairs"] = parse_pairs(row.get("pairs"))
        except ValueError as exc:
            raw["problem"] = str(exc)
        yield raw
