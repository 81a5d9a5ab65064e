"""Perturbations (`eval.perturbations`): deterministic, applied before the model's resize, "none" exactly the
unperturbed run; JPEG at low quality destroys the tiny world's checkerboard artifact (what its fakes are told by)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from fakehr_orchestra.evaluation.perturb import apply, parse
from fakehr_orchestra.tinyworld.tiny_images import _image
from tests.conftest import ROOT, require_module

RECIPE = ROOT / "recipes" / "fake_hr1.yaml"


def checkerboard(image) -> float:
    """Mean amplitude of the pixel checkerboard (+1/-1 on alternate pixels): the tiny world's fake artifact."""
    a = np.asarray(image, dtype=np.float64).mean(axis=2)
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
    return float(abs((a * np.where((yy + xx) % 2 == 0, 1.0, -1.0)).mean()))


def test_specs_are_checked():
    assert parse("none") == ("none", 0.0) and parse("jpeg:30") == ("jpeg", 30.0)
    for bad in ("jpeg", "jpeg:0", "jpeg:30.5", "downscale:1", "downscale:0", "blur:-1", "sharpen:2", "none:1"):
        with pytest.raises(ValueError, match="write one of"):
            parse(bad)


def test_what_each_perturbation_does_to_the_checkerboard_and_determinism():
    fake = _image(random.Random(3), True, 168)
    real = _image(random.Random(3), False, 168)
    assert checkerboard(fake) > 40 > 2 > checkerboard(real)
    # blur and downscaling remove the pixel checkerboard the tiny world's fakes carry
    assert checkerboard(apply(fake, "blur:1")) < 0.05 * checkerboard(fake)
    assert checkerboard(apply(fake, "downscale:0.5")) < 0.05 * checkerboard(fake)
    assert apply(fake, "downscale:0.5").size == (84, 84)
    # JPEG does not, even at quality 1: within each 8x8 block (the tiny world's sides are multiples of 8) a
    # pixel checkerboard is exactly the highest DCT basis function, and its coefficient (amplitude 64 x 8) is larger
    # than the coarsest quantisation step, so it survives; the re-encode still changes the image
    for quality in (1, 10, 95):
        assert checkerboard(apply(fake, f"jpeg:{quality}")) > 0.8 * checkerboard(fake)
    assert not np.array_equal(np.asarray(apply(fake, "jpeg:10")), np.asarray(fake))
    for spec in ("jpeg:10", "downscale:0.5", "blur:1"):
        assert np.array_equal(np.asarray(apply(fake, spec)), np.asarray(apply(fake, spec)))
    assert apply(fake, "none") is fake


@pytest.mark.integration
def test_none_equals_the_unperturbed_run_and_each_perturbation_is_its_own_column(tiny, tmp_path, monkeypatch):
    require_module("torch")
    from fakehr_orchestra.evaluation.infer import from_recipe, run_inference
    from fakehr_orchestra.evaluation.infer.prompting import load_image
    from fakehr_orchestra.evaluation.reader import read_eval_set
    from fakehr_orchestra.evaluation.suite import run_suite
    from fakehr_orchestra.recipe import load_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sets = [{"name": "genimage", "kind": "genimage", "path": tiny["genimage"], "label_convention": "genimage",
             "split": "test", "generators": ["BigGAN"]}]
    common = [f"eval.sets={json.dumps(sets)}", "eval.max_new_tokens=8", "eval.batch_size=8", "data.workers=1"]
    recipe = load_recipe(RECIPE, common + ['eval.perturbations=["none", "jpeg:10"]'], profile="smoke")
    run = run_suite(recipe, {"tiny": tiny["model"]}, tmp_path / "suite", backend="transformers", device="cpu")
    assert run.loads == {"tiny": 1} and run.answered == {("tiny", "genimage"): 4, ("tiny", "genimage [jpeg:10]"): 4}
    result = json.loads((tmp_path / "suite" / "suite.json").read_text())
    assert result["set_order"] == ["genimage", "genimage [jpeg:10]"]
    assert set(result["by_perturbation"]["tiny"]) == {"none", "jpeg:10"}
    assert "## Accuracy per perturbation (mean over sets)" in (tmp_path / "suite" / "suite.md").read_text()

    # the same set answered by plain `eval infer` (no perturbation anywhere): the "none" column, row for row
    plain = load_recipe(RECIPE, common, profile="smoke")
    settings = from_recipe(plain, tiny["model"], "transformers", None, "cpu")
    items = read_eval_set(tmp_path / "suite" / "sets" / "genimage.jsonl", "text")
    run_inference(settings, items, tmp_path / "plain.jsonl")

    def answers(path):
        return sorted((r["key"], r["response"], r.get("prob_fake"), r["pred"])
                      for r in map(json.loads, path.read_text().splitlines()))
    assert answers(tmp_path / "plain.jsonl") == answers(tmp_path / "suite" / "tiny" / "genimage" / "predictions.jsonl")
    jpeg_meta = json.loads((tmp_path / "suite" / "tiny" / "genimage@jpeg_10" / "predictions.jsonl.meta.json")
                           .read_text())
    assert jpeg_meta["fingerprint"]["perturbation"] == "jpeg:10"
    # what the model sees under a perturbation is the perturbed image, resized after (blur: no checkerboard left)
    from dataclasses import replace
    fake = next(i for i in items if i.label == "fake")
    seen = np.asarray(load_image(fake.file_path, replace(settings, perturbation="blur:1")))
    assert checkerboard(seen) < 0.05 * checkerboard(np.asarray(load_image(fake.file_path, settings)))
    jpeg = np.asarray(load_image(fake.file_path, replace(settings, perturbation="jpeg:10")))
    assert jpeg.shape == seen.shape and not np.array_equal(jpeg, np.asarray(load_image(fake.file_path, settings)))
