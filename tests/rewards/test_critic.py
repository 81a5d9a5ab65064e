"""The critic client against a real HTTP server on 127.0.0.1: slow answers, errors, timeouts, garbage scores,
the server going down mid-run. The reward keeps working and reports failures; the API key is never logged."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import pytest

from tests.rewards.critic_server import CriticServer, fixed

GOOD = "<think>\n[Why fake] warped letters\n[If real] a moving sign blurs\n</think>\n<answer>Fake</answer>"


def variant(tag: str) -> str:
    """A response with its own reasoning (the cache is keyed by image + reasoning/answer)."""
    return GOOD.replace("warped letters", f"warped letters {tag}")


@pytest.fixture(scope="module")
def vlm(plugin):  # type: ignore[no-untyped-def]
    return plugin("fakevlm_r1")


@pytest.fixture(scope="module")
def critic(vlm):  # type: ignore[no-untyped-def]
    return vlm._critic  # loaded (and registered) by the plugin, as in a real run


def kwargs(url: str, **extra: object) -> dict[str, object]:
    base = {"critic_base_url": url, "critic_model": "judge", "critic_timeout_s": 0.5, "critic_retries": 1,
            "critic_concurrency": 4, "critic_fallback_score": 0.25, "length_min_words": 1}
    base.update(extra)
    return base


async def score_many(vlm, responses: list[str], **kw: object) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    results = await asyncio.gather(*(vlm.compute_score("fakeclue", r, "fake", {"image": None}, **kw)
                                     for r in responses))
    for client in vlm._CLIENTS.values():
        await client.aclose()
    return results


def fresh(vlm) -> None:  # type: ignore[no-untyped-def]
    vlm._CLIENTS.clear()  # a new client (empty cache, closed breaker) per scenario


@pytest.mark.parametrize("reply,expected", [
    ('{"score": 0.7}', 0.7), ("Score: 0.9", 0.9), ("8/10", 0.8), ("75%", 0.75), ("0.3", 0.3),
    ('```json\n{"score": 1.4}\n```', 1.0), ("score = -2", 0.0), ("The reasoning is sound. {\"score\": 0.6}", 0.6),
    ("banana", None), ("", None), ('{"score": "nan"}', None), ("score: inf", None), (None, None),
])
def test_parse_score(critic, reply: object, expected: float | None) -> None:  # type: ignore[no-untyped-def]
    value = critic.parse_score(reply)
    assert value == (None if expected is None else pytest.approx(expected))


def test_scores_cache_and_key_never_logged(vlm, monkeypatch, caplog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fresh(vlm)
    monkeypatch.setenv("TEST_CRITIC_KEY", "sk-very-secret")
    image = tmp_path / "img.png"
    image.write_bytes(b"\x89PNG fake bytes")
    with CriticServer(fixed('{"score": 0.8}')) as server, caplog.at_level(logging.DEBUG):
        kw = kwargs(server.base_url, critic_api_key_env="TEST_CRITIC_KEY")

        async def run() -> list[dict[str, float]]:
            first = await vlm.compute_score("d", GOOD, "fake", {"image": str(image)}, **kw)
            again = await vlm.compute_score("d", GOOD, "fake", {"image": str(image)}, **kw)  # cached
            other = await vlm.compute_score("d", GOOD, "fake", {"image": None}, **kw)  # other image: new key
            for client in vlm._CLIENTS.values():
                await client.aclose()
            return [first, again, other]

        results = asyncio.run(run())
    assert [r["consistency"] for r in results] == [0.8, 0.8, 0.8]
    assert len(server.requests) == 2
    assert server.auth == ["Bearer sk-very-secret"] * 2
    content = server.requests[0]["messages"][1]["content"]
    assert content[0]["type"] == "image_url" and content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "warped letters" in content[-1]["text"] and server.requests[0]["model"] == "judge"
    assert results[0]["critic_failures"] == 0 and results[0]["critic_fallback"] == 0
    # score = (1*1 + .5*1 + .5*1 + .25*1 + .5*.8) / 2.75
    assert results[0]["score"] == pytest.approx((1 + 0.5 + 0.5 + 0.25 + 0.5 * 0.8) / 2.75)
    client = next(iter(vlm._CLIENTS.values()))
    assert "sk-very-secret" not in repr(client) and "sk-very-secret" not in caplog.text


def test_slow_answers_within_timeout_overlap(vlm) -> None:  # type: ignore[no-untyped-def]
    fresh(vlm)
    with CriticServer(fixed('{"score": 0.9}', delay_s=0.3)) as server:
        start = time.perf_counter()
        results = asyncio.run(score_many(vlm, [variant(str(i)) for i in range(8)], **kwargs(server.base_url)))
        elapsed = time.perf_counter() - start
    assert all(r["consistency"] == 0.9 and r["critic_failures"] == 0 for r in results)
    assert len(server.requests) == 8
    assert elapsed < 8 * 0.3 * 0.75  # concurrency 4: ~2 rounds of 0.3 s, not 8


def test_errors_then_success_are_retried(vlm) -> None:  # type: ignore[no-untyped-def]
    fresh(vlm)
    behave = lambda n, body: (500, "boom", 0.0) if n == 0 else (200, '{"score": 0.6}', 0.0)  # noqa: E731
    with CriticServer(behave) as server:
        (result,) = asyncio.run(score_many(vlm, [GOOD], **kwargs(server.base_url)))
    assert result["consistency"] == 0.6 and result["critic_failures"] == 1 and result["critic_fallback"] == 0


@pytest.mark.parametrize("behave,kind", [
    (lambda n, body: (503, "overloaded", 0.0), "http_503"),
    (lambda n, body: (200, "I cannot judge this image.", 0.0), "unparseable_score"),
    (lambda n, body: (200, '{"score": NaN}', 0.0), "unparseable_score"),
    (lambda n, body: (200, "ok", 2.0), "timeout"),
    (lambda n, body: (401, "no key", 0.0), "http_401"),
])
def test_failures_fall_back_and_are_counted(vlm, behave, kind: str) -> None:  # type: ignore[no-untyped-def]
    fresh(vlm)
    with CriticServer(behave) as server:
        start = time.perf_counter()
        (result,) = asyncio.run(score_many(vlm, [GOOD], **kwargs(server.base_url)))
        assert time.perf_counter() - start < 3.0
    assert result["consistency"] == 0.25 and result["critic_fallback"] == 1.0
    assert result["critic_failures"] == (1 if kind == "http_401" else 2)  # 401 is not retried
    client = next(iter(vlm._CLIENTS.values()))
    assert kind in client.stats.errors
    assert all(math.isfinite(v) for v in result.values()) and 0.0 <= result["score"] <= 1.0


def test_server_down_mid_run_and_breaker(vlm) -> None:  # type: ignore[no-untyped-def]
    fresh(vlm)
    server = CriticServer(fixed('{"score": 1.0}'))
    with server:
        kw = kwargs(server.base_url, critic_retries=0)
        before = asyncio.run(score_many(vlm, [variant(f"a{i}") for i in range(4)], **kw))
        server.stop()
        start = time.perf_counter()
        after = asyncio.run(score_many(vlm, [variant(f"b{i}") for i in range(20)], **kw))
        elapsed = time.perf_counter() - start
    assert [r["consistency"] for r in before] == [1.0] * 4
    assert all(r["consistency"] == 0.25 and r["critic_fallback"] == 1.0 for r in after)
    client = next(iter(vlm._CLIENTS.values()))
    # after 8 consecutive failures the breaker skips the critic: fewer than 20 requests were tried
    assert client.stats.skipped_by_breaker >= 1 and client.stats.failures <= 20
    assert sum(r["critic_failures"] for r in after) == client.stats.failures
    assert elapsed < 5.0


def test_no_endpoint_drops_the_component_and_renormalises(vlm) -> None:  # type: ignore[no-untyped-def]
    result = asyncio.run(vlm.compute_score("d", GOOD, "fake", None, length_min_words=1))
    assert "consistency" not in result and "critic_failures" not in result
    assert result["score"] == pytest.approx(1.0)  # every rule component is 1; denominator lost w_consistency
    wrong = asyncio.run(vlm.compute_score("d", GOOD, "real", None, length_min_words=1))
    assert wrong["score"] == pytest.approx((0.5 + 0.5 + 0.25) / 2.25)


def test_replies_without_a_score_are_counted_but_do_not_trip_the_breaker(vlm, capsys) -> None:  # type: ignore[no-untyped-def]
    """A judge that answers junk (the tiny smoke critic) is up: every reply is a counted failure and a fallback,
    but the critic is still asked (only requests that got no reply open the breaker)."""
    fresh(vlm)
    with CriticServer(fixed("banana")) as server:
        results = asyncio.run(score_many(vlm, [variant(f"j{i}") for i in range(12)], **kwargs(server.base_url)))
    assert all(r["critic_fallback"] == 1.0 and r["critic_failures"] == 2 for r in results)
    client = next(iter(vlm._CLIENTS.values()))
    assert len(server.requests) == 24 and client.stats.skipped_by_breaker == 0  # 12 x (1 + 1 retry)
    assert (client.stats.replies, client.stats.answered, client.stats.fallbacks) == (24, 0, 12)
    assert client.stats.errors == {"unparseable_score": 24}
    # the summary line the training log gets (first scored call; again at exit)
    err = capsys.readouterr().err
    assert f"[fakehr critic] {server.base_url} model judge" in err and "answered 0" in err
    client.report(final=True)
    line = capsys.readouterr().err
    assert "at exit: calls 12: answered 0, fallback 12" in line and "replies 24, failed 24 (unparseable_score 24)" \
        in line
