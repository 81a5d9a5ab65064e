"""What a backend returns, and the part of answer scoring both backends share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence

from ...answers import parse_answer
from ..reader import EvalItem


@dataclass(frozen=True)
class Generation:
    text: str  # the generated text only (after the prompt and any response prefix)
    tokens: int  # generated tokens, end-of-sequence token excluded
    finish_reason: str  # "stop" (end of sequence) | "length" (max_new_tokens reached) | "error"
    prob_fake: Optional[float] = None  # P(fake) / (P(fake) + P(real)) at the answer position
    error: Optional[str] = None  # the image could not be read: counted wrong, reported


class Backend(Protocol):
    def generate(self, items: list[EvalItem], decoded: Optional[Sequence[Any]] = None) -> list[Generation]:
        """One answer per item. `decoded` (prompting.read_images of the items): the files already decoded, so a
        suite reads each image once for all its perturbations; None: the backend reads them."""
        ...


def answer_split(full_text: str, label: str) -> Optional[tuple[str, str, str]]:
    """(text before the final answer word, that word, the same word for the other label in the same case).

    Used to score P(fake) vs P(real) by teacher forcing both verdicts after the same reasoning: exact whatever the
    tokenizer does at the boundary, and the same for every answer format."""
    matches = list(re.finditer(label, full_text, re.IGNORECASE))
    if not matches:
        return None
    m = matches[-1]
    word = m.group(0)
    other = "real" if label == "fake" else "fake"
    if word.isupper():
        other = other.upper()
    elif word[0].isupper():
        other = other.capitalize()
    return full_text[:m.start()], word, other


def verdict_pairs(texts: list[str], answer_format: str,
                  response_prefix: Optional[str]) -> list[tuple[int, str, str, str]]:
    """For each parseable response: (row, text before the verdict, the 'fake' word, the 'real' word), in the
    response's own casing: what both backends teacher-force to score P(fake). Unparseable rows get no pair."""
    pairs: list[tuple[int, str, str, str]] = []
    for row, text in enumerate(texts):
        parsed = parse_answer(text, answer_format, response_prefix)
        split = answer_split(text, parsed.label) if parsed.label else None
        if split is None:
            continue
        before, word, other = split
        fake_word, real_word = (word, other) if parsed.label == "fake" else (other, word)
        pairs.append((row, before, fake_word, real_word))
    return pairs
