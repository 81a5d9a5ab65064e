"""`estimate` speed.

Baseline, measured in the same run: `fakehr-orchestra render` of the same recipe (the CLI's light path). Reported:
median wall time of both as subprocesses, their ratio, and the in-process time of one estimate (both stages, advice
search included) after the recipe is loaded.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RECIPE = "recipes/fake_hr1.yaml"
REPEAT = 7


def wall(argv: list[str]) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from fakehr_orchestra.estimate.gpus import lookup
    from fakehr_orchestra.estimate.recipe_estimate import estimate_recipe
    from fakehr_orchestra.recipe import load_recipe

    cli = [sys.executable, "-m", "fakehr_orchestra"]
    render = wall(cli + ["render", RECIPE, "--stage", "sft"])
    estimate = wall(cli + ["estimate", RECIPE, "--gpu", "h100-80gb"])
    recipe = load_recipe(str(ROOT / RECIPE), (), None)
    start = time.perf_counter()
    n = 20
    for _ in range(n):
        estimate_recipe(recipe, lookup("h100-80gb"))
    one = (time.perf_counter() - start) / n
    print(f"render   (baseline)   {render:6.3f} s")
    print(f"estimate both stages  {estimate:6.3f} s   ({estimate / render:.2f} x render; target < 2 s)")
    print(f"estimate in-process   {one * 1000:6.1f} ms per recipe (both stages, advice search included)")


if __name__ == "__main__":
    main()
