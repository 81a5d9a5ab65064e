"""Critic-scored rewards per second through the REAL local critic server, at concurrency 1 vs the recipe's.

The server is the recipe's own critic plan (`fakehr-orchestra render RECIPE --stage critic`: by default
fakevlm_r1.yaml with the smoke profile, i.e. `swift deploy --infer_backend transformers` serving the tiny
Qwen2.5-VL on CPU), started and waited for exactly as the pipeline does (launch.service.Service + the readiness
probe). N distinct FakeVLM-R1 responses, each with a real image, go through the reward's `compute_score` with the
recipe's critic settings: once with critic_concurrency 1 (the baseline) and once with the recipe's
`critic.concurrency`, in the same process against the same server. Printed: rewards/s for each and the ratio.

The tiny model's replies are junk, so every sample ends on the fallback after its retries: the figure measures the
critic path (HTTP, the server's batching, retries), which is what concurrency changes. On GPUs pass the full recipe
without a profile to measure a real judge.

    python benchmarks/bench_critic.py [--recipe recipes/fakevlm_r1.yaml] [--profile smoke] [--responses 32]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import sys
import tempfile
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def score_all(vlm: Any, responses: list[str], images: list[str], kwargs: dict[str, Any]) -> tuple[float, list]:
    async def run() -> list[dict[str, float]]:
        out = list(await asyncio.gather(*(vlm.compute_score("bench", r, "fake", {"image": img}, **kwargs)
                                          for r, img in zip(responses, images))))
        await vlm.aclose()
        return out
    start = time.perf_counter()
    results = asyncio.run(run())
    return time.perf_counter() - start, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "fakevlm_r1.yaml"))
    parser.add_argument("--profile", default="smoke", help="'' for none")
    parser.add_argument("--responses", type=int, default=32)
    parser.add_argument("--fixtures", default=str(ROOT / ".cache" / "tiny"))
    args = parser.parse_args()

    from fakehr_orchestra.critic.probe import wait_ready
    from fakehr_orchestra.engines import render
    from fakehr_orchestra.engines.critic import endpoint, reward_kwargs
    from fakehr_orchestra.launch.service import Service
    from fakehr_orchestra.recipe import load_recipe

    overrides = [f"critic.server.port={free_port()}"]
    if args.profile == "smoke":
        from fakehr_orchestra.tinyworld import build_tiny

        build_tiny(Path(args.fixtures))
        overrides.append(f"vars.fixtures={args.fixtures}")
    recipe = load_recipe(args.recipe, overrides, args.profile or None)
    critic = recipe.model.critic
    images = sorted(str(p) for p in Path(args.fixtures, "data").rglob("*.png"))[:8] or [""]
    responses = [f"<think>\n[Why fake] the shadow of object {i} points away from the light\n[If real] a second "
                 f"light source {i} off frame casts it\n</think>\n<answer>Fake</answer>" for i in range(args.responses)]
    pictures = [images[i % len(images)] for i in range(args.responses)]
    plan = render(recipe, "critic")
    log = Path(tempfile.mkdtemp(prefix="bench-critic-")) / "critic.log"
    service = Service(plan, log).start()
    try:
        ready = wait_ready(str(endpoint(recipe.model)), critic.served_model_name, critic.server.ready_timeout_s,
                           alive=lambda: None if service.alive() else f"exit code {service.returncode()}")
        if not ready.ok:
            print(f"critic not ready: {ready.message} (log {log})", file=sys.stderr)
            return 1
        vlm = plugin("fakevlm_r1")
        base = reward_kwargs(recipe.model)
        timings = {}
        for concurrency in (1, critic.concurrency):
            vlm._CLIENTS.clear()  # a fresh client: no cache hits from the other run
            kwargs = dict(base, critic_concurrency=concurrency)
            score_all(vlm, [r + " warm-up" for r in responses[:2]], pictures[:2], kwargs)
            vlm._CLIENTS.clear()  # (warm-up above: the server's first requests are slower)
            seconds, results = score_all(vlm, responses, pictures, kwargs)
            stats = next(iter(vlm._CLIENTS.values())).stats
            assert stats.calls == len(responses) and stats.replies > 0, stats
            timings[concurrency] = (seconds, stats)
    finally:
        service.stop()
    n = args.responses
    print(f"critic through `{' '.join(plan.argv[:6])} ...` ({critic.served_model_name}, max_tokens "
          f"{critic.max_tokens}, retries {critic.retries}), {n} rewards, each with an image")
    for concurrency, (seconds, stats) in timings.items():
        label = "concurrency 1 (baseline)" if concurrency == 1 else f"concurrency {concurrency} (the recipe's)"
        print(f"  {label:<28} {n / seconds:8.2f} rewards/s   ({stats.requests} requests, {stats.replies} replies, "
              f"answered {stats.answered}, fallback {stats.fallbacks})")
    (s1, _), (sc, _) = timings[1], timings[critic.concurrency]
    print(f"  ratio: {s1 / sc:.2f}x the baseline's rewards/s at concurrency {critic.concurrency}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
