"""Whether the data a finished data stage read is still the data on disk: what `run --resume` and `data export`
decide on.

- Source files (a FakeClue json, a jsonl) by content (sha256, pipeline/artifacts.digest).
- Images by identity: path, size, mtime, ctime and inode from one stat each. Re-hashing every image would cost a
  resume what the import cost (hours at GenImage scale); a stat cannot be fooled by an ordinary replacement, since
  ctime is set by the kernel on every write, rename or copy and cannot be set back (cp -p and rsync -a included).
- `data export` compares each image's size and content hash with what the import recorded (a file truncated or
  replaced since the import) and stops when one differs: the export is a separate step, and it pays that read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable

from . import DataError
from .manifest import iter_manifest


def sources_fingerprint(source_files: Iterable[str | Path], manifest: str | Path) -> str:
    from ..pipeline.artifacts import ArtifactError, digest

    h = hashlib.sha256()
    for path in source_files:
        p = Path(path)
        try:
            h.update(f"file {p} {digest(p) if p.is_file() else 'folder'}\n".encode())
        except (ArtifactError, OSError):
            h.update(f"file {p} missing\n".encode())
    for rec in iter_manifest(manifest):
        if not rec.path:
            continue
        try:
            st = os.stat(rec.path)
            h.update(f"{rec.path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode())
        except OSError:
            h.update(f"{rec.path}\0missing\n".encode("utf-8", "replace"))
    return h.hexdigest()


def stage_sources_fingerprint(model: Any, out_dir: str | Path) -> str:
    """The fingerprint of what the data stage of `model` read, from its manifest in out_dir."""
    from .importer import _abs

    base = Path(model.workdir).absolute()
    return sources_fingerprint([_abs(src.path, base) for src in model.data.sources],
                               Path(out_dir) / "manifest.jsonl")


def changed_since_import(manifest: str | Path, limit: int = 5) -> tuple[int, list[str]]:
    """(how many ok records' images are no longer the bytes the import checked, a few of them described): the size
    first (a stat), then the content hash the import recorded (images.py: SHA-256, first 128 bits), read through
    the bounded reader."""
    from ..bounded import BoundedReadError, read_file

    count, shown = 0, []
    for rec in iter_manifest(manifest):
        if rec.status != "ok" or not rec.path or rec.nbytes is None:
            continue
        try:
            size: Any = os.stat(rec.path).st_size
        except OSError:
            size = "missing"
        why = f"{size} bytes now, {rec.nbytes} at import" if size != rec.nbytes else None
        if why is None and rec.hash:
            try:
                if hashlib.sha256(read_file(rec.path, rec.nbytes)).hexdigest()[:32] != rec.hash:
                    why = "other content, same size"
            except BoundedReadError as exc:
                why = str(exc)
        if why:
            count += 1
            if len(shown) < limit:
                shown.append(f"{rec.path} ({why})")
    return count, shown


def refuse_changed(manifest: str | Path) -> None:
    count, shown = changed_since_import(manifest)
    if count:
        raise DataError(f"{count} image(s) of {manifest} changed since the import (" + "; ".join(shown)
                        + (" ..." if count > len(shown) else "") + "): their checks and hashes no longer hold; "
                        "run the import (data prepare) again")
