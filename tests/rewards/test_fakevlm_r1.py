"""FakeVLM-R1 rule components by hand (dialectic pairs, length band, correctness, format) and properties."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def vlm(plugin):  # type: ignore[no-untyped-def]
    return plugin("fakevlm_r1")


@pytest.mark.parametrize("reasoning,expected,pairs", [
    ("[Why fake] a [If real] b", 1.0, 1),
    ("intro [Why fake] a [If real] b [Why fake] c [If real] d. Weighing: fake", 1.0, 2),
    ("[why FAKE] a [ If Real ] b", 1.0, 1),
    ("[Why fake] a [Why fake] b [If real] c", 0.5, 1),  # one unpaired hypothesis
    ("[If real] b [Why fake] a", 0.0, 0),  # wrong order: no pair
    ("[Why fake] [If real] b", 0.0, 0),  # empty hypothesis
    ("[Why fake] a [If real]", 0.0, 0),  # empty counter-proof
    ("no markers at all", 0.0, 0),
    ("", 0.0, 0),
    ("[Why fake] a [If real] b [If real] c", 0.5, 1),  # orphan counter-proof
])
def test_dialectic(vlm, reasoning: str, expected: float, pairs: int) -> None:  # type: ignore[no-untyped-def]
    assert vlm.dialectic(reasoning) == (pytest.approx(expected), pairs)


@pytest.mark.parametrize("words,expected", [(0, 0.0), (20, 0.5), (40, 1.0), (400, 1.0), (600, 0.5), (800, 0.0),
                                            (10_000, 0.0)])
def test_length_band(vlm, words: int, expected: float) -> None:  # type: ignore[no-untyped-def]
    assert vlm.length_score(words, 40, 400) == pytest.approx(expected)


def response(label: str, reasoning: str = "[Why fake] odd hands [If real] soft focus") -> str:
    return f"<think>\n{reasoning}\n</think>\n<answer>{label}</answer>"


@pytest.mark.parametrize("text,truth,acc,fmt", [
    (response("Fake"), "fake", 1.0, 1.0),
    (response("REAL"), 0, 0.0, 1.0),  # fakeclue: 0 = fake
    (response("unrealistic"), "real", 0.0, 0.0),
    (response(""), "real", 0.0, 0.0),
    ("<think>it is real</think>", "real", 0.0, 0.0),  # label only inside the reasoning
    (response("Real") + "<answer>Fake</answer>", "real", 0.0, 0.0),  # two answers
    ("<answer>Real</answer>", True, 0.0, 0.0),  # True = fake
])
def test_correct_and_format(vlm, text: str, truth: object, acc: float, fmt: float) -> None:  # type: ignore[no-untyped-def]
    r = vlm.score_rules(text, "fake" if truth in (0, True) else "real" if truth == 1 else truth)
    r2 = asyncio.run(vlm.compute_score("d", text, truth, None, label_convention="fakeclue" if truth == 0 else None))
    assert (r["acc"], r["format"]) == (acc, fmt) == (r2["acc"], r2["format"])


def test_weights_and_renormalisation(vlm) -> None:  # type: ignore[no-untyped-def]
    text = response("Fake")  # 8 words of reasoning (markers count)
    r = vlm.score_rules(text, "fake", length_min_words=16, w_length=1.0, w_dialectic=0.0)
    assert r["length"] == 0.5
    assert r["score"] == pytest.approx((1.0 + 0.5 + 0.5) / (1.0 + 0.5 + 1.0))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.lists(st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "[Why fake]", "[If real]", "Real", "fake", "x", " ", "\n"]),
    max_size=40).map("".join)), truth=st.sampled_from(["real", "fake"]))
def test_never_raises_finite_in_range(vlm, text: str, truth: str) -> None:  # type: ignore[no-untyped-def]
    r = asyncio.run(vlm.compute_score("d", text, truth))
    assert all(math.isfinite(v) for v in r.values())
    for key in ("score", "acc", "format", "dialectic", "length"):
        assert 0.0 <= r[key] <= 1.0
