"""CLI start-up and render speed.

Baseline, measured in the same run: a bare `python -c pass` (interpreter start-up). Reported: wall time of
`fakehr-orchestra --help` and `render` as subprocesses and as ratios against the baseline, plus in-process
load+render time against a plain yaml.safe_load of the same recipe.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "fake_hr1.yaml"
REPEAT = 7


def wall(argv: list[str]) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(fn, n: int = 50) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    import yaml

    from fakehr_orchestra.engines import render
    from fakehr_orchestra.recipe import load_recipe

    py = [sys.executable]
    base = wall(py + ["-c", "pass"])
    cli = py + ["-m", "fakehr_orchestra"]
    rows = [("--help", wall(cli + ["--help"])),
            ("render sft (shell)", wall(cli + ["render", str(RECIPE), "--stage", "sft"])),
            ("render grpo -p smoke (json)", wall(cli + ["render", str(RECIPE), "--stage", "grpo", "-p", "smoke",
                                                        "--format", "json"]))]
    print(f"baseline python -c pass: {base * 1000:.0f} ms (median of {REPEAT})")
    for name, t in rows:
        print(f"{name:<30} {t * 1000:6.0f} ms  = {t / base:4.1f}x baseline")
    text = RECIPE.read_text()
    y = in_process(lambda: yaml.safe_load(text))
    r = in_process(lambda: (render(load_recipe(RECIPE), "sft"), render(load_recipe(RECIPE), "grpo")))
    print(f"in-process load+render both stages: {r * 1000:.1f} ms = {r / y:.1f}x a plain yaml.safe_load "
          f"({y * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
