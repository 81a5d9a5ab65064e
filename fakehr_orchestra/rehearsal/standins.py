"""Stand-in responses for a rehearsal's scored batch: for each real dataset row, answers a policy could give.

Per row the batch holds `n` responses (verl's rollout.n, so a group-aware reward manager sees whole groups): a
correct one without reasoning, a correct one with reasoning, the wrong label, and an answer nothing can parse, in
that order, repeated to fill `n`. They are written with the one writer of each answer format (answers.py), the way
a well-trained model would answer, so a reward that does not prefer the correct ones is wrong, not the stand-ins.
"""

from __future__ import annotations

from typing import Iterator

from ..answers import fake_hr1_target, fakevlm_r1_target

KINDS = ("correct", "correct_reasoned", "wrong", "unparseable")
UNPARSEABLE = "I cannot tell from this picture."


def other(label: str) -> str:
    return "real" if label == "fake" else "fake"


def answer(kind: str, truth: str, answer_format: str) -> str:
    label = other(truth) if kind == "wrong" else truth
    if kind == "unparseable":
        return UNPARSEABLE
    if answer_format == "fake_hr1":
        reasoning = "The lighting and the texture were compared with what a camera records." \
            if kind == "correct_reasoned" else None
        return fake_hr1_target(label, reasoning)  # type: ignore[arg-type]
    if answer_format == "fakevlm_r1":
        clues = [("The edges of the object are unusually smooth.", "A shallow depth of field also smooths edges.")]
        if kind == "correct_reasoned":
            clues.append(("The shadow falls at an odd angle.", "Two light sources can cast such a shadow."))
        return fakevlm_r1_target(label, clues)  # type: ignore[arg-type]
    raise ValueError(f"unknown answer format {answer_format!r}")


def group(truth: str, answer_format: str, n: int) -> Iterator[tuple[str, str]]:
    """(kind, response) x n for one prompt."""
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        yield kind, answer(kind, truth, answer_format)
