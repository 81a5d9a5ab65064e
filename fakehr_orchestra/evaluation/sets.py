"""The test sets of a suite (`eval.sets`) as eval jsonl files: each source is read by the data stage's importer
and image checks, so a benchmark in any released layout is read one way, with the same loss guard.

A set is written once into `<suite>/sets/<name>.jsonl` ({file_path, label, source, category, generator}) beside
its manifest; a later run reuses it while the set's declaration and the data settings that read it are unchanged
(recorded in `<name>.json`), so an interrupted suite resumes without reading the images again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..io import write_json_atomic, write_text_atomic
from .reader import EvalDataError

BY_GENERATOR = ("genimage", "folders")  # layouts whose category is the generator folder


def _declaration(section: Any, data: Any, base: Path) -> dict[str, Any]:
    return {"set": section.model_dump(mode="json"), "base": str(base), "check": data.check,
            "max_loss": data.max_loss, "max_image_mb": data.max_image_mb, "version": 1}


def prepare_set(section: Any, data: Any, base: str | Path, out_dir: str | Path,
                workers: int | None = None) -> tuple[Path, bool]:
    """(the set's eval jsonl, whether it was read now rather than reused). `data`: the recipe's data section
    (image checks, max_loss); relative paths resolve against `base` (the recipe's workdir)."""
    from ..data import DataError
    from ..data.importer import import_sources
    from ..data.manifest import iter_manifest
    from ..recipe.schema.data import SourceSection

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jsonl, stamp, manifest = out / f"{section.name}.jsonl", out / f"{section.name}.json", \
        out / f"{section.name}.manifest.jsonl"
    base = Path(base).absolute()
    declared = _declaration(section, data, base)
    if jsonl.is_file() and stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text())
            if isinstance(recorded, dict) and {k: recorded.get(k) for k in declared} == declared:
                return jsonl, False
        except ValueError:
            pass  # a damaged stamp: read the set again
    fields = section.model_dump(exclude={"split"})
    source = SourceSection(**fields)
    try:
        import_sources([source], manifest, base=base, workers=workers or data.workers, check=data.check,
                       chunk_size=data.chunk_size, max_loss=data.max_loss,
                       max_image_bytes=int(data.max_image_mb * 1024 * 1024))
    except DataError as exc:
        raise EvalDataError([f"eval.sets {section.name!r}: {exc}"]) from None
    rows, dropped = [], {}
    for rec in iter_manifest(manifest):
        if rec.status != "ok":
            dropped[rec.status] = dropped.get(rec.status, 0) + 1
            continue
        if section.split is not None and rec.split != section.split:
            continue
        row = {"file_path": rec.path, "label": rec.label, "source": section.name}
        if rec.category:
            row["generator" if section.kind in BY_GENERATOR else "category"] = rec.category
        rows.append(row)
    if not rows:
        raise EvalDataError([f"eval.sets {section.name!r}: no usable image ({section.kind} at {section.path}"
                             f"{', split ' + section.split if section.split else ''}; not usable: {dropped or 0})"])
    write_text_atomic(jsonl, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_json_atomic(stamp, {**declared, "rows": len(rows), "not_usable": dropped})
    return jsonl, True
