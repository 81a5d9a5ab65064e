"""FakeClue (FakeVLM): a json list (or jsonl) of {"image": rel path, "label": 0|1 (0 = fake), "cate", "width",
"height", "conversations": [{"from": "human", ...}, {"from": "gpt", "value": "This is a fake image. <why>"}]}.

The explanation is the gpt turn with its leading verdict sentence ("This is a fake image.") removed; the verdict is
kept in `extra.explanation_verdict` so validation can flag an explanation that contradicts the label.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from ...jsonl import BOM, read_jsonl
from . import Raw, parse_pairs, resolve_image

_VERDICT = re.compile(r"^\s*this\s+is\s+an?\s+(real|fake|ai[- ]generated|synthetic|authentic)\s+image\s*[.!:]?\s*",
                      re.IGNORECASE)
_VERDICT_LABEL = {"real": "real", "authentic": "real", "fake": "fake", "synthetic": "fake"}


def split_explanation(text: Any) -> tuple[str | None, str | None]:
    """(verdict real|fake|None, explanation without the verdict sentence)."""
    if not isinstance(text, str) or not text.strip():
        return None, None
    m = _VERDICT.match(text)
    if not m:
        return None, text.strip()
    word = m.group(1).lower()
    verdict = _VERDICT_LABEL.get(word, "fake")  # "ai-generated"
    rest = text[m.end():].strip()
    return verdict, rest or None


MAX_JSON_BYTES = 4 * 2**30  # FakeClue's json is tens of MB; a file past this is not one
DUPLICATE = "\0duplicate keys"  # set on an object that wrote a key twice (no JSON key can hold a NUL from a file)


def _mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            out.setdefault(DUPLICATE, []).append(key)
        out[key] = value
    return out


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    if path.suffix == ".jsonl":
        for row in read_jsonl(path, objects=False, on_error="collect", unique_keys=True):
            yield row.line - 1, row.value if row.error is None else f"line {row.line}: {row.error}"
        return
    # FakeClue ships one json list (~100k entries, a few tens of MB): it is loaded once (through the bounded
    # reader: a regular file, at most MAX_JSON_BYTES), records are then streamed.
    from ...bounded import BoundedReadError, read_file
    try:
        blob = read_file(str(path), MAX_JSON_BYTES)
    except BoundedReadError as exc:
        from .. import DataError
        raise DataError(f"cannot read the FakeClue file: {exc}") from None
    try:
        data = json.loads(blob.removeprefix(BOM).decode("utf-8"), object_pairs_hook=_mark_duplicates)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8
        from .. import DataError
        raise DataError(f"{path}: not valid UTF-8 json ({str(exc)[:200]})") from None
    if not isinstance(data, list):
        from .. import DataError
        raise DataError(f"{path}: a FakeClue file is a json list of records, got {type(data).__name__}")
    yield from enumerate(data)


def read_fakeclue(path: Path, image_root: str | Path | None) -> Iterator[Raw]:
    from . import default_image_root

    root = Path(image_root) if image_root else default_image_root("fakeclue", path)
    for i, rec in _records(path):
        where = f"{path}:{i}"
        if not isinstance(rec, dict):
            yield {"where": where, "problem": f"not a record: {str(rec)[:80]}", "path": None, "label_raw": None}
            continue
        if DUPLICATE in rec or any(isinstance(t, dict) and DUPLICATE in t for t in rec.get("conversations") or []):
            keys = rec.get(DUPLICATE) or ["(in conversations)"]
            yield {"where": where, "problem": f"the key {keys[0]!r} appears twice in one object: which value is "
                                              "meant? keep one", "path": None, "label_raw": None}
            continue
        image = resolve_image(rec.get("image"), root)
        gpt = next((t.get("value") for t in rec.get("conversations") or [] if isinstance(t, dict)
                    and t.get("from") in ("gpt", "assistant")), None)
        verdict, explanation = split_explanation(gpt)
        raw: Raw = {"where": where, "path": image, "label_raw": rec.get("label"), "category": rec.get("cate"),
                    "explanation": explanation, "extra": {"explanation_verdict": verdict} if verdict else {}}
        if image is None:
            raw["problem"] = "record has no `image` path"
        try:
            raw["pairs"] = parse_pairs(rec.get("pairs"))
        except ValueError as exc:
            raw["problem"] = str(exc)
        yield raw
