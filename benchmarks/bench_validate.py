"""`fakehr-orchestra validate` vs verl's own `python -m verl.trainer.main_ppo <same overrides> --cfg job`.

Both run as fresh processes (each pays its imports, as a user would), alternated, on the same recipe's GRPO
overrides. --cfg job only composes the Hydra config; validate composes it too and also runs verl's
validate_config, the batch/parallel rules, cluster, image-budget, data, reward and prompt checks (and, for all
stages, every ms-swift flag of the SFT command against the installed ms-swift). Printed as ratios to the baseline.
The ms-swift flag table is cached per installed ms-swift (see preflight/swift_flags.py); the first run builds it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t0, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recipe", default="recipes/fakevlm_r1.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repeat")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats

    sys.path.insert(0, str(ROOT))
    from fakehr_orchestra.engines import render
    from fakehr_orchestra.recipe import load_recipe

    plan = render(load_recipe(ROOT / args.recipe), "grpo")
    stand_ins = {name: "1" for name in plan.env_refs}
    plan = plan.resolve({**os.environ, **stand_ins}) if plan.env_refs else plan
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
           "PYTHONWARNINGS": "ignore"}
    cfg_job = [sys.executable, "-m", "verl.trainer.main_ppo", *plan.argv[3:], "--cfg", "job"]
    validate = [str(BIN / "fakehr-orchestra"), "validate", args.recipe, "--remote-data", "--json"]
    cmds = {"verl --cfg job": cfg_job, "validate --stage grpo": validate + ["--stage", "grpo"],
            "validate (sft+grpo)": validate, "validate --fast (sft+grpo)": validate + ["--fast"]}
    runs: dict[str, list[float]] = {name: [] for name in cmds}
    found: dict[str, str] = {}
    import tempfile
    cache = tempfile.mkdtemp(prefix="fakehr-bench-swift-schema-")
    env["FAKEHR_SWIFT_SCHEMA_CACHE"] = cache  # start cold: the first run builds the table from ms-swift itself
    cold, proc = timed(validate, env)
    if proc.returncode not in (0, 1):
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    for _ in range(repeats):
        for name, cmd in cmds.items():
            seconds, proc = timed(cmd, env)
            if name.startswith("verl") and proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            if name.startswith("validate"):
                if proc.returncode not in (0, 1):
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 1
                rep = json.loads(proc.stdout)
                found[name] = f"{len(rep['errors'])} errors, {len(rep['warnings'])} warnings; checked: " \
                              + "; ".join(rep["checked"])
            runs[name].append(seconds)
    base = statistics.median(runs["verl --cfg job"])
    print(f"recipe {args.recipe}, {len(plan.argv) - 3} verl overrides, {repeats} alternated repeat(s), "
          f"{os.cpu_count()} CPUs")
    for name, times in runs.items():
        med = statistics.median(times)
        print(f"  {name:24s} median {med:6.2f} s  ratio {med / base:5.2f}x  (runs: "
              f"{', '.join(f'{t:.2f}' for t in times)})")
        if name in found:
            print(f"      {found[name]}")
    print(f"  first validate (sft+grpo) with no ms-swift flag cache: {cold:.2f} s, ratio {cold / base:.2f}x "
          "(imports ms-swift once to build the cache)")
    import shutil
    shutil.rmtree(cache, ignore_errors=True)
    print("  (ratio < 1: validate is faster than composing the config with verl itself; --fast skips only verl's "
          "own validate_config, whose rules also run restated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
