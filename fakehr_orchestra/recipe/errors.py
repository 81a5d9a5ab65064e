"""Collect-all recipe errors: every problem in a recipe is reported at once, each naming file, line and key path."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe, located as precisely as we know."""

    key: str
    message: str
    file: str | None = None
    line: int | None = None
    hint: str | None = None

    def render(self) -> str:
        where = self.file or "<recipe>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        text = f"{where}: {self.key or '<root>'}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


@dataclass
class RecipeError(Exception):
    """Raised with *all* problems found, never just the first one."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in recipe:"
        return "\n".join([head] + ["  - " + p.render() for p in self.problems])


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate a misspelt key most likely meant, or None when nothing is close."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    match = closest(word, candidates)
    return f"did you mean '{match}'?" if match else None
