"""SophiaVL-R1's Trust-GRPO gating (off by default): the critic is not asked for groups whose answers are all right
or all wrong (a real HTTP critic counts the requests), the weight is exp(-step/500) * 0.3 and is lowered when the
critic favours wrong answers; through the ms-swift adapter, groups are the prompts of the batch."""

from __future__ import annotations

import asyncio
import json
import math
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.rewards.conftest import REWARDS, load
from tests.rewards.critic_server import CriticServer, fixed

RIGHT = "<think>[Why fake] odd shadow {n} [If real] soft light</think><answer>Fake</answer>"
WRONG = "<think>[Why fake] odd shadow {n} [If real] soft light</think><answer>Real</answer>"


@pytest.fixture(scope="module")
def trust(plugin):  # type: ignore[no-untyped-def]
    return plugin("fakevlm_r1")._trust


@pytest.fixture(scope="module")
def vlm(plugin):  # type: ignore[no-untyped-def]
    return plugin("fakevlm_r1")


def test_weight_as_sophiavl_r1(trust) -> None:  # type: ignore[no-untyped-def]
    assert trust.uniform([1, 1, 1]) and trust.uniform([0, 0.05]) and not trust.uniform([1, 0])
    assert trust.trust_weight(0, [1, 0], [0.8, 0.0]) == (pytest.approx(0.3), 1.0)
    assert trust.trust_weight(500, [1, 0], [0.8, 0.0])[0] == pytest.approx(0.3 / math.e)
    # the critic favours the wrong answer (graded answer scores: 0.6 right, 0.3 wrong, both judged)
    weight, gamma = trust.trust_weight(0, [0.6, 0.3], [0.2, 0.9])
    assert weight == pytest.approx(0.3 * math.exp(0.2 - 0.9)) and gamma == pytest.approx(math.exp(2 * (0.2 - 0.9)))


def _calls(url: str, responses: list[str], **extra: Any) -> list[dict[str, Any]]:
    kwargs = {"critic_base_url": url, "critic_model": "judge", "critic_retries": 0, "critic_timeout_s": 5,
              "length_min_words": 1, "trust_grpo": True, "critic_template": "sophiavl_r1", **extra}
    return [dict(data_source="t", solution_str=r, ground_truth="fake", extra_info={}, **kwargs) for r in responses]


def test_uniform_groups_skip_the_critic(vlm) -> None:  # type: ignore[no-untyped-def]
    vlm._CLIENTS.clear()
    with CriticServer(fixed("<answer>0.8</answer>")) as server:
        right = asyncio.run(vlm.compute_score_group(_calls(server.base_url, [RIGHT.format(n=i) for i in range(4)])))
        wrong = asyncio.run(vlm.compute_score_group(_calls(server.base_url, [WRONG.format(n=i) for i in range(4)])))
        assert len(server.requests) == 0
        mixed = asyncio.run(vlm.compute_score_group(
            _calls(server.base_url, [RIGHT.format(n=10), WRONG.format(n=11), RIGHT.format(n=12), WRONG.format(n=13)]),
            step=500))
        assert len(server.requests) == 2  # only the right answers (acc >= 0.2) are judged
    assert [r["score"] for r in right] == [1.0] * 4 and [r["score"] for r in wrong] == [0.0] * 4
    assert all(r["trust_asked"] == 0.0 and r["trust_weight"] == 0.0 for r in right + wrong)
    w = 0.3 / math.e
    assert [r["score"] for r in mixed] == pytest.approx([1 + w * 0.8, 0.0, 1 + w * 0.8, 0.0])
    assert [r["trust_asked"] for r in mixed] == [1.0, 0.0, 1.0, 0.0]


def _orm_batch(monkeypatch: pytest.MonkeyPatch, url: str, orm_name: str, trust_on: bool) -> list[float]:
    from swift.rewards import orms

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("FAKEHR_REWARD_PATH", str(REWARDS / "fakevlm_r1.py"))
    monkeypatch.setenv("FAKEHR_REWARD_NAME", "compute_score")
    monkeypatch.setenv("FAKEHR_REWARD_ORM", orm_name)
    kwargs = {"critic_base_url": url, "critic_model": "judge", "critic_retries": 0, "length_min_words": 1,
              "critic_template": "sophiavl_r1"}
    if trust_on:
        kwargs["trust_grpo"] = True
    monkeypatch.setenv("FAKEHR_REWARD_KWARGS", json.dumps(kwargs))
    load("swift_orm")
    orm = orms[orm_name]()
    # two prompts of four rollouts each, in a row as ms-swift's sampler repeats them: a uniform and a mixed group
    completions = [RIGHT.format(n=f"a{i}") for i in range(4)] + \
        [RIGHT.format(n="b0"), WRONG.format(n="b1"), WRONG.format(n="b2"), RIGHT.format(n="b3")]
    images = [["a.png"]] * 4 + [["b.png"]] * 4
    messages = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": c}] for c in completions]
    return asyncio.run(orm(completions, solution=["fake"] * 8, images=images, messages=messages,
                           trainer_state=SimpleNamespace(global_step=0)))


def test_through_the_swift_adapter_the_critic_is_asked_per_mixed_group(monkeypatch: pytest.MonkeyPatch,
                                                                        vlm) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("swift")
    vlm._CLIENTS.clear()
    with CriticServer(fixed("<answer>0.5</answer>")) as server:
        scores = _orm_batch(monkeypatch, server.base_url, "t_trust_on", trust_on=True)
        assert len(server.requests) == 2  # the mixed group's two right answers; the uniform group: none
    assert scores == pytest.approx([1.0] * 4 + [1.15, 0.0, 0.0, 1.15])  # acc + 0.3 * 0.5 at step 0
    with CriticServer(fixed("<answer>0.5</answer>")) as server:
        _orm_batch(monkeypatch, server.base_url, "t_trust_off", trust_on=False)
        assert len(server.requests) == 8  # off (the default): every sample is judged, as before


def test_per_sample_calls_refuse_it_rather_than_ignore_it(vlm) -> None:  # type: ignore[no-untyped-def]
    """verl calls compute_score per sample: the gating cannot apply there, and saying so beats training without it."""
    with pytest.raises(ValueError, match="grpo.engine: swift"):
        asyncio.run(vlm.compute_score("t", RIGHT.format(n=0), "fake", {}, trust_grpo=True))
    assert any("trust_grpo is on" in n for n in vlm.preflight({"trust_grpo": True}))
    assert not any("trust_grpo" in n for n in vlm.preflight({"critic_base_url": "http://x/v1"}))
