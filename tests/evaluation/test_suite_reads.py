"""A suite decodes each image of a set once for all its perturbations (each applied to that decode in memory), gives
each perturbation the batches a separate `eval infer` run would, and resumes each perturbation on its own. Driven by
a stand-in backend that answers from the pixels it is given, so no model is needed."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from fakehr_orchestra.evaluation.infer import from_recipe, prompting, run_inference
from fakehr_orchestra.evaluation.infer.base import Generation
from fakehr_orchestra.evaluation.reader import read_eval_set
from fakehr_orchestra.evaluation.sets import prepare_set
from fakehr_orchestra.evaluation.suite import run_suite
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.tinyworld.tiny_images import build_label_folders
from tests.conftest import ROOT

RECIPE = ROOT / "recipes" / "fake_hr1.yaml"
PERTURBATIONS = ["none", "jpeg:10", "blur:1"]


class PixelBackend:
    """Answers fake when the image it is shown still carries the tiny world's checkerboard; records each batch."""

    def __init__(self, settings: Any, calls: list[tuple[str, list[str]]]):
        self.settings, self.calls = settings, calls

    def generate(self, items: list[Any], decoded: Optional[Sequence[Any]] = None) -> list[Generation]:
        self.calls.append((self.settings.perturbation, [item.key for item in items]))
        images, errors = prompting.model_images(items, self.settings, 14, decoded)
        out = []
        for i in range(len(items)):
            if i in errors:
                out.append(Generation("", 0, "error", None, errors[i]))
                continue
            a = np.asarray(images[i], dtype=np.float64).mean(axis=2)
            yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
            board = abs(float((a * np.where((yy + xx) % 2 == 0, 1.0, -1.0)).mean()))
            out.append(Generation(f"\n</think>\n\n{'fake' if board > 10 else 'real'}", 6, "stop", board / 100))
        return out


def answers(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("latency_s")
    return rows


def test_each_image_is_decoded_once_per_set_and_each_perturbation_resumes_alone(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    holmes = build_label_folders(tmp_path / "bench", per_class=2, generators=("flux",))
    sets = [{"name": "holmes", "kind": "folders", "path": holmes, "label_convention": "folders",
             "label_folders": {"0_real": "real", "1_fake": "fake"}}]
    recipe = load_recipe(RECIPE, [f"eval.sets={json.dumps(sets)}", f"eval.perturbations={json.dumps(PERTURBATIONS)}",
                                  "eval.batch_size=3", "data.workers=1"], profile="smoke")
    out = tmp_path / "suite"
    prepare_set(recipe.model.eval.sets[0], recipe.model.data, Path(recipe.model.workdir), out / "sets", 1)
    broken = Path(holmes) / "flux" / "1_fake" / "0001.png"
    broken.write_bytes(b"broken")  # after the set was checked: one error row per perturbation, the same message
    reads: Counter[str] = Counter()
    real_read = prompting.read_image

    def counting_read(path: str) -> Any:
        reads[path] += 1
        return real_read(path)
    monkeypatch.setattr(prompting, "read_image", counting_read)
    calls: list[tuple[str, list[str]]] = []
    loads: list[str] = []

    def factory(settings: Any) -> PixelBackend:
        loads.append(settings.model)
        return PixelBackend(settings, calls)
    run = run_suite(recipe, {"m": str(model)}, out, backend="transformers", device="cpu", backend_factory=factory)
    items = read_eval_set(out / "sets" / "holmes.jsonl", "text")
    assert len(items) == 4 and run.loads == {"m": 1} and len(loads) == 1
    assert set(reads) == {i.file_path for i in items} and set(reads.values()) == {1}  # once, for 3 perturbations
    folders = {"none": "holmes", "jpeg:10": "holmes@jpeg_10", "blur:1": "holmes@blur_1"}
    first = {p: answers(out / "m" / f / "predictions.jsonl") for p, f in folders.items()}
    assert [r["pred"] for r in first["none"]] == [None if r["file_path"] == str(broken.resolve()) else r["label"]
                                                  for r in first["none"]]
    assert {r["pred"] for r in first["blur:1"] if r["label"] == "fake" and "error" not in r} == {"real"}
    assert [r["file_path"] for p in first for r in first[p] if "error" in r] == [str(broken.resolve())] * 3

    # each perturbation's file is what a separate `eval infer` run of it writes, batch for batch
    settings = from_recipe(recipe, str(model.resolve()), "transformers", device="cpu")
    for pert in PERTURBATIONS:
        separate: list[tuple[str, list[str]]] = []
        run_inference(replace(settings, perturbation=pert), items, tmp_path / "separate" / f"{pert}.jsonl",
                      backend_factory=lambda s, c=separate: PixelBackend(s, c))  # type: ignore[misc]
        assert [c for c in calls if c[0] == pert] == separate
        assert answers(tmp_path / "separate" / f"{pert}.jsonl") == first[pert]

    # interrupted: jpeg lost its last row, blur never started; only what is missing is read and answered
    jpeg = out / "m" / "holmes@jpeg_10" / "predictions.jsonl"
    jpeg.write_text("".join(jpeg.read_text().splitlines(keepends=True)[:3]))
    shutil.rmtree(out / "m" / "holmes@blur_1")
    reads.clear()
    calls.clear()
    run = run_suite(recipe, {"m": str(model)}, out, backend="transformers", device="cpu", backend_factory=factory)
    assert run.answered == {("m", "holmes"): 0, ("m", "holmes [jpeg:10]"): 1, ("m", "holmes [blur:1]"): 4}
    assert set(reads.values()) == {1} and len(reads) == 4  # blur needs all four; each read once
    assert sorted((p, len(keys)) for p, keys in calls) == [("blur:1", 1), ("blur:1", 3), ("jpeg:10", 1)]
    for pert, folder in folders.items():
        assert answers(out / "m" / folder / "predictions.jsonl") == first[pert]
