"""Data stage throughput and memory on a generated 100k-image GenImage-like tree of tiny PNG/JPEG files.

Prints, side by side in one process run:
  * records/s of the data stage (import + image checks on all cores + split + validate + export of sft/grpo jsonl,
    verl parquet and eval jsonl), and of a naive single-process loop (open each image with PIL, verify, write one
    json line), as a ratio;
  * peak memory (max RSS of the stage's main process, measured in a fresh subprocess) at 10k and 100k records:
    it should stay flat, since every pass streams in bounded chunks.

  .venv/bin/python benchmarks/bench_data.py            # 100k images (default; a few minutes on 2 cores)
  .venv/bin/python benchmarks/bench_data.py --quick    # 20k images, for a fast look
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
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


def stage_script(source_root: Path, out: Path) -> str:
    return f"""
import json, resource, sys, time
sys.path.insert(0, {str(ROOT)!r})
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.data.stage import prepare
src = "[{{name: bench, kind: genimage, path: {source_root}, label_convention: genimage}}]"
model = load_recipe({str(ROOT / 'recipes/fake_hr1.yaml')!r}, ["data.sources=" + src, "data.split.test_fraction=0.01"]).model
t = time.perf_counter()
arts = prepare(model, {str(out)!r})
dt = time.perf_counter() - t
n = json.load(open(arts["validation"]))["total"]
print(json.dumps({{"seconds": dt, "records": n,
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "children_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""


def run_stage(source_root: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", stage_script(source_root, out)], capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        sys.exit(f"data stage failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def naive(root: Path, out: Path) -> tuple[float, int]:
    """The hand-written loop every lab writes: walk, open each image with PIL, verify, write json."""
    from PIL import Image

    t = time.perf_counter()
    n = 0
    with open(out, "w") as handle:
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                try:
                    with Image.open(path) as img:
                        img.verify()
                    ok = True
                except Exception:
                    ok = False
                label = "fake" if os.path.basename(dirpath) == "ai" else "real"
                handle.write(json.dumps({"file_path": path, "label": label, "ok": ok}) + "\n")
                n += 1
    return time.perf_counter() - t, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20k images instead of 100k")
    parser.add_argument("--size", type=int, default=None, help="total images (a multiple of 10000)")
    parser.add_argument("--keep", default=None, help="reuse / keep the generated tree in this folder")
    args = parser.parse_args()
    size = args.size or (20_000 if args.quick else 100_000)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_data_"))
    tree = work / "tree"
    try:
        t = time.perf_counter()
        if not (tree / f"gen{size // PER_GEN - 1}").exists():
            generate(tree, size)
        print(f"generated {size} tiny PNG/JPEG images in {time.perf_counter() - t:.1f}s under {tree}")
        small = work / "small"  # one generator folder = 10k images
        small.mkdir(exist_ok=True)
        if not (small / "gen0").exists():
            (small / "gen0").symlink_to(tree / "gen0")

        naive_s, naive_n = naive(tree, work / "naive.jsonl")
        full = run_stage(tree, work / "out_full")
        ten = run_stage(small, work / "out_10k")
        cores = len(os.sched_getaffinity(0))
        stage_rate, naive_rate = full["records"] / full["seconds"], naive_n / naive_s
        print(f"cores: {cores}")
        print(f"{'':34}{'records':>9}{'seconds':>9}{'records/s':>11}")
        print(f"{'naive loop (PIL verify + json)':34}{naive_n:>9}{naive_s:>9.1f}{naive_rate:>11.0f}")
        print(f"{'data stage (import..export)':34}{full['records']:>9}{full['seconds']:>9.1f}{stage_rate:>11.0f}")
        print(f"ratio stage/naive: {stage_rate / naive_rate:.2f}x  (the stage also hashes, dedups, checks leakage, "
              f"splits and writes 4 exports + manifest)")
        print(f"peak RSS of the stage's main process: {ten['records']} records {ten['rss_mb']:.0f} MB, "
              f"{full['records']} records {full['rss_mb']:.0f} MB  (ratio {full['rss_mb'] / ten['rss_mb']:.2f}); "
              f"largest worker {ten['children_rss_mb']:.0f} / {full['children_rss_mb']:.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
