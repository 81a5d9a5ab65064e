"""The data sets as released, built here independently of the fixture: GenImage's <Generator>/<imagenet_*>/{train,
val}/{ai,nature}, FakeClue's data_json/{train,test}.json with images under FakeClue/{train,test}/ (paths relative to
the split's folder), the seed's eval jsonl. With the shipped recipes' source settings every source imports 100%;
a wrong image root, a GenImage path one folder too deep, or an empty source fail with exit 1 and a hint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.data import DataError
from fakehr_orchestra.data.importer import import_sources
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES

from .conftest import png_bytes, write

GENERATORS = {"Midjourney": "imagenet_midjourney", "stable_diffusion_v_1_4": "imagenet_ai_0419_sdv4"}


@pytest.fixture
def released(tmp_path: Path) -> Path:
    """tmp/GenImage, tmp/FakeClue, tmp/eval.jsonl: what a user downloads (names, folders, fields, label values)."""
    seed = 0
    for gen, inner in GENERATORS.items():
        for split in ("train", "val"):
            for cls in ("ai", "nature"):
                for i in range(3):
                    seed += 1
                    name = f"{i:03d}_{gen}.png" if cls == "ai" else f"n0144{i}764_{seed}.JPEG"
                    write(tmp_path / "GenImage" / gen / inner / split / cls / name,
                          png_bytes(seed, 32, "PNG" if cls == "ai" else "JPEG"))
    for split in ("train", "test"):
        records = []
        for i, (cate, label) in enumerate([("ff++", 0), ("ff++", 1), ("animal", 0), ("satellite", 1)]):
            seed += 1
            kind = "fake" if label == 0 else "real"
            rel = f"{cate}/{kind}/Deepfakes/c23/frames/071_054/{i}.png" if cate == "ff++" else f"{cate}/{kind}/{i}.png"
            write(tmp_path / "FakeClue" / split / rel, png_bytes(seed))
            records.append({"image": rel, "label": label, "cate": cate, "width": 32, "height": 32,
                            "conversations": [{"from": "human", "value": "<image>\nIs this image real or fake?"},
                                              {"from": "gpt", "value": f"This is a {kind} image. A clue."}]})
        write(tmp_path / "FakeClue" / "data_json" / f"{split}.json", json.dumps(records).encode())
    rows = [{"file_path": str(p), "label": "fake" if "/ai/" in str(p) else "real"}
            for p in sorted((tmp_path / "GenImage").rglob("val/*/*"))]
    write(tmp_path / "eval.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    return tmp_path


def _import(sources: list[Any], out: Path, base: Path) -> dict[str, int]:
    return import_sources(sources, out, base=base, workers=1)


@pytest.mark.parametrize("recipe", ["fake_hr1.yaml", "fakevlm_r1.yaml"])
def test_every_source_of_the_shipped_recipes_imports_completely(released: Path, tmp_path: Path, recipe: str) -> None:
    model = load_recipe(RECIPES / recipe, [f"workdir={released}"]).model
    counts = _import(model.data.sources, tmp_path / "m.jsonl", released)
    expected = {"fake_hr1.yaml": 24 + 4, "fakevlm_r1.yaml": 4 + 4}[recipe]
    assert counts == {"ok": expected}, counts


def test_seed_eval_jsonl_imports_completely(released: Path, tmp_path: Path) -> None:
    from .conftest import source
    assert _import([source("seed", "jsonl", released / "eval.jsonl", "text")], tmp_path / "m.jsonl",
                   released) == {"ok": 12}


def _cli_import(*args: str) -> Any:
    return CliRunner().invoke(cli, ["data", "import", *args, "--workers", "1"])


def test_fakeclue_finds_its_split_folder_without_an_image_root(released: Path, tmp_path: Path) -> None:
    res = _cli_import("--kind", "fakeclue", "--path", str(released / "FakeClue/data_json/test.json"),
                      "--label-convention", "fakeclue", "--out", str(tmp_path / "m.jsonl"))
    assert res.exit_code == 0, res.output
    paths = [json.loads(line)["path"] for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert all(p.startswith(str(released / "FakeClue" / "test")) for p in paths) and len(paths) == 4


def test_a_wrong_image_root_fails_with_the_root_that_was_meant(released: Path, tmp_path: Path) -> None:
    res = _cli_import("--kind", "fakeclue", "--path", str(released / "FakeClue/data_json/train.json"),
                      "--image-root", str(released / "FakeClue"), "--label-convention", "fakeclue",
                      "--out", str(tmp_path / "m.jsonl"))
    assert res.exit_code == 1, res.output
    assert "lost 4 of 4 records" in res.output and "animal/fake/2.png" in res.output
    assert f"did you mean image_root: {released / 'FakeClue' / 'train'}?" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "m.jsonl").exists()


def test_a_genimage_path_one_folder_too_deep_fails_with_the_folder_to_use(released: Path, tmp_path: Path) -> None:
    res = _cli_import("--kind", "genimage", "--path", str(released / "GenImage/Midjourney/imagenet_midjourney"),
                      "--label-convention", "genimage", "--out", str(tmp_path / "m.jsonl"))
    assert res.exit_code == 1, res.output
    assert "has no records" in res.output and "one generator's imagenet_* folder" in res.output
    assert str(released / "GenImage") in res.output


def test_an_empty_source_is_an_error(released: Path, tmp_path: Path) -> None:
    from .conftest import source
    empty = released / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="'seed' .* has no records"):
        _import([source("seed", "jsonl", empty, "text")], tmp_path / "m.jsonl", released)


def test_a_small_loss_within_max_loss_passes_and_is_counted(released: Path, tmp_path: Path) -> None:
    from .conftest import source
    (released / "GenImage/Midjourney/imagenet_midjourney/train/ai/000_Midjourney.png").write_bytes(b"broken")
    counts = import_sources([source("g", "genimage", released / "GenImage", "genimage")], tmp_path / "m.jsonl",
                            base=released, workers=1, max_loss=0.1)
    assert counts == {"ok": 23, "corrupt": 1}
    with pytest.raises(DataError, match="lost 1 of 24"):
        import_sources([source("g", "genimage", released / "GenImage", "genimage")], tmp_path / "n.jsonl",
                       base=released, workers=1, max_loss=0.01)
