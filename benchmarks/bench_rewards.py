"""Reward benchmarks, printed as ratios against a baseline run in the same process.

1. Rule-based scoring on one core: N synthetic responses (default 100,000; a mix of well-formed think / no-think,
   wrong, junk and long answers) through the Fake-HR1 `compute_score` and the FakeVLM-R1 rule components
   (no critic). Baseline: the bare strict parser (`parse_answer`) on the same responses, i.e. the reward's
   overhead over the parsing every consumer pays anyway.
2. Critic path against a local OpenAI-compatible server on 127.0.0.1 answering after a fixed latency (default
   50 ms): M distinct responses scored through the FakeVLM-R1 `compute_score` sequentially (one await at a time:
   the baseline) and concurrently (gathered, critic_concurrency C), same client settings, same run.

    python benchmarks/bench_rewards.py [--responses 100000] [--critic 200] [--latency 0.05] [--concurrency 32]
                                       [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def plugin(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "rewards" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


WORDS = "the shadows fall two ways and the text on the sign is warped while skin looks waxy".split()


def synth(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(fake_hr1 response, fakevlm_r1 response, truth)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        truth = rng.choice(["real", "fake"])
        label = truth if rng.random() < 0.7 else rng.choice(["real", "fake", "unrealistic", "", "Real.", "fake real"])
        reasoning = " ".join(rng.choice(WORDS) for _ in range(rng.choice([0, 0, 20, 60, 200, 600])))
        kind = rng.random()
        if kind < 0.85:
            hr1 = f"<think>\n{reasoning}\n</think>\n\n{label}" if reasoning else f"<think>\n\n</think>\n\n{label}"
        elif kind < 0.95:
            hr1 = f"{reasoning} {label}"
        else:
            hr1 = f"<think>\n{reasoning}<think></think>\n{label}</think>"
        pairs = "\n".join(f"[Why fake] {rng.choice(WORDS)} {rng.choice(WORDS)}\n[If real] {rng.choice(WORDS)}"
                          for _ in range(rng.randint(0, 4)))
        vlm = f"<think>\n{pairs}\n{reasoning}\n</think>\n<answer>{label.capitalize()}</answer>"
        out.append((hr1, vlm, truth))
    return out


def bench_rules(n: int) -> None:
    from fakehr_orchestra.answers import parse_answer

    hr1, vlm = plugin("fake_hr1"), plugin("fakevlm_r1")
    data = synth(n)
    timings = {}
    for name, run in (("parse fake_hr1", lambda: [parse_answer(a, "fake_hr1") for a, _, _ in data]),
                      ("parse fakevlm_r1", lambda: [parse_answer(b, "fakevlm_r1") for _, b, _ in data]),
                      ("fake_hr1", lambda: [hr1.compute_score("bench", a, t) for a, _, t in data]),
                      ("fakevlm_r1", lambda: [vlm.score_rules(b, t) for _, b, t in data])):
        start = time.perf_counter()
        run()
        timings[name] = time.perf_counter() - start
    print(f"rule-based scoring, {n:,} responses, 1 core (baseline: the bare strict parser on the same responses)")
    for name in ("fake_hr1", "fakevlm_r1"):
        base, t = timings[f"parse {name}"], timings[name]
        print(f"  {name:<11} parse_answer (baseline) {n / base:10,.0f} responses/s")
        print(f"  {name:<11} compute_score           {n / t:10,.0f} responses/s   ({t / base:.2f}x the parse time)")


def bench_critic(m: int, latency: float, concurrency: int) -> None:
    from tests.rewards.critic_server import CriticServer, fixed

    vlm = plugin("fakevlm_r1")
    responses = [f"<think>\n[Why fake] clue {i}\n[If real] counter {i}\n</think>\n<answer>Fake</answer>"
                 for i in range(m)]
    with CriticServer(fixed('{"score": 0.7}', delay_s=latency)) as server:
        def kwargs(tag: str) -> dict[str, Any]:
            # a different model name per mode: separate clients, so the second mode gets no cache hits
            return {"critic_base_url": server.base_url, "critic_model": f"judge-{tag}", "critic_timeout_s": 10,
                    "critic_concurrency": concurrency, "critic_retries": 0}

        async def close() -> None:
            for client in vlm._CLIENTS.values():
                await client.aclose()

        async def sequential() -> list[dict[str, float]]:
            out = [await vlm.compute_score("b", r, "fake", None, **kwargs("seq")) for r in responses]
            await close()
            return out

        async def concurrent() -> list[dict[str, float]]:
            out = list(await asyncio.gather(*(vlm.compute_score("b", r, "fake", None, **kwargs("conc"))
                                              for r in responses)))
            await close()
            return out

        timings = {}
        for name, fn in (("sequential", sequential), ("concurrent", concurrent)):
            start = time.perf_counter()
            results = asyncio.run(fn())
            timings[name] = time.perf_counter() - start
            assert all(r["consistency"] == 0.7 and r["critic_failures"] == 0 for r in results), name
        requests = len(server.requests)
    assert requests == 2 * m, requests
    print(f"critic path, {m} responses, server latency {latency * 1000:.0f} ms, concurrency {concurrency} "
          "(client and server threads share the one core)")
    print(f"  sequential (baseline)           {m / timings['sequential']:12,.1f} responses/s")
    print(f"  concurrent                      {m / timings['concurrent']:12,.1f} responses/s   "
          f"({timings['sequential'] / timings['concurrent']:.1f}x the baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--critic", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="10,000 responses, 64 critic calls")
    args = parser.parse_args()
    if args.quick:
        args.responses, args.critic = 10_000, 64
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    bench_rules(args.responses)
    bench_critic(args.critic, args.latency, args.concurrency)


if __name__ == "__main__":
    main()
