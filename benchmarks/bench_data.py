"""Data stage throughput and memory against the loop every lab writes, on generated GenImage-layout trees.

Prints, side by side in one process run:
  * tiny images (8x8 PNG/JPEG, 100k by default), header check: records/s of the data stage (import + image checks
    on all cores + split + validate + export of sft/grpo jsonl, verl parquet and eval jsonl) and of a naive
    single-process loop (open each image with PIL, verify, write one json line), as a ratio. Target: >= 1.0x.
  * realistic images (320x256 JPEG/PNG with texture, 10k by default), full decode: the stage with
    `data.check=full` against the naive loop with `img.load()`. Target: >= 1.6x. Decoding dominates (milliseconds
    per image); the stage's fixed costs (spawning the pool and the export child, about 0.5-1 s, and the final
    pass) weigh less as the count grows (measured: 1.63x at 10k, 1.75x at 30k), so 10k, which keeps the tree
    under 1 GB, is the harder test.
    A shared host's speed drifts by 10-20% between runs of the same work, so the realistic comparison is run in
    rounds (naive, stage; stage, naive; ...), each round's ratio printed and the median judged. Beside it, the
    ceiling: the same naive loop split over every core (no hashing, no exports), i.e. what perfect parallelism
    gives on this host (two cores of a VM do not give 2x: the decoder slows when both run).
  * peak memory (max RSS of the stage's main process, measured in a fresh subprocess) at 10k and at the full tiny
    count: it should stay flat (ratio <= 1.15), since every pass streams in bounded chunks.

  .venv/bin/python benchmarks/bench_data.py            # 100k tiny + 10k realistic (about 5 minutes on 2 cores)
  .venv/bin/python benchmarks/bench_data.py --quick    # 20k tiny + 2000 realistic, for a fast look
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PER_GEN = 10_000  # images per generator folder: the 10k run reads one generator, the full run all of them


def _make(args: tuple[str, int, int]) -> None:
    from PIL import Image

    folder, start, count = args
    for i in range(start, start + count):
        fake = i % 2 == 0
        cls = "ai" if fake else "nature"
        img = Image.new("RGB", (8, 8), ((i * 7) % 256, (i // 256) % 256, (i // 65536) % 256))
        img.putpixel((i % 8, (i // 8) % 8), (255 - (i % 256), 0, 0))
        buf = io.BytesIO()
        img.save(buf, format="PNG" if fake else "JPEG", quality=90)
        path = Path(folder) / "train" / cls / f"{i}.{'png' if fake else 'jpg'}"
        path.write_bytes(buf.getvalue())


def _make_realistic(args: tuple[str, int, int]) -> None:
    """Photo-like content (smooth gradients, edges and sensor-like noise), so PNG and JPEG sizes are realistic."""
    import numpy as np
    from PIL import Image

    folder, start, count = args
    for i in range(start, start + count):
        rng = np.random.default_rng(i)
        yy, xx = np.mgrid[0:256, 0:320].astype(np.float32)
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.01, 0.05)
        base = 128 + 90 * np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        channels = [np.clip(base * rng.uniform(0.6, 1.2) + rng.normal(0, 6, base.shape), 0, 255) for _ in range(3)]
        img = Image.fromarray(np.stack(channels, -1).astype(np.uint8))
        fake = i % 2 == 0
        cls = "ai" if fake else "nature"
        img.save(Path(folder) / "train" / cls / f"{i}.{'png' if fake else 'jpg'}", quality=90)


def generate_realistic(root: Path, n: int) -> None:
    folder = root / "gen0"
    for cls in ("ai", "nature"):
        (folder / "train" / cls).mkdir(parents=True, exist_ok=True)
    with multiprocessing.Pool() as pool:
        pool.map(_make_realistic, [(str(folder), s, min(250, n - s)) for s in range(0, n, 250)])


def generate(root: Path, n: int) -> None:
    gens = max(1, n // PER_GEN)
    jobs = []
    for g in range(gens):
        folder = root / f"gen{g}"
        for cls in ("ai", "nature"):
            (folder / "train" / cls).mkdir(parents=True, exist_ok=True)
        for start in range(0, PER_GEN, 2000):
            jobs.append((str(folder), g * PER_GEN + start, min(2000, PER_GEN - start)))
    with multiprocessing.Pool() as pool:
        pool.map(_make, jobs)


def stage_script(source_root: Path, out: Path, check: str = "header") -> str:
    return f"""
import json, resource, sys, time
sys.path.insert(0, {str(ROOT)!r})
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.data.stage import prepare
src = "[{{name: bench, kind: genimage, path: {source_root}, label_convention: genimage}}]"
model = load_recipe({str(ROOT / 'recipes/fake_hr1.yaml')!r}, ["data.sources=" + src, "data.split.test_fraction=0.01",
                                                           "data.check={check}"]).model
t = time.perf_counter()
arts = prepare(model, {str(out)!r})
dt = time.perf_counter() - t
n = json.load(open(arts["validation"]))["total"]
print(json.dumps({{"seconds": dt, "records": n,
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "children_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""


def run_stage(source_root: Path, out: Path, check: str = "header") -> dict:
    proc = subprocess.run([sys.executable, "-c", stage_script(source_root, out, check)], capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        sys.exit(f"data stage failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm(root: Path) -> None:
    """Read every file once, so neither side pays for cold disk reads (the naive loop runs first)."""
    for dirpath, _, files in os.walk(root, followlinks=True):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as handle:
                handle.read()


def naive(root: Path, out: Path, full: bool = False) -> tuple[float, int]:
    """The hand-written loop every lab writes: walk, open each image with PIL, verify (or decode), write json."""
    from PIL import Image

    t = time.perf_counter()
    n = 0
    with open(out, "w") as handle:
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                try:
                    with Image.open(path) as img:
                        img.load() if full else img.verify()
                    ok = True
                except Exception:
                    ok = False
                label = "fake" if os.path.basename(dirpath) == "ai" else "real"
                handle.write(json.dumps({"file_path": path, "label": label, "ok": ok}) + "\n")
                n += 1
    return time.perf_counter() - t, n


def _decode_all(paths: list[str]) -> int:
    from PIL import Image

    for path in paths:
        with Image.open(path) as img:
            img.load()
    return len(paths)


def ceiling(root: Path) -> tuple[float, int]:
    """The naive full decode spread over every core (a pool started beforehand, files dealt round-robin): the
    most any parallel stage could reach here, with nothing else to do."""
    paths = sorted(os.path.join(d, name) for d, _, files in os.walk(root) for name in files)
    cores = len(os.sched_getaffinity(0))
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(_decode_all, [[] for _ in range(cores)])  # started, PIL imported
        t = time.perf_counter()
        n = sum(pool.map(_decode_all, [paths[i::cores] for i in range(cores)]))
        return time.perf_counter() - t, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20k tiny + 2000 realistic images")
    parser.add_argument("--size", type=int, default=None, help="tiny images (a multiple of 10000)")
    parser.add_argument("--realistic", type=int, default=None, help="realistic images (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="realistic comparison rounds (the median is judged)")
    parser.add_argument("--keep", default=None, help="reuse / keep the generated trees in this folder")
    args = parser.parse_args()
    size = args.size or (20_000 if args.quick else 100_000)
    realistic = args.realistic if args.realistic is not None else (2000 if args.quick else 10_000)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_data_"))
    tree = work / "tree"
    try:
        t = time.perf_counter()
        if not (tree / f"gen{size // PER_GEN - 1}").exists():
            generate(tree, size)
        real_tree = work / f"realistic{realistic}"
        if realistic and not real_tree.exists():
            generate_realistic(real_tree, realistic)
        print(f"generated {size} tiny and {realistic} realistic images in {time.perf_counter() - t:.1f}s under {work}")
        small = work / "small"  # one generator folder = 10k images
        small.mkdir(exist_ok=True)
        if not (small / "gen0").exists():
            (small / "gen0").symlink_to(tree / "gen0")

        warm(tree)
        naive_s, naive_n = naive(tree, work / "naive.jsonl")
        full = run_stage(tree, work / "out_full")
        ten = run_stage(small, work / "out_10k")
        cores = len(os.sched_getaffinity(0))
        stage_rate, naive_rate = full["records"] / full["seconds"], naive_n / naive_s
        tiny_ratio = stage_rate / naive_rate
        print(f"cores: {cores}, load average before the realistic run: {os.getloadavg()[0]:.2f}")
        print(f"{'':50}{'records':>9}{'seconds':>9}{'records/s':>11}")
        print(f"{'tiny: naive loop (PIL verify + json)':50}{naive_n:>9}{naive_s:>9.1f}{naive_rate:>11.0f}")
        print(f"{'tiny: data stage (import..export)':50}{full['records']:>9}{full['seconds']:>9.1f}{stage_rate:>11.0f}")
        print(f"ratio stage/naive, tiny images, header check: {tiny_ratio:.2f}x  (target >= 1.0x; the stage also "
              f"hashes, dedups, checks leakage, splits and writes 4 exports + manifest)")
        if realistic:
            warm(real_tree)
            ratios = []
            for r in range(max(1, args.rounds)):
                # alternate the order, so a drift of the host's speed favours neither side
                for side in ("naive", "stage") if r % 2 == 0 else ("stage", "naive"):
                    if side == "naive":
                        rn_s, rn_n = naive(real_tree, work / "naive_real.jsonl", full=True)
                    else:
                        real = run_stage(real_tree, work / "out_real", check="full")
                ratios.append((real["records"] / real["seconds"]) / (rn_n / rn_s))
                print(f"{f'realistic {r + 1}: naive loop (PIL load + json)':50}{rn_n:>9}{rn_s:>9.1f}"
                      f"{rn_n / rn_s:>11.0f}")
                print(f"{f'realistic {r + 1}: data stage, data.check=full':50}{real['records']:>9}"
                      f"{real['seconds']:>9.1f}{real['records'] / real['seconds']:>11.0f}   ratio {ratios[-1]:.2f}x")
            cs, cn = ceiling(real_tree)
            print(f"{'realistic: naive decode on all cores':50}{cn:>9}{cs:>9.1f}{cn / cs:>11.0f}   "
                  f"ceiling {(cn / cs) / (rn_n / rn_s):.2f}x against the last naive run")
            median = statistics.median(ratios)
            print(f"ratio stage/naive, realistic images, full decode: median {median:.2f}x of "
                  f"{', '.join(f'{x:.2f}' for x in ratios)}  (target >= 1.6x)")
        mem_ratio = full["rss_mb"] / ten["rss_mb"]
        print(f"peak RSS of the stage's main process: {ten['records']} records {ten['rss_mb']:.0f} MB, "
              f"{full['records']} records {full['rss_mb']:.0f} MB  (ratio {mem_ratio:.2f}, target <= 1.15); "
              f"largest worker {ten['children_rss_mb']:.0f} / {full['children_rss_mb']:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
