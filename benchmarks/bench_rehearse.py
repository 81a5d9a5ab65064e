"""`fakehr-orchestra validate --rehearse` of the smoke profile vs verl's own `main_ppo --cfg job`.

The rehearsal runs the frameworks' start-up code on CPU (verl's datasets for the train and val files with the real
processor, the reward function and manager loaded as verl loads them, a batch scored; ms-swift's template on the
first rows), in supervised child processes; `--cfg job` only composes verl's Hydra config. Both are fresh
processes, paying their imports as a user does. Target: the rehearsal of the smoke profile within 60 s
on 2 cores. Printed as seconds and as a ratio to the --cfg job baseline of the same run.

  .venv/bin/python benchmarks/bench_rehearse.py [--recipe recipes/fake_hr1.yaml] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_S = 60.0


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    return time.perf_counter() - t0, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="recipes/fake_hr1.yaml")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one repeat")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats

    sys.path.insert(0, str(ROOT))
    from fakehr_orchestra.engines import render
    from fakehr_orchestra.recipe import load_recipe

    overrides = ["grpo.engine=verl"]
    plan = render(load_recipe(ROOT / args.recipe, overrides, profile="smoke"), "grpo")
    plan = plan.resolve({**os.environ, **{name: "1" for name in plan.env_refs}}) if plan.env_refs else plan
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
           "PYTHONWARNINGS": "ignore"}
    cmds = {"verl main_ppo --cfg job": [sys.executable, "-m", "verl.trainer.main_ppo", *plan.argv[3:], "--cfg", "job"],
            "validate --rehearse (smoke)": [str(BIN / "fakehr-orchestra"), "validate", args.recipe, "-p", "smoke",
                                            *overrides, "--rehearse"]}
    runs: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            seconds, proc = timed(cmd, env)
            if proc.returncode != 0:
                print(f"{name} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}",
                      file=sys.stderr)
                return 1
            runs[name].append(seconds)
    base = statistics.median(runs["verl main_ppo --cfg job"])
    print(f"cores: {len(os.sched_getaffinity(0))}, repeats: {repeats}, recipe: {args.recipe} --profile smoke")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"{name:<30} {median:7.1f} s   {median / base:5.1f}x the --cfg job baseline")
    rehearse = statistics.median(runs["validate --rehearse (smoke)"])
    print(f"target: rehearsal <= {TARGET_S:.0f} s on 2 cores: {'met' if rehearse <= TARGET_S else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
