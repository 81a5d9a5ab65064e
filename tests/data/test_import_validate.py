"""Damaged FakeClue-like and GenImage-like trees: every problem reported with its reason, nothing crashes. (These
trees are deliberately damaged, so the loss guard is lifted here: max_loss=1; test_released_layouts.py has the
guard and the released layouts.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fakehr_orchestra.data.checks import summary_table, validate_manifest
from fakehr_orchestra.data.importer import import_sources
from fakehr_orchestra.data.manifest import iter_manifest
from fakehr_orchestra.data.split import split_manifest

from .conftest import by_path, source


def _pipeline(tmp_path: Path, sources: list[Any], fraction: float = 0.0, workers: int = 2) -> tuple[Path, dict]:
    imported, split, final = tmp_path / "imp.jsonl", tmp_path / "split.jsonl", tmp_path / "manifest.jsonl"
    import_sources(sources, imported, workers=workers, chunk_size=4, max_loss=1.0)
    split_manifest(imported, split, fraction, seed=0)
    report = validate_manifest(split, final, tmp_path / "report.json")
    return final, report


def test_fakeclue_damage_is_reported(tmp_path: Path, damaged_fakeclue: dict[str, Any]) -> None:
    fc = damaged_fakeclue
    final, report = _pipeline(tmp_path, [
        source("fakeclue", "fakeclue", fc["train"], "fakeclue", image_root=str(fc["root"])),
        source("fakeclue_test", "fakeclue", fc["test"], "fakeclue", image_root=str(fc["root"]), split="test")])
    recs = by_path(final)
    status = {name: [r.status for r in rs] for name, rs in recs.items()}
    assert status["corrupt.png"] == ["corrupt"]
    assert status["truncated.png"] == ["corrupt"]
    assert status["empty.png"] == ["corrupt"]
    assert status["missing.png"] == ["missing"]
    assert status["dup.png"] == ["duplicate"] and "record 3" in recs["dup.png"][0].reason
    assert status["leak.png"] == ["leaked"] and status["leak_copy.png"] == ["ok"]
    assert recs["leak_copy.png"][0].split == "test"
    # ok0 appears twice: once fine, once with a text label that does not fit the 0/1 convention
    assert sorted(status["ok0.png"]) == ["bad_label", "ok"]
    bad = next(r for r in recs["ok0.png"] if r.status == "bad_label")
    assert "'fake'" in bad.reason and "fakeclue" in bad.reason
    # ok1 labelled 1 (= real) with an explanation saying fake: flagged, convention questioned
    flagged = next(r for r in recs["ok1.png"] if r.status == "bad_label")
    assert "explanation says 'fake'" in flagged.reason
    nones = [rs[0] for name, rs in recs.items() if name.startswith("<none")]
    assert sorted(r.status for r in nones) == ["bad_record", "bad_record"]
    # explanation without the verdict sentence, label normalised, source convention kept
    ok = recs["ok2.png"][0]
    assert (ok.label, ok.label_raw, ok.label_convention) == ("fake", 0, "fakeclue")
    assert ok.explanation == "First clue here. Second clue here." and ok.category == "animal"
    assert report["status"] == {"ok": 13, "missing": 1, "corrupt": 3, "bad_label": 2, "bad_record": 2,
                                "duplicate": 1, "leaked": 1}
    assert report["total"] == 23 and report["problems"] == 10
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["status"] == report["status"]
    table = summary_table(report)
    assert "leaked" in table and "missing.png" in table


def test_genimage_tree_layouts_and_damage(tmp_path: Path, damaged_genimage: Path) -> None:
    final, report = _pipeline(tmp_path, [source("genimage", "genimage", damaged_genimage, "genimage")])
    recs = list(iter_manifest(final))
    assert not any(".hidden" in r.path for r in recs)
    bad = {Path(r.path).name: r for r in recs if not r.ok}
    assert bad["bad_header.png"].status == "corrupt"
    assert bad["0.png"].status == "bad_label" and "'fake'" in bad["0.png"].reason
    ok = [r for r in recs if r.ok]
    assert {r.category for r in ok} == {"SDv1", "GAN", "ADM"}
    assert {(r.split, r.label) for r in ok if r.category == "SDv1"} == {
        ("train", "fake"), ("train", "real"), ("test", "fake"), ("test", "real")}
    assert all(r.label == ("fake" if "/ai/" in r.path else "real") for r in ok)
    assert report["counts"]["genimage"]["test"] == {"fake": 6, "real": 6}
    assert report["counts"]["genimage"]["train"] == {"fake": 7, "real": 7}
    assert [r.id for r in recs] == sorted(r.id for r in recs)


def test_mixed_conventions_in_jsonl_sources(tmp_path: Path, damaged_fakeclue: dict[str, Any]) -> None:
    good = damaged_fakeclue["good"]
    a = tmp_path / "veritas.jsonl"  # 1 = fake
    a.write_text("".join(json.dumps({"file_path": p, "label": i % 2}) + "\n" for i, p in enumerate(good[:4])))
    b = tmp_path / "seed_eval.jsonl"  # the seed's text labels, one wrong-convention row, one broken line
    b.write_text(json.dumps({"file_path": good[4], "label": "Fake", "category": "x"}) + "\n"
                 + json.dumps({"file_path": good[5], "label": 1}) + "\n" + "{not json\n"
                 + json.dumps({"file_path": good[6], "label": "real", "split": "val"}) + "\n")
    final, report = _pipeline(tmp_path, [source("veritas", "jsonl", a, "one_is_fake"),
                                         source("seed", "jsonl", b, "text")])
    recs = list(iter_manifest(final))
    assert [(r.label, r.status) for r in recs[:4]] == [("real", "ok"), ("fake", "ok"), ("real", "ok"), ("fake", "ok")]
    assert (recs[4].label, recs[4].category) == ("fake", "x")
    assert recs[5].status == "bad_label" and "does not fit convention 'text'" in recs[5].reason
    assert recs[6].status == "bad_record" and "not json" in recs[6].reason.lower()
    assert (recs[7].split, recs[7].label) == ("test", "real")
