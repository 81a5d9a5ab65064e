"""The answer formats of the two methods: how targets are written (here) and parsed (the one strict parser).

Fake-HR1:   no-think  "<think>\\n\\n</think>\\n\\nreal"      think  "<think>\\n<reasoning>\\n</think>\\n\\nfake"
FakeVLM-R1: "<think>[Why fake] ... [If real] ...</think>\\n<answer>Fake</answer>"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional

Label = Literal["real", "fake"]


def fake_hr1_target(label: Label, reasoning: str | None = None) -> str:
    """Empty or missing reasoning gives the no-think form the SFT system prompt asks for on easy images."""
    reasoning = (reasoning or "").strip()
    if not reasoning:
        return f"<think>\n\n</think>\n\n{label}"
    return f"<think>\n{reasoning}\n</think>\n\n{label}"


def fakevlm_r1_target(label: Label, pairs: list[tuple[Optional[str], Optional[str]]]) -> str:
    """One [Why fake] / [If real] pair per artifact clue, then the verdict capitalised as the paper writes it. A
    side given as None (a one-sided clue of an annotated set) is left out with its marker, so the reward's pairing
    check sees it as unpaired."""
    body = "\n".join("\n".join(f"{marker} {text.strip()}" for marker, text in (("[Why fake]", why), ("[If real]", if_real))
                               if text is not None) for why, if_real in pairs)
    return f"<think>\n{body}\n</think>\n<answer>{label.capitalize()}</answer>"


# ------------------------------------------------------------------------------------------------ parsing
# Parsing is procedural (str.find / rpartition / one-star regexes): every step is linear in the response length, so
# a huge or adversarial response (a reward sees whatever the policy emits) cannot stall a training step. Labels are
# ASCII only: the Kelvin sign lower-cases to "k", and "FA\u212aE" must not read as "fake".
Mode = Literal["think", "no_think"]
FORMATS = ("fake_hr1", "fakevlm_r1")
LABELS = ("real", "fake")
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
_FAKEVLM_LAYOUT = re.compile(r"^\s*<think>(?:(?!</?think>).)*</think>\s*<answer>\s*(?:real|fake)\s*</answer>\s*$",
                             re.DOTALL | re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class ParsedAnswer:
    """What a response says. `label` is None when the final answer is not exactly one of real/fake: such an
    answer is wrong, and is counted as unparseable, never guessed."""

    label: Label | None
    mode: Mode | None  # think / no_think; None when there is no single think block
    reasoning: str  # the think block's content, stripped ('' when empty or absent)
    well_formed: bool  # the exact layout the method's prompt asks for
    think_blocks: int
    paired: bool | None = None  # FakeVLM-R1: the reasoning is fully paired (`pairing` = 1.0); None for Fake-HR1


def _label_of(text: str) -> Label | None:
    """The whole of `text` is one label: real|fake in any ASCII case, surrounding whitespace, one optional '.'."""
    word = text.strip()
    if word.endswith("."):
        word = word[:-1].rstrip()
    if len(word) != 4 or not word.isascii():
        return None
    word = word.lower()
    return word if word in LABELS else None  # type: ignore[return-value]


def _with_prefix(text: str, prefix: str | None) -> str:
    """Put back a response prefix that generation started after (and was therefore not part of the output)."""
    text = text if isinstance(text, str) else ""
    if prefix and not text.lstrip().startswith(prefix.strip()):
        return prefix + text
    return text


def _think_parts(text: str) -> tuple[int, str, str]:
    """(number of think blocks, content of the first, text after the last </think>)."""
    opens, closes = text.count(_THINK_OPEN), text.count(_THINK_CLOSE)
    if closes == 0:
        return 0, "", text
    head, _, tail = text.rpartition(_THINK_CLOSE)
    start = head.find(_THINK_OPEN)
    content = head[start + len(_THINK_OPEN):] if start >= 0 else head
    return max(opens, closes), content.strip(), tail


def _fake_hr1_layout(text: str) -> bool:
    """Exactly `<think>\\n\\n</think>\\n\\nLABEL` or `<think>\\nREASONING\\n</think>\\n\\nLABEL` (REASONING not blank,
    no think tags inside), with at most one trailing newline and nothing else."""
    if not text.startswith(_THINK_OPEN + "\n") or text.count(_THINK_OPEN) != 1 or text.count(_THINK_CLOSE) != 1:
        return False
    inner, _, after = text[len(_THINK_OPEN) + 1:].partition(_THINK_CLOSE)
    if not (inner == "\n" or (inner.endswith("\n") and inner[:-1].strip())):
        return False
    if after.endswith("\n"):
        after = after[:-1]
    if not after.startswith("\n\n"):
        return False
    word = after[2:]
    return word.isascii() and word.lower() in LABELS


def parse_fake_hr1(text: str, response_prefix: str | None = None) -> ParsedAnswer:
    """`<think>\\n\\n</think>\\n\\nreal` (no-think) or `<think>\\n...\\n</think>\\n\\nfake` (think).

    The label is the whole text after the last </think> (or the whole response when there is none). If generation
    started after a response prefix such as "<think>\\n", pass it: it is put back before parsing.
    """
    text = _with_prefix(text, response_prefix)
    blocks, reasoning, tail = _think_parts(text)
    label = _label_of(tail)
    if blocks == 1 and text.count(_THINK_OPEN) == 1:
        mode: Mode | None = "think" if reasoning else "no_think"
    else:
        mode = None
    well_formed = blocks == 1 and _fake_hr1_layout(text)
    return ParsedAnswer(label, mode, reasoning if blocks else "", well_formed, blocks)


def parse_fakevlm_r1(text: str, response_prefix: str | None = None) -> ParsedAnswer:
    """`<think>[Why fake] ... [If real] ...</think><answer>Fake|Real</answer>`: the label is the one answer tag,
    which must come after the reasoning; two answer tags (or none) read as no answer."""
    text = _with_prefix(text, response_prefix)
    blocks, reasoning, tail = _think_parts(text)
    label: Label | None = None
    opens = [m.end() for m in _ANSWER_OPEN.finditer(text)]
    closes = [m.start() for m in _ANSWER_CLOSE.finditer(text)]
    if len(opens) == 1 and len(closes) == 1 and opens[0] <= closes[0] and len(text) - len(tail) <= opens[0]:
        label = _label_of(text[opens[0]:closes[0]])
    mode: Mode | None = ("think" if reasoning else "no_think") if blocks == 1 else None
    well_formed = blocks == 1 and bool(_FAKEVLM_LAYOUT.match(text))
    reasoning = reasoning if blocks else ""
    return ParsedAnswer(label, mode, reasoning, well_formed, blocks, paired=pairing(reasoning)[0] == 1.0)


_MARKER = re.compile(r"\[\s*(why\s+fake|if\s+real)\s*\]", re.IGNORECASE)


def pairing(reasoning: str) -> tuple[float, int]:
    """FakeVLM-R1's pairing of a reasoning: (pairs / (pairs + orphans), pairs), 0.0 when there is no pair.

    A pair is a non-empty [Why fake] segment immediately followed by a non-empty [If real] segment; every other
    marker segment (a [Why fake] with no [If real] after it, an [If real] with no [Why fake] before it, an empty
    one) is an orphan. So the score is 1.0 exactly when the reasoning is fully paired."""
    marks = list(_MARKER.finditer(reasoning))
    segments = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(reasoning)
        kind = "why" if m.group(1).lower().startswith("why") else "if"
        segments.append((kind, bool(reasoning[m.end():end].strip())))
    pairs = orphans = 0
    i = 0
    while i < len(segments):
        kind, filled = segments[i]
        if kind == "why" and i + 1 < len(segments) and segments[i + 1][0] == "if" and filled and segments[i + 1][1]:
            pairs += 1
            i += 2
        else:
            orphans += 1
            i += 1
    return (pairs / (pairs + orphans) if pairs else 0.0), pairs


def parse_answer(text: str, answer_format: str, response_prefix: str | None = None) -> ParsedAnswer:
    if answer_format == "fake_hr1":
        return parse_fake_hr1(text, response_prefix)
    if answer_format == "fakevlm_r1":
        return parse_fakevlm_r1(text, response_prefix)
    raise ValueError(f"unknown answer format {answer_format!r}; known: {', '.join(FORMATS)}")
