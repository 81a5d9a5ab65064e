"""Reasoning annotations attached to a source from a side file: they reach the SFT targets with their provenance
counted, a one-sided pair stays unpaired in the FakeVLM-R1 target, and a row that attaches to nothing is an error
(never a silently smaller set of explanations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakehr_orchestra.answers import pairing, parse_answer
from fakehr_orchestra.data import DataError
from fakehr_orchestra.data.export.targets import sft_target
from fakehr_orchestra.data.importer import import_sources
from fakehr_orchestra.data.manifest import Record
from fakehr_orchestra.tinyworld.tiny_images import EASY_REASONED_SHARE, build_images

from .conftest import source


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    build_images(out, per_class=4)
    return out


def _rows(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_the_fixture_annotates_a_share_of_the_easy_images_in_the_released_tree(world: Path, tmp_path: Path):
    notes = world / "annotations" / "genimage_reasoning.jsonl"
    src = source("genimage", "genimage", world / "GenImage", "genimage", annotations=str(notes))
    counts = import_sources([src], tmp_path / "m.jsonl", base=tmp_path, workers=1)
    rows = _rows(tmp_path / "m.jsonl")
    annotated = [r for r in rows if r["extra"].get("annotated_by")]
    lines = notes.read_text().splitlines()
    assert counts == {"ok": len(rows)} and len(annotated) == len(lines) > 0
    train = [r for r in rows if "/train/" in r["path"]]
    assert abs(len(annotated) / len(train) - EASY_REASONED_SHARE) <= 0.3  # a share, not all or none
    for r in annotated:  # the explanation matches the image's label (the artifact the fixture drew)
        assert ("grid" in r["explanation"]) == (r["label"] == "fake")
        assert "tinyworld fixture" in r["extra"]["annotated_by"]
    assert all(not r.get("explanation") for r in rows if not r["extra"].get("annotated_by"))


def test_one_sided_pairs_stay_unpaired_in_the_target_and_full_pairs_pair(world: Path, tmp_path: Path):
    notes = world / "annotations" / "fakeclue_pairs.jsonl"
    src = source("fakeclue", "fakeclue", world / "FakeClue" / "data_json" / "train.json", "fakeclue",
                 annotations=str(notes))
    import_sources([src], tmp_path / "m.jsonl", base=tmp_path, workers=1)
    tags = {}
    for r in _rows(tmp_path / "m.jsonl"):
        rec = Record(**{k: v for k, v in r.items()})
        target, tag = sft_target(rec, "fakevlm_r1", 1.0, 0)
        parsed = parse_answer(target or "", "fakevlm_r1")
        assert parsed.label == r["label"] and parsed.well_formed
        assert parsed.paired == (tag == "pairs_given") == (pairing(parsed.reasoning)[0] == 1.0)
        tags[tag] = tags.get(tag, 0) + 1
    assert set(tags) == {"pairs_given", "pairs_one_sided"}  # both kinds, from the one annotations file


def test_a_row_naming_no_image_of_the_source_fails_the_import(world: Path, tmp_path: Path):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"image": "nowhere/0.png", "explanation": "x."}) + "\n")
    src = source("genimage", "genimage", world / "GenImage", "genimage", annotations=str(notes))
    with pytest.raises(DataError, match=r"1 row\(s\) name no image of source 'genimage'.*notes.jsonl:1"):
        import_sources([src], tmp_path / "m.jsonl", base=tmp_path, workers=1)


@pytest.mark.parametrize("row, problem", [
    ({"image": "a.png"}, "neither `explanation` nor `pairs`"),
    ({"image": "a.png", "explanation": " "}, "non-empty string"),
    ({"image": "a.png", "pairs": [[None, None]]}, "one side may be null"),
    ({"explanation": "x."}, "no `image`"),
])
def test_bad_rows_are_reported_with_where_they_are(world: Path, tmp_path: Path, row: dict, problem: str):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps(row) + "\n")
    src = source("genimage", "genimage", world / "GenImage", "genimage", annotations=str(notes))
    with pytest.raises(DataError, match=problem):
        import_sources([src], tmp_path / "m.jsonl", base=tmp_path, workers=1)
