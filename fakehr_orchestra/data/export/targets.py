"""Assistant targets for SFT, built with the one writer of each answer format (`fakehr_orchestra.answers`).

Fake-HR1: a record with an explanation is rendered in think form (`<think>\\n<explanation>\\n</think>\\n\\nfake`) with
probability `think_fraction` (a deterministic draw keyed on the image hash and the split seed); every other record
gets the no-think form `<think>\\n\\n</think>\\n\\nfake`. The explanation is the source's text (FakeClue's gpt turn
without its leading "This is a fake image." sentence); nothing is invented.

FakeVLM-R1: its SFT data pairs each artifact clue with a forgery hypothesis `[Why fake]` and an authenticity
counter-proof `[If real]`. FakeClue has no such pairs. A record that carries `pairs` (jsonl `pairs` field) uses them
verbatim. Otherwise pairs are DERIVED from the explanation, one per sentence (at most MAX_PAIRS), and the side the
data set does not provide is a fixed, generic sentence, not reasoning about the image:
  fake image:  [Why fake] <explanation sentence>   [If real] PLACEHOLDER_IF_REAL
  real image:  [Why fake] PLACEHOLDER_WHY_FAKE      [If real] <explanation sentence>
The row's provenance is recorded (`pairs: given|derived`) in the export counts. A record with neither pairs nor an
explanation gets no FakeVLM-R1 SFT row (an empty think block would teach the model not to reason); it is counted
as `skipped_no_reasoning` and still goes to GRPO and eval, which need only the label.
"""

from __future__ import annotations

import hashlib
import re
from typing import Optional

from ...answers import fake_hr1_target, fakevlm_r1_target
from ..manifest import Record

MAX_PAIRS = 6
PLACEHOLDER_IF_REAL = "A real photograph would need a physical cause for this, and none is visible."
PLACEHOLDER_WHY_FAKE = "A generator could imitate this cue, so it is checked against physical evidence."
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _draw(seed: int, rec: Record) -> float:
    digest = hashlib.blake2b(f"think:{seed}:{rec.hash or rec.path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def derive_pairs(label: str, explanation: str) -> list[tuple[str, str]]:
    sentences = [s.strip() for s in _SENTENCE.split(explanation.strip()) if s.strip()][:MAX_PAIRS]
    if label == "fake":
        return [(s, PLACEHOLDER_IF_REAL) for s in sentences]
    return [(PLACEHOLDER_WHY_FAKE, s) for s in sentences]


def sft_target(rec: Record, answer_format: str, think_fraction: float, seed: int) -> tuple[Optional[str], str]:
    """(assistant text or None when no honest target exists, provenance tag for the counts)."""
    label = rec.label
    assert label in ("real", "fake"), rec
    if answer_format == "fake_hr1":
        if rec.explanation and _draw(seed, rec) < think_fraction:
            return fake_hr1_target(label, rec.explanation), "think"
        return fake_hr1_target(label, None), "no_think"
    if answer_format == "fakevlm_r1":
        if rec.pairs:
            one_sided = any(a is None or b is None for a, b in rec.pairs)
            return (fakevlm_r1_target(label, [(a, b) for a, b in rec.pairs]),
                    "pairs_one_sided" if one_sided else "pairs_given")
        if rec.explanation:
            return fakevlm_r1_target(label, derive_pairs(label, rec.explanation)), "pairs_derived"
        return None, "skipped_no_reasoning"
    raise ValueError(f"unknown answer format {answer_format!r}")
