"""Label-named folders, as most AI-generated-image benchmarks are released: `<set>/<generator>/<label folder>/<files>`
(CNNDetection / ForenSynths, UniversalFakeDetect, AIGCDetectBenchmark, AIGI-Holmes' `TestSet/<generator>/{0_real,
1_fake}`).

Which folder name means which label is declared by the recipe (`label_folders`, e.g. {0_real: real, 1_fake: fake}),
never read off the name: "0" means real here and fake in FakeClue. The generator (the record's category, as for
GenImage) is the first folder below the set; label folders directly in the set take the set's own name. Folders
between the generator and the label folder (ForenSynths' `progan/airplane/0_real`) are kept as `extra.subfolder`.
A label folder's files are read recursively; files in a folder that is not a declared label folder are read too,
with that folder's name as the raw label, so the normaliser reports them instead of them being dropped silently.
Files and folders are listed in sorted order (reproducible ids); hidden ones are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

from . import Raw


def _entries(path: str) -> tuple[list[str], list[str]]:
    """(sub-folders, files) of `path`, sorted, hidden ones left out."""
    dirs, files = [], []
    with os.scandir(path) as it:
        for e in it:
            if e.name.startswith("."):
                continue
            (dirs if e.is_dir() else files).append(e.name)
    return sorted(dirs), sorted(files)


def _label_dirs(root: str, names: set[str]) -> Iterator[tuple[tuple[str, ...], Optional[str]]]:
    """(folder parts below root, the label folder's name or None) for every folder holding files, in sorted order;
    the folders below a label folder carry its label. File names are not kept (they are listed again when read,
    so a million-image set is never held in memory)."""
    stack: list[tuple[tuple[str, ...], Optional[str]]] = [((), None)]
    while stack:
        parts, label = stack.pop()
        dirs, files = _entries(os.path.join(root, *parts))
        if files:
            yield parts, label
        for name in reversed(dirs):
            stack.append((parts + (name,), label if label is not None else (name if name in names else None)))


def _place(parts: tuple[str, ...], label: Optional[str], root: Path) -> tuple[str, str, str]:
    """(generator, folders between generator and label folder, raw label) of a folder holding files. The generator
    is the first folder below the set, or the set's own name for files directly under a label folder at the top;
    outside any label folder the raw label is the folder's own name (which the normaliser then refuses)."""
    if label is None:
        return (parts[0] if parts else root.name), "", (parts[-1] if parts else root.name)
    at = parts.index(label)
    return (parts[0] if at > 0 else root.name), "/".join(parts[1:at]), label


def read_folders(root: Path, label_folders: dict[str, str], generators: Optional[list[str]] = None,
                 exclude_generators: Optional[list[str]] = None) -> Iterator[Raw]:
    from .. import DataError
    from .selection import check_selection

    if not root.is_dir():
        raise DataError(f"{root}: a folders source is a folder <set>/<generator>/<label folder>/* (label folders "
                        f"declared in label_folders: {', '.join(label_folders)})")
    names = set(label_folders)
    found = list(_label_dirs(str(root), names))
    if not any(label is not None for _, label in found):
        seen = sorted({p for parts, _ in found for p in parts})[:12]
        raise DataError(f"{root}: no folder named {' or '.join(sorted(names))} (the declared label_folders) was "
                        f"found; folders seen: {', '.join(seen) or 'none'}. Check label_folders against the "
                        f"release's folder names")
    places = [(parts, _place(parts, label, root)) for parts, label in found]
    present = list(dict.fromkeys(place[0] for (_, label), (_, place) in zip(found, places) if label is not None))
    keep = check_selection(root, present, generators, exclude_generators)
    for parts, (gen, sub, raw_label) in places:
        if gen not in keep:
            continue
        folder = os.path.join(os.path.abspath(root), *parts)
        prefix = folder + os.sep
        for name in _entries(folder)[1]:
            path = prefix + name
            raw: Raw = {"where": path, "path": path, "label_raw": raw_label, "category": gen}
            if sub:
                raw["extra"] = {"subfolder": sub}
            yield raw
