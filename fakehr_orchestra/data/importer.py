"""import: every source of a recipe -> one canonical manifest, images checked on all cores as records stream by."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from ..io import atomic_open
from ..labels import LabelError, normalize_label
from .image_file import DEFAULT_MAX_BYTES
from .images import ImageChecker
from .index import RecordIndex
from .manifest import Record, chunked
from .sources import read_source
from .sources.annotations import annotated

_FORCED = {"train": "train", "test": "test", "val": "test"}


def source_records(sources: Iterable[Any], base: Path, start_id: int = 0,
                   limit: Optional[int] = None) -> Iterator[Record]:
    """Records of every source (the first `limit` of each, when given), labels normalised under each source's
    declared convention (never guessed)."""
    next_id = start_id
    for src in sources:
        path = _abs(src.path, base)
        root = _abs(src.image_root, base) if src.image_root else None
        reader = read_source(src.kind, path, root, getattr(src, "label_folders", None),
                             getattr(src, "generators", None), getattr(src, "exclude_generators", None))
        notes = getattr(src, "annotations", None)
        if notes:
            reader = annotated(reader, _abs(notes, base), src.name, check_unused=limit is None)
        for raw in itertools.islice(reader, limit):
            raw = _utf8_only(raw)
            rec = Record(id=next_id, path=raw.get("path") or "", label=None, label_raw=raw.get("label_raw"),
                         label_convention=src.label_convention, source=raw.get("source") or src.name,
                         category=raw.get("category"), split=raw.get("split"),
                         explanation=raw.get("explanation"), pairs=raw.get("pairs"), where=raw.get("where"),
                         extra=dict(raw.get("extra") or {}))
            if src.name != rec.source:
                rec.extra["recipe_source"] = src.name
            next_id += 1
            if src.split:
                rec.split = _FORCED[src.split]
            if raw.get("problem"):
                rec.status, rec.reason = "bad_record", raw["problem"]
            else:
                try:
                    rec.label = normalize_label(rec.label_raw, src.label_convention,
                                                getattr(src, "label_folders", None))
                except LabelError as exc:
                    rec.status, rec.reason = "bad_label", str(exc)
                verdict = rec.extra.get("explanation_verdict")
                if rec.label and verdict and verdict != rec.label:
                    rec.status = "bad_label"
                    rec.reason = (f"label {rec.label_raw!r} read as {rec.label!r} under convention "
                                  f"{src.label_convention!r}, but the explanation says {verdict!r}: is the "
                                  f"convention right?")
            yield rec


def _utf8_text(value: Any) -> tuple[Any, bool]:
    """(value with every string made UTF-8-encodable, whether anything had to change). A file name with bytes
    that are not UTF-8 arrives as lone surrogates (os.fsdecode), so does a JSON "\\ud800": no manifest or export
    could write either."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value, False
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape" if _escaped(value) else "surrogatepass").decode(
                "utf-8", "replace"), True
    if isinstance(value, list):
        items = [_utf8_text(v) for v in value]
        return [v for v, _ in items], any(bad for _, bad in items)
    if isinstance(value, dict):
        pairs = {k: _utf8_text(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(bad for _, bad in pairs.values())
    return value, False


def _escaped(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def _utf8_only(raw: dict[str, Any]) -> dict[str, Any]:
    cleaned, bad = _utf8_text(raw)
    if bad and not cleaned.get("problem"):
        cleaned["problem"] = ("holds text that is not UTF-8 (a file name with non-UTF-8 bytes, or a lone surrogate "
                              "escape in the JSON); rename the file / fix the text (shown with \ufffd)")
    return cleaned


def _abs(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return (p if p.is_absolute() else base / p).absolute()


def apply_check(rec: Record, check: dict[str, Any]) -> Record:
    for key in ("width", "height", "hash", "nbytes", "format"):
        if check.get(key) is not None:
            setattr(rec, key, check[key])
    if rec.status == "ok" and check["status"] != "ok":
        rec.status, rec.reason = check["status"], check["reason"]
    return rec


def progress(total: Optional[int], desc: str, enabled: bool) -> Any:
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, mininterval=0.5,
                dynamic_ncols=True)


def import_sources(sources: Iterable[Any], out_path: str | Path, *, base: str | Path = ".",
                   workers: Optional[int] = None, check: str = "header", chunk_size: int = 1024,
                   show_progress: bool = False, limit: Optional[int] = None, max_loss: float = 0.01,
                   max_image_bytes: Optional[int] = DEFAULT_MAX_BYTES,
                   index: Optional[RecordIndex] = None) -> dict[str, int]:
    """Write the manifest of all `sources` to `out_path` (atomically); return counts per status.

    A source with no records, or losing more than `max_loss` of them to missing / corrupt images, is a DataError
    (loss_guard.py) and no manifest is written. `index` (the data stage's) is filled as records are written."""
    from . import loss_guard
    from .sources import default_image_root

    sources = list(sources)
    tallies = {}
    for src in sources:
        path = _abs(src.path, Path(base))
        root = _abs(src.image_root, Path(base)) if src.image_root else default_image_root(src.kind, path)
        by_folder = src.kind in ("genimage", "folders")  # images found in folders: no image root to blame
        tallies[src.name] = loss_guard.SourceTally(src.name, src.kind, path, None if by_folder else root)
    counts: dict[str, int] = {}
    records = source_records(sources, Path(base), limit=limit)
    with ImageChecker(workers, check, max_bytes=max_image_bytes) as checker, atomic_open(out_path) as handle, \
            progress(None, "import+check", show_progress) as bar:
        for chunk, checks in checker.check_stream(chunked(records, chunk_size), path_of=lambda r: r.path or ""):
            for rec, chk in zip(chunk, checks):
                if rec.status == "bad_record" and not rec.path:
                    pass
                else:
                    apply_check(rec, chk)
                counts[rec.status] = counts.get(rec.status, 0) + 1
                tallies[loss_guard.tally_key(rec)].add(rec.status, rec.path, rec.reason)
                handle.write(rec.to_json() + "\n")
                if index is not None:
                    index.add(rec)
            bar.update(len(chunk))
        loss_guard.check(list(tallies.values()), max_loss)  # raising here leaves no manifest behind
    return counts
