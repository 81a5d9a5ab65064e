"""The one numeric-range check for values we validate or score.

A number from a file or a command line is accepted only when it is a real number (not a bool: JSON `true` is not
1.0; not text: "0.75" is not a score), finite (no inf / nan), and inside the range its meaning allows. `-0` for a
batch size, `.inf` for a learning rate, 7 for a probability all pass a type check and make a wrong or failing run.

`number_problem(value, rule)` says what is wrong (None when nothing); `RULES` are the ranges of the training
values validate knows by name (ms-swift flags and verl keys alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Rule:
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False  # high itself is not allowed
    integer: bool = False
    allow: tuple[float, ...] = ()  # special values outside the range that mean something (max_steps: -1)

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        special = f" (or {', '.join(f'{a:g}' for a in self.allow)})" if self.allow else ""
        return kind + (" " + " and ".join(parts) if parts else "") + special


POSITIVE_INT = Rule(low=1, integer=True)
POSITIVE = Rule(low=0, low_open=True)
NON_NEGATIVE = Rule(low=0)
FRACTION = Rule(low=0, high=1)
PROBABILITY = FRACTION

# Training values validate checks by name, wherever they appear (ms-swift --flag, verl hydra key's last part).
RULES: dict[str, Rule] = {
    "per_device_train_batch_size": POSITIVE_INT, "per_device_eval_batch_size": POSITIVE_INT,
    "gradient_accumulation_steps": POSITIVE_INT, "num_generations": POSITIVE_INT,
    "train_batch_size": POSITIVE_INT, "ppo_mini_batch_size": POSITIVE_INT,
    "ppo_micro_batch_size_per_gpu": POSITIVE_INT, "log_prob_micro_batch_size_per_gpu": POSITIVE_INT,
    "n_gpus_per_node": POSITIVE_INT, "nnodes": POSITIVE_INT, "n": POSITIVE_INT,
    "max_length": POSITIVE_INT, "max_completion_length": POSITIVE_INT, "max_prompt_length": POSITIVE_INT,
    "max_response_length": POSITIVE_INT,
    # transformers: an int number of steps, or a float in (0, 1): a share of the total steps
    "save_steps": POSITIVE, "eval_steps": POSITIVE, "logging_steps": POSITIVE,
    "save_freq": Rule(low=1, integer=True, allow=(-1,)),
    "test_freq": Rule(low=1, integer=True, allow=(-1,)), "total_epochs": POSITIVE_INT,
    "max_steps": Rule(low=1, integer=True, allow=(-1,)),
    "learning_rate": POSITIVE, "lr": POSITIVE, "num_train_epochs": POSITIVE,
    "warmup_ratio": FRACTION, "lr_warmup_steps_ratio": FRACTION, "weight_decay": NON_NEGATIVE,
    "max_grad_norm": NON_NEGATIVE, "grad_clip": NON_NEGATIVE, "beta": NON_NEGATIVE, "kl_coef": NON_NEGATIVE,
    "temperature": NON_NEGATIVE, "top_p": Rule(low=0, low_open=True, high=1),
    "gpu_memory_utilization": Rule(low=0, low_open=True, high=1),
    "max_image_mb": POSITIVE,
}


def as_number(value: Any) -> Optional[float]:
    """`value` as a float when it is a real number (int or float, not bool), else None. Text is parsed only by
    callers that read command-line text (`parse_number`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_number(text: str) -> Optional[float]:
    """A number written as text (a command-line value): '-0', '1e-5', '.inf'; None when it is not one."""
    try:
        return float(text.strip().replace(".inf", "inf").replace(".nan", "nan"))
    except (ValueError, AttributeError):
        return None


def number_problem(value: Any, rule: Rule) -> Optional[str]:
    """Why `value` is not a number the rule allows (None when it is). Text is read as a number (validate reads
    command-line values); bools never are."""
    number = parse_number(value) if isinstance(value, str) else as_number(value)
    if number is None:
        return f"{value!r} is not a number: expected {rule.describe()}"
    if not math.isfinite(number):
        return f"{value!r} is not finite: expected {rule.describe()}"
    if number in rule.allow:
        return None
    if rule.integer and number != int(number):
        return f"{value!r} is not an integer: expected {rule.describe()}"
    too_low = rule.low is not None and (number < rule.low or (rule.low_open and number == rule.low))
    too_high = rule.high is not None and (number > rule.high or (rule.high_open and number == rule.high))
    if too_low or too_high:
        return f"{value!r} is out of range: expected {rule.describe()}"
    return None


def finite_in(value: Any, rule: Rule) -> Optional[float]:
    """The value as a float when it is a real number the rule allows (never text, never a bool), else None."""
    number = as_number(value)
    if number is None or number_problem(number, rule) is not None:
        return None
    return number


NOT_SET = ("null", "none", "~", "")


def option_problems(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, problem) for every (option name, value text) whose name has a rule and whose value breaks it; a
    launch-time reference (${NAME}) and an unset value (null) are left to the framework."""
    out = []
    for name, text in pairs:
        rule = RULES.get(name.lstrip("-+~").rsplit(".", 1)[-1])
        if rule is None or "${" in text or text.strip().lower() in NOT_SET:
            continue
        problem = number_problem(text, rule)
        if problem:
            out.append((name, problem))
    return out


def click_number(rule: Rule) -> Any:
    """A click parameter type that reads a command-line number through `number_problem` (click's FloatRange lets
    nan through: every comparison with it is false)."""
    import click

    class NumberType(click.ParamType):
        name = "integer" if rule.integer else "number"

        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            if not isinstance(value, str):
                value = str(value)
            problem = number_problem(value, rule)
            if problem:
                self.fail(problem, param, ctx)
            number = float(value.strip())
            return int(number) if rule.integer else number

    return NumberType()


def argparse_number(rule: Rule) -> Any:
    """The same for argparse (`type=`)."""
    import argparse

    def convert(text: str) -> float:
        problem = number_problem(text, rule)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return float(text)
    return convert
