"""The one label normaliser, as rewards receive ground truth: real|fake, 0|1 with a convention, True|False."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakehr_orchestra.labels import CONVENTIONS, LabelError, normalize_ground_truth, normalize_label


@pytest.mark.parametrize("value,convention,expected", [
    ("real", None, "real"), (" FAKE ", None, "fake"), ("Real", "text", "real"),
    (True, None, "fake"), (False, None, "real"), ("True", None, "fake"), ("false", None, "real"),
    (0, "fakeclue", "fake"), (1, "fakeclue", "real"), ("0", "fakeclue", "fake"), (1.0, "fakeclue", "real"),
    (1, "one_is_fake", "fake"), (0, "one_is_fake", "real"), (1, "one_is_real", "real"),
    ("ai", "genimage", "fake"), ("nature", "genimage", "real"), (True, "bool_is_fake", "fake"),
])
def test_ground_truth_forms(value: object, convention: str | None, expected: str) -> None:
    assert normalize_ground_truth(value, convention) == expected


@pytest.mark.parametrize("value", [0, 1, "1", 0.0])
def test_bare_numbers_need_a_convention(value: object) -> None:
    with pytest.raises(LabelError, match="declare its convention"):
        normalize_ground_truth(value)


@pytest.mark.parametrize("value,convention", [
    ("unrealistic", None), ("", None), (2, "fakeclue"), (True, "fakeclue"), ("real", "fakeclue"),
    ("ai", "text"), (None, None), ("maybe", "bool_is_fake"),
])
def test_bad_labels_are_refused(value: object, convention: str | None) -> None:
    with pytest.raises(LabelError):
        normalize_ground_truth(value, convention)


def test_unknown_convention() -> None:
    with pytest.raises(LabelError, match="unknown label convention"):
        normalize_label("real", "nope")


@given(value=st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()),
       convention=st.one_of(st.none(), st.sampled_from(CONVENTIONS)))
def test_result_or_label_error(value: object, convention: str | None) -> None:
    try:
        assert normalize_ground_truth(value, convention) in ("real", "fake")
    except LabelError:
        pass
