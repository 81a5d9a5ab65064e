"""Fake-HR1 reward: each component and trap by hand; hypothesis: never raises, finite, in range."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

NO_THINK_REAL = "<think>\n\n</think>\n\nreal"
THINK_FAKE = "<think>\nsix fingers, melted text\n</think>\n\nfake"


@pytest.fixture(scope="module")
def hr1(plugin):  # type: ignore[no-untyped-def]
    return plugin("fake_hr1")


def test_correct_well_formed_no_think(hr1) -> None:  # type: ignore[no-untyped-def]
    r = hr1.compute_score("genimage", NO_THINK_REAL, "real")
    assert r == {"score": 1.5, "acc": 1.0, "format": 1.0, "think": 0.0, "no_think": 1.0, "parse_failure": 0.0,
                 "reasoning_words": 0.0}


def test_correct_think_and_weights_from_kwargs(hr1) -> None:  # type: ignore[no-untyped-def]
    r = hr1.compute_score("genimage", THINK_FAKE, "fake", w_correct=2.0, w_format=0.25)
    assert r["score"] == 2.25 and r["think"] == 1.0 and r["no_think"] == 0.0 and r["reasoning_words"] == 4


def test_wrong_label_keeps_format(hr1) -> None:  # type: ignore[no-untyped-def]
    r = hr1.compute_score("genimage", NO_THINK_REAL, "fake")
    assert (r["score"], r["acc"], r["format"]) == (0.5, 0.0, 1.0)


@pytest.mark.parametrize("response", [
    "<think>\n\n</think>\n\nunrealistic", "<think>\n\n</think>\n\n", "", "<think>\n\n</think>\n\nreal fake",
    "<think>\nthis is real\n</think>\n\n", None, 42,
])
def test_traps_are_not_correct(hr1, response) -> None:  # type: ignore[no-untyped-def]
    r = hr1.compute_score("x", response, "real")
    assert r["acc"] == 0.0 and r["parse_failure"] == 1.0 and r["score"] <= 0.5


def test_format_needs_exactly_one_block_then_one_label(hr1) -> None:  # type: ignore[no-untyped-def]
    assert hr1.compute_score("x", "real", "real")["format"] == 0.0
    assert hr1.compute_score("x", NO_THINK_REAL + "\nextra", "real")["format"] == 0.0
    two = "<think>\na\n</think>\n\n<think>\nb\n</think>\n\nreal"
    r = hr1.compute_score("x", two, "real")
    assert r["format"] == 0.0 and r["think"] == r["no_think"] == 0.0


@pytest.mark.parametrize("truth,kwargs,extra", [
    ("real", {}, None), ("REAL", {}, None), (False, {}, None), ("false", {}, None),
    (1, {"label_convention": "fakeclue"}, None), (0, {}, {"label_convention": "one_is_fake"}),
    ({"ground_truth": "real", "style": "rule"}, {}, None),
])
def test_ground_truth_forms(hr1, truth, kwargs, extra) -> None:  # type: ignore[no-untyped-def]
    assert hr1.compute_score("x", NO_THINK_REAL, truth, extra, **kwargs)["acc"] == 1.0


@pytest.mark.parametrize("truth", [1, "1", "maybe", None])
def test_bad_ground_truth_is_a_clear_error(hr1, truth) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="bad ground truth"):
        hr1.compute_score("x", NO_THINK_REAL, truth)


def test_bad_weight_is_a_clear_error(hr1) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="grpo.reward.kwargs.w_format"):
        hr1.compute_score("x", NO_THINK_REAL, "real", w_format=-1)


def test_response_prefix_kwarg_in_recipe_form(hr1) -> None:  # type: ignore[no-untyped-def]
    # the recipe keeps ms-swift's literal backslash-n; generation started after the prefix
    r = hr1.compute_score("x", "\n</think>\n\nreal", "real", response_prefix="<think>\\n")
    assert r["format"] == 1.0 and r["no_think"] == 1.0
    assert hr1.compute_score("x", "\n</think>\n\nreal", "real")["format"] == 0.0


def test_ignores_manager_and_verl_kwargs(hr1) -> None:  # type: ignore[no-untyped-def]
    r = hr1.compute_score("x", NO_THINK_REAL, "real", hybrid_w_mode=0.5, hybrid_margin=0.1,
                          reward_router_address=None)
    assert r["score"] == 1.5


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.lists(st.sampled_from(["<think>", "</think>", "\n", "real", "fake", "x", " "]),
                                          max_size=30).map("".join)),
       truth=st.sampled_from(["real", "fake", True, False]))
def test_never_raises_finite_in_range(hr1, text: str, truth: object) -> None:  # type: ignore[no-untyped-def]
    r = hr1.compute_score("x", text, truth)
    assert set(r) == set(hr1.KEYS)
    assert all(math.isfinite(v) for v in r.values())
    assert 0.0 <= r["score"] <= 1.5 and r["think"] + r["no_think"] <= 1.0


def test_huge_response(hr1) -> None:  # type: ignore[no-untyped-def]
    r = hr1.compute_score("x", "<think>\n" + "\u00e9\U0001F600 " * 300_000 + "\n</think>\n\nfake", "fake")
    assert r["acc"] == 1.0 and r["format"] == 1.0
