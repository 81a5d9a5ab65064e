"""GenImage: <root>/<Generator>/{train,val}/{ai,nature}/<files>; `ai` = fake, `nature` = real (ImageNet).

The release nests one more folder (`stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/train/...`): both layouts are
read, and the category is always the top-level generator folder. `val` is GenImage's held-out set and becomes the
`test` split. Files are listed in sorted order so ids are reproducible; hidden files are ignored. Any folder other
than ai/nature under train/val is read too, so the label normaliser reports it instead of it being dropped silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

from . import Raw

SPLITS = {"train": "train", "val": "test"}


def _is_dir(entry: os.DirEntry) -> bool:
    """Whether an entry is a folder; a symlink that cannot be followed (a loop: ELOOP, no permission) is not one
    (it is then listed as a file, and the image check reports it as unreadable)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _dirs(path: Path) -> list[os.DirEntry]:
    """The visible sub-folders; none when `path` cannot be listed (gone meanwhile, no permission: its files, if
    any, are then simply not found, and the loss guard counts what is missing)."""
    try:
        with os.scandir(path) as it:
            return sorted((e for e in it if _is_dir(e) and not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return []


def _split_dirs(gen: Path) -> list[tuple[str, Path]]:
    direct = [(e.name, Path(e.path)) for e in _dirs(gen) if e.name in SPLITS]
    if direct:
        return direct
    return [(e.name, Path(e.path)) for sub in _dirs(gen) for e in _dirs(Path(sub.path)) if e.name in SPLITS]


def read_genimage(root: Path, generators: Optional[list[str]] = None,
                  exclude_generators: Optional[list[str]] = None) -> Iterator[Raw]:
    """Records of the generators kept by the selection (selection.py; all of them by default)."""
    from .selection import check_selection

    if not root.is_dir():
        from .. import DataError
        raise DataError(f"{root}: a GenImage source is a folder <Generator>/{{train,val}}/{{ai,nature}}")
    gens = _dirs(root)
    keep = check_selection(root, [g.name for g in gens], generators, exclude_generators) \
        if generators is not None or exclude_generators is not None else {g.name for g in gens}
    for gen in gens:
        if gen.name not in keep:
            continue
        for split_name, split_dir in _split_dirs(Path(gen.path)):
            for cls in _dirs(split_dir):
                try:
                    with os.scandir(cls.path) as it:
                        names = sorted(e.name for e in it if not e.name.startswith(".") and not _is_dir(e))
                except OSError as exc:
                    yield {"where": cls.path, "path": None, "label_raw": cls.name, "category": gen.name,
                           "problem": f"cannot list the folder {cls.path}: {exc.strerror or exc}"}
                    continue
                folder = os.path.abspath(cls.path) + os.sep
                for name in names:
                    path = folder + name
                    yield {"where": path, "path": path, "label_raw": cls.name, "category": gen.name,
                           "split": SPLITS[split_name]}
