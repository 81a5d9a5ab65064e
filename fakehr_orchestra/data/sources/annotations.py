"""Reasoning annotations attached to a source's images from a side file (`data.sources[].annotations`).

Why: a data set's own layout may carry no text at all (GenImage is folders of images), yet a method's SFT set can
hold a reasoning for some of its images (Fake-HR1 trains on easy images answered with and without thinking; a
FakeVLM-R1 cold-start set may pair only some clues with a counter-proof). The annotations say so per image, in a
jsonl file next to the data, and the data stage records where each explanation came from: nothing is invented.

One row per image:

    {"image": "<path>", "explanation": "<text>"}                     an explanation (Fake-HR1's think form)
    {"image": "<path>", "pairs": [["<why fake>", "<if real>"], ...]}  FakeVLM-R1 pairs; one side may be null: a
                                                                      one-sided clue, written without its marker
    optional "provenance": "<who wrote it>"

Relative image paths resolve against the annotations file's folder. An annotation replaces the source's own
explanation/pairs for that image. A row that names no image of the source, a row without text, a path given twice
or a malformed row is an error naming the row: an annotation that silently attaches to nothing would change what
the model learns without a trace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from .. import DataError
from . import Raw, parse_pairs, resolve_image


@dataclass(frozen=True)
class Annotation:
    explanation: Optional[str]
    pairs: Optional[list[list[Optional[str]]]]
    provenance: Optional[str]
    where: str


def read_annotations(path: Path) -> dict[str, Annotation]:
    """Absolute image path -> its annotation; every problem in the file reported at once."""
    from ...jsonl import read_jsonl

    if not path.is_file():
        raise DataError(f"annotations file {str(path)!r} does not exist (data.sources[].annotations; relative "
                        f"paths resolve against the recipe's workdir)")
    found: dict[str, Annotation] = {}
    problems: list[str] = []
    for line in read_jsonl(path, on_error="collect", unique_keys=True):
        where = line.where
        if line.error is not None or not isinstance(line.value, dict):
            problems.append(f"{where}: {line.error or 'not an object'}")
            continue
        row = line.value
        image = resolve_image(row.get("image"), path.parent)
        if image is None:
            problems.append(f"{where}: no `image` path")
            continue
        image = os.path.normpath(image)
        explanation = row.get("explanation")
        if explanation is not None and not (isinstance(explanation, str) and explanation.strip()):
            problems.append(f"{where}: `explanation` must be a non-empty string")
            continue
        try:
            pairs = parse_pairs(row.get("pairs"), one_sided=True)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if explanation is None and pairs is None:
            problems.append(f"{where}: neither `explanation` nor `pairs`: nothing to attach")
            continue
        if image in found:
            problems.append(f"{where}: {image} is annotated twice (first at {found[image].where})")
            continue
        provenance = row.get("provenance")
        found[image] = Annotation(explanation.strip() if explanation else None, pairs,
                                  provenance if isinstance(provenance, str) else None, where)
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DataError(f"annotations file {path}: {len(problems)} bad row(s):\n  {shown}{more}")
    return found


def annotate(raws: Iterable[Raw], annotations: dict[str, Annotation], path: Path, source: str,
             check_unused: bool = True) -> Iterator[Raw]:
    """The source's raw records, each annotated image given its explanation/pairs (and `extra.annotated_by`).

    When the source is exhausted, rows that attached to no image fail the import (`check_unused`: off when only the
    first records of a source are read)."""
    used: set[str] = set()
    for raw in raws:
        note = annotations.get(os.path.normpath(raw.get("path") or ""))
        if note is not None:
            used.add(os.path.normpath(raw["path"]))
            raw = dict(raw)
            raw["explanation"] = note.explanation
            raw["pairs"] = note.pairs
            extra = dict(raw.get("extra") or {})
            extra["annotated_by"] = path.name if note.provenance is None else f"{path.name} ({note.provenance})"
            raw["extra"] = extra
        yield raw
    unused = [a.where for image, a in annotations.items() if image not in used]
    if check_unused and unused:
        raise DataError(f"annotations file {path}: {len(unused)} row(s) name no image of source {source!r} (first: "
                        f"{', '.join(unused[:3])}); relative paths resolve against the annotations file's folder")


def annotated(raws: Iterable[Raw], annotations_path: Optional[str | Path], source: str,
              check_unused: bool = True) -> Iterable[Raw]:
    if not annotations_path:
        return raws
    path = Path(annotations_path)
    return annotate(raws, read_annotations(path), path, source, check_unused)

