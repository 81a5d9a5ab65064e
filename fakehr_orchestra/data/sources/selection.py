"""Generator selection on sources laid out by generator (GenImage, label-named folders): the cross-generator
protocol trains on one generator and tests on the others, so a recipe names which generators a source keeps.

A named generator the source does not hold is an error listing the ones it does (a typo must not silently select
nothing), and so is a selection that keeps none."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def check_selection(root: Path, present: list[str], include: Optional[list[str]],
                    exclude: Optional[list[str]]) -> set[str]:
    """The generators of `present` to read: those in `include` (all when None) and not in `exclude`."""
    from .. import DataError

    problems = []
    for key, names in (("generators", include), ("exclude_generators", exclude)):
        unknown = [n for n in names or [] if n not in present]
        if unknown:
            problems.append(f"{key}: {', '.join(unknown)} not found under {root}; its generators are: "
                            f"{', '.join(present) or 'none'}")
    if problems:
        raise DataError("; ".join(problems))
    keep = {g for g in present if (include is None or g in include) and g not in (exclude or [])}
    if not keep:
        raise DataError(f"{root}: the generator selection (generators: {include}, exclude_generators: {exclude}) "
                        f"keeps none of its generators ({', '.join(present)})")
    return keep
