"""The `folders` source kind (label-named benchmark folders as released) and generator selection on sources laid
out by generator: read by the same importer and image checks as every source, labels only from the declared map."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from fakehr_orchestra.cli import cli
from fakehr_orchestra.data import DataError
from fakehr_orchestra.data.importer import import_sources
from fakehr_orchestra.tinyworld.tiny_images import LABEL_FOLDERS, build_label_folders

from .conftest import source, write

HOLMES = {"0_real": "real", "1_fake": "fake"}


def _rows(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def _import(src, tmp_path: Path, **kw) -> tuple[dict[str, int], list[dict]]:
    out = tmp_path / f"m{len(list(tmp_path.glob('m*.jsonl')))}.jsonl"
    counts = import_sources([src], out, base=tmp_path, workers=1, **kw)
    return counts, _rows(out)


@pytest.fixture(scope="module")
def testset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AIGI-Holmes' TestSet/<generator>/{0_real,1_fake} in the tiny world's look, 2 images per folder."""
    return Path(build_label_folders(tmp_path_factory.mktemp("folders"), per_class=2, generators=("sdxl", "flux")))


def test_labels_come_from_the_declared_map_and_the_generator_from_the_parent(testset: Path, tmp_path: Path):
    assert LABEL_FOLDERS == HOLMES
    counts, rows = _import(source("holmes", "folders", testset, "folders", label_folders=HOLMES), tmp_path)
    assert counts == {"ok": 8}
    for r in rows:
        folder, gen = Path(r["path"]).parent.name, Path(r["path"]).parent.parent.name
        assert r["label"] == HOLMES[folder] and r["label_raw"] == folder and r["category"] == gen
        assert r["width"] and r["hash"]  # checked by the image checker like every source
    assert {r["category"] for r in rows} == {"sdxl", "flux"}
    # the map is what decides, never the name: declared the other way round, every label flips
    _, flipped = _import(source("h", "folders", testset, "folders", label_folders={"0_real": "fake",
                                                                                 "1_fake": "real"}), tmp_path)
    assert [r["label"] for r in flipped] == [{"real": "fake", "fake": "real"}[r["label"]] for r in rows]


def test_forensynths_category_level_and_label_folders_at_the_top(tmp_path: Path):
    root = Path(build_label_folders(tmp_path / "fs", per_class=1, generators=("progan",),
                                    subfolders=("airplane", "cat")))
    _, rows = _import(source("fs", "folders", root, "folders", label_folders=HOLMES), tmp_path)
    assert len(rows) == 4 and {r["category"] for r in rows} == {"progan"}
    assert sorted(r["extra"]["subfolder"] for r in rows) == ["airplane", "airplane", "cat", "cat"]
    # a set that is itself one generator: the label folders directly inside; the set's name is the generator
    _, rows = _import(source("one", "folders", root / "progan" / "cat", "folders", label_folders=HOLMES), tmp_path)
    assert {r["category"] for r in rows} == {"cat"} and len(rows) == 2


def test_undeclared_folders_are_reported_not_dropped(testset: Path, tmp_path: Path):
    import shutil

    root = tmp_path / "set"
    shutil.copytree(testset, root)
    write(root / "flux" / "2_unsure" / "x.png", (root / "flux" / "0_real" / "0000.png").read_bytes())
    counts, rows = _import(source("s", "folders", root, "folders", label_folders=HOLMES), tmp_path)
    assert counts == {"ok": 8, "bad_label": 1}
    bad = next(r for r in rows if r["status"] == "bad_label")
    assert "'2_unsure' is not a declared label folder" in bad["reason"]
    # a declared map that matches no folder at all is an error naming what is there
    with pytest.raises(DataError, match="no folder named 0_fake or 1_real .* folders seen: .*0_real"):
        _import(source("s", "folders", root, "folders", label_folders={"1_real": "real", "0_fake": "fake"}),
                tmp_path)


def test_lost_images_fail_the_source_like_any_other(testset: Path, tmp_path: Path):
    import shutil

    root = tmp_path / "set"
    shutil.copytree(testset, root)
    (root / "sdxl" / "1_fake" / "0000.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="'s' lost 1 of 8 records"):
        _import(source("s", "folders", root, "folders", label_folders=HOLMES), tmp_path)


def test_the_map_is_required_and_only_for_folders(testset: Path):
    with pytest.raises(ValidationError, match="needs label_folders"):
        source("s", "folders", testset, "folders")
    with pytest.raises(ValidationError, match="label_convention: folders"):
        source("s", "folders", testset, "text", label_folders=HOLMES)
    with pytest.raises(ValidationError, match="label_folders is for kind folders"):
        source("s", "jsonl", testset, "text", label_folders=HOLMES)
    with pytest.raises(ValidationError, match="not jsonl"):
        source("s", "jsonl", testset, "text", generators=["a"])


def test_generator_selection(testset: Path, tmp_path: Path):
    _, rows = _import(source("s", "folders", testset, "folders", label_folders=HOLMES, generators=["flux"]),
                      tmp_path)
    assert {r["category"] for r in rows} == {"flux"} and len(rows) == 4
    _, rows = _import(source("s", "folders", testset, "folders", label_folders=HOLMES,
                             exclude_generators=["flux"]), tmp_path)
    assert {r["category"] for r in rows} == {"sdxl"}
    with pytest.raises(DataError, match="generators: sd14 not found .* its generators are: flux, sdxl"):
        _import(source("s", "folders", testset, "folders", label_folders=HOLMES, generators=["sd14"]), tmp_path)
    with pytest.raises(DataError, match="keeps none"):
        _import(source("s", "folders", testset, "folders", label_folders=HOLMES,
                       exclude_generators=["flux", "sdxl"]), tmp_path)


def test_cli_import_of_a_folders_set(testset: Path, tmp_path: Path):
    out = tmp_path / "m.jsonl"
    args = ["data", "import", "--kind", "folders", "--path", str(testset), "--label-convention", "folders",
            "--workers", "1", "--out", str(out)]
    res = CliRunner().invoke(cli, args + ["--label-folder", "0_real=real", "--label-folder", "1_fake=fake",
                                          "--exclude-generator", "sdxl"])
    assert res.exit_code == 0, res.output
    assert {r["category"] for r in _rows(out)} == {"flux"} and len(_rows(out)) == 4
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "needs label_folders" in res.output and "Traceback" not in res.output
