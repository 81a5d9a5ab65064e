"""The one strict answer parser: each trap by hand, then hypothesis properties (never raises, linear time)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakehr_orchestra.answers import fake_hr1_target, fakevlm_r1_target, parse_answer

HR1_CASES = [
    ("<think>\n\n</think>\n\nreal", "real", "no_think", True),
    ("<think>\nblurry hands, odd text\n</think>\n\nfake", "fake", "think", True),
    ("<think>\n\n</think>\n\nFAKE", "fake", "no_think", True),
    ("<think>\n\n</think>\n\nReal.", "real", "no_think", False),  # label ok, layout not exact
    ("<think>\n\n</think>\n\nunrealistic", None, "no_think", False),
    ("<think>\n\n</think>\n\n", None, "no_think", False),  # empty answer
    ("", None, None, False),
    ("<think>\n\n</think>\n\nreal fake", None, "no_think", False),  # both labels
    ("<think>\nit is fake\n</think>\n\n", None, "think", False),  # label only in the reasoning
    ("<think>\nit is fake\n</think>\n\nI think so", None, "think", False),
    ("<think>\nreal\n", None, None, False),  # unclosed
    ("<think>\na\n</think>\n<think>\nb\n</think>\n\nreal", "real", None, False),  # two blocks
    ("<think>\n\n</think>\n\nfa\u212ae", None, "no_think", False),  # Kelvin sign is not k
    ("The image is fake", None, None, False),
    ("fake", "fake", None, False),  # a bare label is an answer, but not the format
]


@pytest.mark.parametrize("text,label,mode,well_formed", HR1_CASES)
def test_fake_hr1_traps(text: str, label: str | None, mode: str | None, well_formed: bool) -> None:
    parsed = parse_answer(text, "fake_hr1")
    assert (parsed.label, parsed.mode, parsed.well_formed) == (label, mode, well_formed)


def test_response_prefix_is_put_back_only_when_missing() -> None:
    generated = "\n</think>\n\nreal"  # generation started after "<think>\n"
    assert parse_answer(generated, "fake_hr1").well_formed is False
    parsed = parse_answer(generated, "fake_hr1", response_prefix="<think>\n")
    assert (parsed.label, parsed.mode, parsed.well_formed) == ("real", "no_think", True)
    full = "<think>\n\n</think>\n\nreal"
    assert parse_answer(full, "fake_hr1", response_prefix="<think>\n").well_formed is True


VLM_GOOD = "<think>\n[Why fake] warped text\n[If real] motion blur\n</think>\n<answer>Fake</answer>"
VLM_CASES = [
    (VLM_GOOD, "fake", True),
    ("<think>x</think><answer> real </answer>", "real", True),
    ("<think>x</think><answer>unrealistic</answer>", None, False),
    ("<think>x</think><answer></answer>", None, False),
    ("<think>x</think><answer>Real</answer><answer>Fake</answer>", None, False),
    ("<think><answer>Fake</answer></think>", None, False),  # label only inside the reasoning
    ("<think>x</think>Fake", None, False),
    ("<answer>Fake</answer>", "fake", False),  # no reasoning: answer read, format wrong
    ("<think>x</think><answer>real fake</answer>", None, False),
]


@pytest.mark.parametrize("text,label,well_formed", VLM_CASES)
def test_fakevlm_r1_traps(text: str, label: str | None, well_formed: bool) -> None:
    parsed = parse_answer(text, "fakevlm_r1")
    assert (parsed.label, parsed.well_formed) == (label, well_formed)


def test_targets_round_trip() -> None:
    for label in ("real", "fake"):
        for reasoning in (None, "two suns"):
            parsed = parse_answer(fake_hr1_target(label, reasoning), "fake_hr1")
            assert parsed.label == label and parsed.well_formed
            assert parsed.mode == ("think" if reasoning else "no_think")
        parsed = parse_answer(fakevlm_r1_target(label, [("a", "b"), ("c", "d")]), "fakevlm_r1")
        assert parsed.label == label and parsed.well_formed


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="known: fake_hr1, fakevlm_r1"):
        parse_answer("real", "other")


PIECES = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "\n", "real", "fake", "Real", "FAKE",
                          "[Why fake]", "[If real]", " ", ".", "unrealistic", "\u212a", "\x00", "\U0001F600"])
TEXT = st.one_of(st.text(), st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=40).map("".join))


@settings(max_examples=400, deadline=None)
@given(text=TEXT, fmt=st.sampled_from(["fake_hr1", "fakevlm_r1"]),
       prefix=st.one_of(st.none(), st.just("<think>\n"), st.text(max_size=3)))
def test_never_raises_and_is_consistent(text: str, fmt: str, prefix: str | None) -> None:
    parsed = parse_answer(text, fmt, prefix)
    assert parsed.label in (None, "real", "fake")
    assert parsed.mode in (None, "think", "no_think")
    assert parsed.think_blocks >= 0
    if parsed.well_formed:
        assert parsed.label is not None and parsed.think_blocks == 1


@pytest.mark.parametrize("fmt", ["fake_hr1", "fakevlm_r1"])
@pytest.mark.parametrize("text", [
    "<think>\n" + "a " * 200_000 + "\n</think>\n\nreal!",  # was quadratic (20 s at 64 kB) with the old layout regex
    "real" + " " * 400_000 + "x",
    "<answer>" * 200_000,
    "<think>" * 100_000 + "</think>" * 100_000,
    "[Why fake]" * 100_000,
])
def test_huge_adversarial_inputs_parse_in_linear_time(fmt: str, text: str) -> None:
    start = time.perf_counter()
    parse_answer(text, fmt)
    assert time.perf_counter() - start < 1.0
