"""SophiaVL-R1's Trust-GRPO gating of the critic reward, as an option of the FakeVLM-R1 reward (off by default).

Restated from github.com/kxfan2002/SophiaVL-R1 `verl/workers/reward/custom.py` (`CustomRewardManager.__call__`
with a group of n rollouts, T = 500). For one group (the rollouts of one prompt):
  - answer scores a_i; when every a_i >= 0.9 or every a_i <= 0.1 the critic is not asked at all (its score would
    not separate the group's answers): process scores 0, weight 0;
  - otherwise the critic scores each rollout with a_i >= 0.2 (the others get process score 0);
    correct = a_i >= 0.5; c = mean process score of the correct ones, w = of the wrong ones (0 when none);
    weight = exp(-step / T) * 0.3, times exp(c - w) when c < w and some answer is correct (the critic favours wrong
    answers: trust it less); trust gamma = exp(2 (c - w)) when c < w, else 1 (logged);
  - score_i = a_i + weight * p_i.
Here a_i is the reward's `acc` (1 for the right label, else 0): with a binary accuracy only right answers are
judged, so w is 0 and the "favours wrong answers" branch cannot trigger; it is kept for graded scores.

The score convention differs from the reward's default (a weighted mean of components): with `trust_grpo` on, the
score is SophiaVL-R1's `acc + weight * consistency`; the other components are still logged.
"""

import math
from typing import Any, Awaitable, Callable, Mapping, Sequence

T_DEFAULT = 500.0
BASE_DEFAULT = 0.3


def uniform(answers: Sequence[float]) -> bool:
    """All right or all wrong: SophiaVL-R1 skips the critic for such a group."""
    return bool(answers) and (all(a >= 0.9 for a in answers) or all(a <= 0.1 for a in answers))


def trust_weight(step: float, answers: Sequence[float], process: Sequence[float], t: float = T_DEFAULT,
                 base: float = BASE_DEFAULT) -> tuple[float, float]:
    """(the critic's weight, trust gamma) for a non-uniform group whose process scores are known."""
    correct = [p for a, p in zip(answers, process) if a >= 0.5]
    wrong = [p for a, p in zip(answers, process) if a < 0.5]
    c = sum(correct) / len(correct) if correct else 0.0
    w = sum(wrong) / len(wrong) if wrong else 0.0
    weight = math.exp(-step / t) * base if t > 0 else 0.0
    if c < w:
        if correct:
            weight *= math.exp(c - w)
        return weight, math.exp((c - w) * 2)
    return weight, 1.0


async def score_group(answers: Sequence[float], ask: Callable[[int], Awaitable[float]], step: float,
                      t: float = T_DEFAULT, base: float = BASE_DEFAULT) -> list[dict[str, float]]:
    """Per member: trust_process (the critic's score, 0 when not asked), trust_weight, trust_gamma,
    trust_asked (1 when the critic was asked) and trust_score (a_i + weight * p_i). `ask(i)` scores member i."""
    import asyncio

    n = len(answers)
    if uniform(answers):
        process, asked, weight, gamma = [0.0] * n, [False] * n, 0.0, 0.5
    else:
        asked = [a >= 0.2 for a in answers]
        scores = await asyncio.gather(*(ask(i) for i in range(n) if asked[i]))
        it = iter(scores)
        process = [float(next(it)) if asked[i] else 0.0 for i in range(n)]
        weight, gamma = trust_weight(step, answers, process, t, base)
    return [{"trust_process": process[i], "trust_weight": weight, "trust_gamma": gamma,
             "trust_asked": 1.0 if asked[i] else 0.0, "trust_score": answers[i] + weight * process[i]}
            for i in range(n)]


def params(kwargs: Mapping[str, Any]) -> tuple[float, float]:
    """(T, base weight) from the reward kwargs trust_grpo_t / trust_grpo_weight (SophiaVL-R1's 500 and 0.3)."""
    t = kwargs.get("trust_grpo_t")
    base = kwargs.get("trust_grpo_weight")
    t = T_DEFAULT if t is None else float(t)
    base = BASE_DEFAULT if base is None else float(base)
    if not (math.isfinite(t) and t > 0 and math.isfinite(base) and base >= 0):
        raise ValueError(f"reward kwargs trust_grpo_t={t!r} must be > 0 and trust_grpo_weight={base!r} >= 0")
    return t, base
