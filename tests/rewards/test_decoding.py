"""Responses reach the reward as verl decodes them (skip_special_tokens=True): the think tags must survive, with
the Qwen2.5-VL tokenizer of the tiny fixture (Qwen's special tokens at Qwen's ids; <think> is plain text)."""

from __future__ import annotations

import pytest

from fakehr_orchestra.answers import fake_hr1_target, fakevlm_r1_target, parse_answer


@pytest.mark.parametrize("text,fmt", [
    (fake_hr1_target("real"), "fake_hr1"),
    (fake_hr1_target("fake", "the shadows point two ways"), "fake_hr1"),
    (fakevlm_r1_target("fake", [("warped text", "motion blur could do that")]), "fakevlm_r1"),
])
def test_think_tags_survive_skip_special_tokens(tiny: dict[str, str], text: str, fmt: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny["model"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    decoded = tokenizer.decode(ids + [eos], skip_special_tokens=True)  # as verl's naive manager decodes
    assert "<|im_end|>" not in decoded
    assert decoded == text
    parsed = parse_answer(decoded, fmt)
    assert parsed.well_formed and parsed.label in ("real", "fake")
