"""Helpers shared by the reward plugins in this folder (loaded by file path, so not a package import).

Plugins are loaded by verl / ms-swift from a file path, not as a package, so `rewards.x` is not importable; each
plugin loads this file by path once (fakehr_orchestra/plugins.py), so they share one module.
The answer parser and the label normaliser come from the installed package (`fakehr_orchestra`), never copied.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from fakehr_orchestra.labels import LabelError, normalize_ground_truth
from fakehr_orchestra.prompts import effective


def weight(kwargs: Mapping[str, Any], key: str, default: float) -> float:
    """A non-negative finite weight/option from the reward kwargs; a bad value is a recipe error, said clearly."""
    value = kwargs.get(key, default)
    if value is None:
        value = default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"reward kwarg {key}={value!r} is not a number (set grpo.reward.kwargs.{key})") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"reward kwarg {key}={value!r} must be a finite number >= 0 (grpo.reward.kwargs.{key})")
    return number


def response_prefix(kwargs: Mapping[str, Any]) -> str | None:
    """The recipe's response prefix as the model saw it (recipes keep ms-swift's literal backslash-n form)."""
    prefix = kwargs.get("response_prefix")
    return effective(prefix) if isinstance(prefix, str) and prefix else None


def ground_truth_label(ground_truth: Any, extra_info: Any, kwargs: Mapping[str, Any]) -> str:
    """Normalise the ground truth with the one shared normaliser.

    The convention comes from the reward kwarg `label_convention`, else from extra_info['label_convention'] (the
    data converters record it), else none: then only real|fake text and True/False (True = fake) are accepted.
    A bad ground truth is a data error (not model output): it raises with what to fix.
    """
    convention = kwargs.get("label_convention")
    if not convention and isinstance(extra_info, Mapping):
        convention = extra_info.get("label_convention")
    if isinstance(ground_truth, Mapping):  # verl's reward_model block passed whole
        ground_truth = ground_truth.get("ground_truth", ground_truth.get("label"))
    try:
        return normalize_ground_truth(ground_truth, convention or None)
    except LabelError as exc:
        raise ValueError(f"reward: bad ground truth: {exc}. Fix the data (reward_model.ground_truth / solution) "
                         f"or declare grpo.reward.kwargs.label_convention") from None


def finite(value: float, low: float = 0.0, high: float = 1.0) -> float:
    """Clamp into [low, high]; NaN becomes low. Every logged component goes through this."""
    if not isinstance(value, (int, float)) or value != value:
        return low
    return float(min(high, max(low, value)))
