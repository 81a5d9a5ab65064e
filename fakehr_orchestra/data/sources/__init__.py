"""Readers of the raw data sets. Each yields `Raw` dicts lazily and never touches image bytes (that is the image
checker's job, in parallel): {path, label_raw, category, split, explanation, pairs, where, problem}. A record
that cannot be read yields `problem` (a reason) instead of raising, so one bad line never stops an import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from .. import DataError

Raw = dict[str, Any]


def default_image_root(kind: str, path: Path) -> Path:
    """Where relative image paths resolve when the recipe names no image_root: as the data sets are released.

    FakeClue ships `FakeClue/data_json/{train,test}.json` with images under `FakeClue/train/` and `FakeClue/test/`,
    the paths relative to the split's folder (FakeVLM's scripts pass `--image_folder .../FakeClue/train`): a json in
    a `data_json` folder resolves against the sibling folder of its split (from the file name: train*, test*).
    Anything else resolves against the file's own folder.
    """
    if kind == "fakeclue" and path.parent.name == "data_json":
        stem = path.stem.lower()
        for split in ("train", "test", "val"):
            if stem.startswith(split):
                return path.parent.parent / split
    return path.parent


def read_source(kind: str, path: str | Path, image_root: str | Path | None,
                label_folders: Optional[dict[str, str]] = None, generators: Optional[list[str]] = None,
                exclude_generators: Optional[list[str]] = None) -> Iterator[Raw]:
    """Raw records of one source. `label_folders`: a folders source's declared folder-name -> label map;
    `generators` / `exclude_generators`: which generators a source laid out by generator keeps (selection.py)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data source {str(path)!r} does not exist (check `data.sources[].path`; relative paths "
                        f"are resolved against the recipe's workdir)")
    if kind == "fakeclue":
        from .fakeclue import read_fakeclue
        return read_fakeclue(path, image_root)
    if kind == "genimage":
        from .genimage import read_genimage
        return read_genimage(path, generators, exclude_generators)
    if kind == "folders":
        from .folders import read_folders
        if not label_folders:
            raise DataError(f"{path}: a folders source needs label_folders (e.g. {{0_real: real, 1_fake: fake}}): "
                            f"which folder name means which label is declared, never guessed")
        return read_folders(path, label_folders, generators, exclude_generators)
    if kind == "jsonl":
        from .jsonl import read_jsonl
        return read_jsonl(path, image_root)
    raise DataError(f"unknown source kind {kind!r}; known: fakeclue, genimage, jsonl, folders")


def resolve_image(value: Any, root: Path) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    p = Path(value.strip()).expanduser()
    return str((p if p.is_absolute() else root / p).absolute())


def parse_pairs(value: Any, one_sided: bool = False) -> list[list[Optional[str]]] | None:
    """[[why_fake, if_real], ...] or [{"why_fake": .., "if_real": ..}, ...]; None when absent; ValueError if malformed.

    `one_sided`: a side may be null (a clue written without its counter-proof, or the reverse), never both."""
    if value in (None, []):
        return None
    if not isinstance(value, list):
        raise ValueError("`pairs` must be a list of [why_fake, if_real]")
    out: list[list[Optional[str]]] = []
    for item in value:
        if isinstance(item, dict):
            item = [item.get("why_fake"), item.get("if_real")]
        sides = list(item) if isinstance(item, (list, tuple)) and len(item) == 2 else None
        filled = [isinstance(s, str) and bool(s.strip()) for s in sides or []]
        allowed = sides is not None and (all(filled) or (one_sided and any(filled) and
                                                          all(f or s is None for f, s in zip(filled, sides))))
        if not allowed:
            kind = "[why_fake, if_real] pair of non-empty strings" + (" (one side may be null)" if one_sided else "")
            raise ValueError(f"`pairs` item {item!r} is not a {kind}")
        assert sides is not None
        out.append([s.strip() if isinstance(s, str) else None for s in sides])
    return out
