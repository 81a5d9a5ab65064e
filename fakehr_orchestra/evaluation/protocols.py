"""Published parsing protocols, reproduced so a run's figures can be set beside a paper's table.

Our own metrics parse strictly (`answers.py`): an answer that is not exactly real/fake is unparseable and counted
wrong. Published tables were computed otherwise, so a number comparable with them needs their parsing, named as such
and reported beside the strict one, never instead of it.

FakeVLM (opendatalab/FakeVLM, `scripts/eval_vllm.py` and `scripts/eval.py`, read at commit fdcdcf1), on the
generated text:

    if 'real' in response.split('.')[0].lower(): real
    elif 'fake' in response.split('.')[0].lower(): fake
    else: the same test on response.split('.')[1] (a response without a '.' has none: IndexError),
          else random.choice([0, 1])   (1 = real, 0 = fake)

So "unrealistic" reads as real (substring), "real" is tested before "fake" (a sentence holding both is real), tags
such as `<answer>Fake</answer>` count as text, and an answer naming neither is a coin flip. `scripts/eval.py`
decodes prompt and answer together and parses the text after the last '?' (to drop the question, which then also
cuts an answer holding a '?'); `eval_vllm.py` parses the generated text alone, and that is the parse reproduced
here. FakeVLM's script draws from
an unseeded global `random`; here the draws come from `random.Random(seed)`, one per guessed row in file order, so
a score is reproducible.
"""

from __future__ import annotations

import random
from typing import Optional

PROTOCOLS = ("fakevlm",)
FAKEVLM_COUNTING = ("FakeVLM's published parsing (scripts/eval_vllm.py): 'real' in the first sentence -> real, "
                    "elif 'fake' -> fake, else the second sentence, else a seeded coin flip; substrings count "
                    "('unrealistic' reads as real)")


def fakevlm_sentence_label(response: str) -> Optional[str]:
    """FakeVLM's deterministic part: 'real' / 'fake' from the first, else the second sentence; None: a coin flip."""
    sentences = response.split(".")
    for sentence in sentences[:2]:
        lowered = sentence.lower()
        if "real" in lowered:
            return "real"
        if "fake" in lowered:
            return "fake"
    return None


class FakeVLMParser:
    """Parses responses one after another as FakeVLM's eval script does; the coin flips come from one seeded
    stream, so the same file and seed give the same figures."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.guessed = 0

    def __call__(self, response: Optional[str]) -> str:
        """The label FakeVLM's script gives `response` (None, for a row without text such as an image error,
        reads as the empty answer: a coin flip)."""
        label = fakevlm_sentence_label(response if isinstance(response, str) else "")
        if label is not None:
            return label
        self.guessed += 1
        return "real" if self._rng.choice([0, 1]) == 1 else "fake"
