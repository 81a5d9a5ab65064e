"""`eval suite`: three sets in three released layouts (GenImage tree, FakeClue json, label-named folders), two models,
on the tiny random Qwen2.5-VL on CPU for real (transformers backend). Every cell of the matrix is checked against
scikit-learn on that cell's predictions; a model loads once for all its sets; a rerun resumes per set."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, average_precision_score

from fakehr_orchestra.tinyworld.tiny_images import build_label_folders
from tests.conftest import ROOT, require_module

pytestmark = pytest.mark.integration
RECIPE = ROOT / "recipes" / "fake_hr1.yaml"


def suite_overrides(tiny: dict[str, str], holmes: str) -> list[str]:
    sets = [
        {"name": "genimage", "kind": "genimage", "path": tiny["genimage"], "label_convention": "genimage",
         "split": "test"},
        {"name": "fakeclue", "kind": "fakeclue", "path": tiny["fakeclue_test"], "label_convention": "fakeclue"},
        {"name": "holmes", "kind": "folders", "path": holmes, "label_convention": "folders",
         "label_folders": {"0_real": "real", "1_fake": "fake"}},
    ]
    return [f"eval.sets={json.dumps(sets)}", "eval.batch_size=8", "eval.max_new_tokens=16", "data.workers=1"]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_cell(pred: Path) -> dict:
    """The cell recomputed with scikit-learn from the predictions file alone."""
    got = rows(pred)
    y = [r["label"] for r in got]
    p = [r["pred"] if r["pred"] in ("real", "fake") else "unparseable" for r in got]
    strict = [q if q != "unparseable" else ("real" if t == "fake" else "fake") for t, q in zip(y, p)]
    scored = [(t == "fake", r["prob_fake"]) for t, r in zip(y, got) if r.get("prob_fake") is not None]
    ap = (average_precision_score([a for a, _ in scored], [b for _, b in scored])
          if len({a for a, _ in scored}) == 2 else None)
    return {"n": len(got), "accuracy": accuracy_score(y, p), "strict_accuracy": accuracy_score(y, strict), "ap": ap}


def test_suite_matrix_against_sklearn_and_resume(tiny, tmp_path, monkeypatch):
    require_module("torch")
    from fakehr_orchestra.evaluation.infer import make_backend
    from fakehr_orchestra.evaluation.suite import run_suite
    from fakehr_orchestra.recipe import load_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    holmes = build_label_folders(tmp_path / "bench", per_class=1, generators=("sdxl", "flux"))
    recipe = load_recipe(RECIPE, suite_overrides(tiny, holmes), profile="smoke")
    loads: list[str] = []

    def counting(settings):
        loads.append(settings.model)
        return make_backend(settings)
    # the same weights under two names: two rows of the matrix, each model loaded once for its three sets
    models = {"a": tiny["model"], "b": tiny["model"]}
    out = tmp_path / "suite"
    run = run_suite(recipe, models, out, backend="transformers", device="cpu", protocol="fakevlm",
                    backend_factory=counting)
    assert len(loads) == 2 and run.loads == {"a": 1, "b": 1}
    assert {k: v for k, v in run.answered.items()} == {(m, s): n for m in models
                                                       for s, n in (("genimage", 8), ("fakeclue", 4),
                                                                    ("holmes", 4))}
    result = json.loads((out / "suite.json").read_text())
    md = (out / "suite.md").read_text()
    assert result["set_order"] == ["genimage", "fakeclue", "holmes"]
    for m in models:
        for s in result["sets"]:
            want = expected_cell(out / m / s / "predictions.jsonl")
            cell = result["cells"][m][s]
            assert cell["n"] == want["n"]
            assert cell["accuracy"] == pytest.approx(want["accuracy"])
            assert cell["strict_accuracy"] == pytest.approx(want["strict_accuracy"])
            assert (cell["ap"] is None) == (want["ap"] is None)
            if want["ap"] is not None:
                assert cell["ap"] == pytest.approx(want["ap"])
        accs = [expected_cell(out / m / s / "predictions.jsonl")["accuracy"] for s in result["set_order"]]
        assert result["matrix"]["accuracy"][m]["mean"] == pytest.approx(sum(accs) / 3)
        row = next(line for line in md.splitlines() if line.startswith(f"| {m} |"))
        assert row.endswith(f"| {100 * sum(accs) / 3:.2f}% |")
    # the generators of each set, taken from the layout (GenImage's folders, the label-named set's parents)
    assert set(result["groups"]["a"]["genimage"]["generator"]["values"]) == {"stable_diffusion_v_1_4", "BigGAN"}
    assert set(result["groups"]["a"]["holmes"]["generator"]["values"]) == {"sdxl", "flux"}
    assert set(result["groups"]["a"]["fakeclue"]["category"]["values"]) <= {"animal", "scene", "doc"}
    assert "## holmes: accuracy per generator" in md and "fakevlm parsing" in md
    holmes_rows = rows(out / "sets" / "holmes.jsonl")
    assert {r["label"] for r in holmes_rows if "/0_real/" in r["file_path"]} == {"real"}

    # resumable per set: a set whose predictions were lost is answered again, alone; the others are not
    shutil.rmtree(out / "b" / "fakeclue")
    loads.clear()
    run = run_suite(recipe, models, out, backend="transformers", device="cpu", protocol="fakevlm",
                    backend_factory=counting)
    assert run.loads == {"a": 0, "b": 1} and sum(run.answered.values()) == 4
    assert run.answered[("b", "fakeclue")] == 4
    again = json.loads((out / "suite.json").read_text())
    assert again["cells"]["a"] == result["cells"]["a"]

    # the CLI over the finished suite: nothing left to answer, the same matrix
    from fakehr_orchestra.cli import cli
    args = ["eval", "suite", str(RECIPE), *suite_overrides(tiny, holmes), "--profile", "smoke",
            "--model", f"a={tiny['model']}", "--model", f"b={tiny['model']}", "--out", str(out),
            "--backend", "transformers", "--device", "cpu"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "0 images answered now" in res.output and "set holmes: 4 images (reused)" in res.output
    assert not any(math.isnan(v) for v in [c["accuracy"] for r in again["cells"].values() for c in r.values()])


def test_a_set_that_loses_images_is_an_error(tmp_path):
    from fakehr_orchestra.evaluation.reader import EvalDataError
    from fakehr_orchestra.evaluation.sets import prepare_set
    from fakehr_orchestra.recipe import load_recipe

    holmes = Path(build_label_folders(tmp_path / "bench", per_class=2, generators=("flux",)))
    (holmes / "flux" / "1_fake" / "0000.png").write_bytes(b"broken")
    sets = [{"name": "holmes", "kind": "folders", "path": str(holmes), "label_convention": "folders",
             "label_folders": {"0_real": "real", "1_fake": "fake"}}]
    recipe = load_recipe(RECIPE, [f"eval.sets={json.dumps(sets)}"], profile="smoke")
    with pytest.raises(EvalDataError, match="eval.sets 'holmes': .*lost 1 of 4"):
        prepare_set(recipe.model.eval.sets[0], recipe.model.data, tmp_path, tmp_path / "sets", workers=1)
    assert not (tmp_path / "sets" / "holmes.jsonl").exists()


def test_cross_generator_profile_on_the_tiny_world(tiny, tmp_path, monkeypatch):
    """The shipped profile: the data stage's sources keep the training generator only (train and its val), and the
    suite answers every generator's held-out images, reported per generator under the set."""
    require_module("torch")
    from fakehr_orchestra.data.importer import import_sources
    from fakehr_orchestra.evaluation.suite import run_suite
    from fakehr_orchestra.recipe import load_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = load_recipe(RECIPE, [f"vars.genimage={tiny['genimage']}", "vision.max_pixels=50176",
                                  "eval.max_new_tokens=8", "eval.batch_size=8", "data.workers=1"],
                         profile="cross_generator")
    trained = tmp_path / "train.jsonl"
    counts = import_sources(recipe.model.data.sources, trained, base=tmp_path, workers=1)
    assert counts == {"ok": 12}  # tiny world: 4 + 4 train, 2 + 2 val of stable_diffusion_v_1_4 only
    assert {r["category"] for r in rows(trained)} == {"stable_diffusion_v_1_4"}
    run_suite(recipe, {"tiny": tiny["model"]}, tmp_path / "suite", backend="transformers", device="cpu")
    result = json.loads((tmp_path / "suite" / "suite.json").read_text())
    per_gen = result["groups"]["tiny"]["genimage"]["generator"]
    assert set(per_gen["values"]) == {"stable_diffusion_v_1_4", "BigGAN"}
    assert all(v["n"] == 4 for v in per_gen["values"].values())
    md = (tmp_path / "suite" / "suite.md").read_text()
    assert "## genimage: accuracy per generator" in md and "BigGAN" in md
