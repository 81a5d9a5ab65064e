"""Fake-HR1 (hybrid reasoning) reward: a verl `compute_score` plugin, loaded by file path.

Answer format (the SFT system prompt): `<think>\\n\\n</think>\\n\\nreal|fake` (no-think) or
`<think>\\n<reasoning>\\n</think>\\n\\nreal|fake` (think), parsed by the one strict parser
`fakehr_orchestra.answers.parse_answer(..., "fake_hr1")`.

Per sample (this file):

    score = w_correct * correct + w_format * format            range [0, w_correct + w_format]

    correct  1 when the whole text after the last </think> is exactly one of real/fake (any case, an optional
             trailing period) and equals the ground truth; an empty answer, both labels, a label only inside the
             reasoning or words such as "unrealistic" are 0 (and counted in `parse_failure`)
    format   1 when the response is exactly one think block then exactly one label, nothing else

Defaults: w_correct = 1.0, w_format = 0.5 (reward kwargs `w_correct`, `w_format`).

Logged components (all finite, every sample has every key): score, acc (= correct), format, think (1 when the mode
is think), no_think (1 when the mode is no-think; think = no_think = 0 when there is no single think block),
parse_failure (1 when no label could be read), reasoning_words.

The hybrid part (prefer no-think when it is as accurate as thinking within a margin) needs the whole group of
samples of a prompt, which `compute_score` never sees: it lives in rewards/hybrid_manager.py (a verl reward
manager), which reads `acc`, `think` and `no_think` from this function's result.

Other kwargs: `response_prefix` (the recipe's, e.g. "<think>\\n": put back when generation started after it),
`label_convention` (for 0/1 ground truth), and the manager's `hybrid_*` keys, which are ignored here.

Decoding: verl decodes with skip_special_tokens=True. In Qwen2.5 `<think>`/`</think>` are plain text, not special
tokens, so they survive (tests/rewards/test_decoding.py checks it with the fixture tokenizer). Were they stripped,
no think block would be found: format = 0, think = no_think = 0, and the label is still read from the whole text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakehr_orchestra.answers import parse_answer
from fakehr_orchestra.plugins import load_plugin_file

# rewards/_shared.py, by path (this file is loaded by path too, so this folder is not a package)
_shared = load_plugin_file(Path(__file__).resolve().with_name("_shared.py"))

DEFAULTS = {"w_correct": 1.0, "w_format": 0.5}
KEYS = ("score", "acc", "format", "think", "no_think", "parse_failure", "reasoning_words")
# the keys that are terms of `score` (the training curves plot these as reward components; the rest is bookkeeping)
COMPONENTS = ("acc", "format")


def score_response(solution_str: Any, truth: str, *, w_correct: float, w_format: float,
                   response_prefix: str | None = None) -> dict[str, float]:
    """The per-sample reward for an already-normalised ground truth ('real'/'fake'). Never raises on the response."""
    text = solution_str if isinstance(solution_str, str) else ""
    parsed = parse_answer(text, "fake_hr1", response_prefix)
    correct = 1.0 if parsed.label is not None and parsed.label == truth else 0.0
    fmt = 1.0 if parsed.well_formed else 0.0
    return {
        "score": w_correct * correct + w_format * fmt,
        "acc": correct,
        "format": fmt,
        "think": 1.0 if parsed.mode == "think" else 0.0,
        "no_think": 1.0 if parsed.mode == "no_think" else 0.0,
        "parse_failure": 1.0 if parsed.label is None else 0.0,
        "reasoning_words": float(len(parsed.reasoning.split())),
    }


def compute_score(data_source: Any = None, solution_str: Any = "", ground_truth: Any = None,
                  extra_info: Any = None, **kwargs: Any) -> dict[str, float]:
    """verl's reward contract: a dict with `score` plus logged components."""
    truth = _shared.ground_truth_label(ground_truth, extra_info, kwargs)
    return score_response(
        solution_str, truth,
        w_correct=_shared.weight(kwargs, "w_correct", DEFAULTS["w_correct"]),
        w_format=_shared.weight(kwargs, "w_format", DEFAULTS["w_format"]),
        response_prefix=_shared.response_prefix(kwargs),
    )
