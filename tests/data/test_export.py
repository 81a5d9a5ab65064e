"""Exports: targets per method, the system-prompt rule, parquet schema, eval reader, nothing partial on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakehr_orchestra.answers import parse_answer
from fakehr_orchestra.data import DataError
from fakehr_orchestra.data.export import ExportSettings, export_manifest, settings_from_recipe
from fakehr_orchestra.data.export.evaljsonl import read_eval
from fakehr_orchestra.data.export.targets import PLACEHOLDER_IF_REAL, PLACEHOLDER_WHY_FAKE, sft_target
from fakehr_orchestra.data.manifest import Record, write_manifest
from fakehr_orchestra.recipe import load_recipe

from ..conftest import RECIPES
from .conftest import png_bytes, write


def _rec(i: int, label: str, split: str = "train", **kw) -> Record:
    return Record(id=i, path=f"/img/{i}.png", label=label, label_raw=label, label_convention="text", source="s",
                  split=split, hash=f"{i:032x}", **kw)


def test_fake_hr1_targets_parse_back() -> None:
    explained = _rec(1, "fake", explanation="Too smooth.")
    text, tag = sft_target(explained, "fake_hr1", 1.0, 0)
    assert (text, tag) == ("<think>\nToo smooth.\n</think>\n\nfake", "think")
    assert parse_answer(text, "fake_hr1").well_formed
    assert sft_target(explained, "fake_hr1", 0.0, 0) == ("<think>\n\n</think>\n\nfake", "no_think")
    assert sft_target(_rec(2, "real"), "fake_hr1", 1.0, 0)[1] == "no_think"
    tags = [sft_target(_rec(i, "real", explanation="x."), "fake_hr1", 0.5, 0)[1] for i in range(400)]
    assert 150 < tags.count("think") < 250


def test_fakevlm_r1_targets_given_derived_skipped() -> None:
    given = _rec(1, "fake", pairs=[["odd hands", "hands can look odd in motion"]], explanation="ignored")
    text, tag = sft_target(given, "fakevlm_r1", 1.0, 0)
    assert tag == "pairs_given" and "[Why fake] odd hands\n[If real] hands can look odd in motion" in text
    fake, tag = sft_target(_rec(2, "fake", explanation="Smooth skin. Warped text!"), "fakevlm_r1", 1.0, 0)
    assert tag == "pairs_derived"
    assert f"[Why fake] Smooth skin.\n[If real] {PLACEHOLDER_IF_REAL}\n[Why fake] Warped text!" in fake
    real, _ = sft_target(_rec(3, "real", explanation="Natural grain."), "fakevlm_r1", 1.0, 0)
    assert f"[Why fake] {PLACEHOLDER_WHY_FAKE}\n[If real] Natural grain." in real
    for t, lab in ((fake, "fake"), (real, "real")):
        parsed = parse_answer(t, "fakevlm_r1")
        assert parsed.well_formed and parsed.label == lab
    assert sft_target(_rec(4, "real"), "fakevlm_r1", 1.0, 0) == (None, "skipped_no_reasoning")


def _settings(**kw) -> ExportSettings:
    base = dict(answer_format="fake_hr1", user="<image>Real or fake?", system="SYS\nTWO", sft_rows_system=False,
                grpo_rows_system=True, chunk_size=2)
    return ExportSettings(**{**base, **kw})


def test_export_rows_and_system_rule(tmp_path: Path) -> None:
    imgs = [write(tmp_path / f"{i}.png", png_bytes(i)) for i in range(5)]
    recs = [Record(id=i, path=p, label="fake" if i % 2 else "real", label_raw=None, label_convention="text",
                   source="s", category="c", split="test" if i == 4 else "train", hash=str(i))
            for i, p in enumerate(imgs)]
    recs.append(Record(id=5, path="/nope", label="fake", label_raw=None, label_convention="text", source="s",
                       status="missing"))
    write_manifest(tmp_path / "m.jsonl", recs)
    logs: list[str] = []
    res = export_manifest(tmp_path / "m.jsonl", tmp_path / "out", _settings(), log=logs.append)
    assert {k: res["counts"][k] for k in ("sft", "grpo", "parquet", "eval")} == \
        {"sft": 4, "grpo": 4, "parquet": 4, "eval": 1}
    assert res["counts"]["skipped_missing"] == 1
    sft = [json.loads(line) for line in Path(res["paths"]["sft"]).read_text().splitlines()]
    assert [m["role"] for m in sft[0]["messages"]] == ["user", "assistant"]  # --system carries it
    grpo = [json.loads(line) for line in Path(res["paths"]["grpo"]).read_text().splitlines()]
    assert grpo[1]["messages"][0] == {"role": "system", "content": "SYS\nTWO"} and grpo[1]["solution"] == "fake"
    assert all("assistant" not in [m["role"] for m in row["messages"]] for row in grpo)
    import pyarrow.parquet as pq
    table = pq.read_table(res["paths"]["parquet"])
    assert table.num_rows == 4 and pq.ParquetFile(res["paths"]["parquet"]).num_row_groups == 2
    row = table.to_pylist()[1]
    assert row["prompt"][0] == {"role": "system", "content": "SYS\nTWO"}
    assert row["images"] == [{"image": imgs[1]}] and row["reward_model"] == {"style": "rule", "ground_truth": "fake"}
    assert list(read_eval(res["paths"]["eval"])) == [
        {"file_path": imgs[4], "label": "real", "source": "s", "category": "c"}]
    assert any("sample:" in line for line in logs)
    # embedded bytes
    res_b = export_manifest(tmp_path / "m.jsonl", tmp_path / "outb", _settings(images="bytes"), only=["parquet"])
    assert pq.read_table(res_b["paths"]["parquet"]).to_pylist()[0]["images"][0]["bytes"] == Path(imgs[0]).read_bytes()


def test_failed_export_leaves_nothing(tmp_path: Path) -> None:
    img = write(tmp_path / "a.png", png_bytes(1))
    good = Record(id=0, path=img, label="fake", label_raw=None, label_convention="text", source="s", split="train")
    (tmp_path / "m.jsonl").write_text(good.to_json() + "\n" + "{broken\n")
    with pytest.raises(DataError, match="m.jsonl:2"):
        export_manifest(tmp_path / "m.jsonl", tmp_path / "out", _settings())
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_eval_reader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"file_path": "/a.png", "label": "Fake"}\n{"file_path": "/b.png", "label": 1}\n')
    rows = read_eval(path)
    assert next(rows)["label"] == "fake"
    with pytest.raises(ValueError, match="e.jsonl:2"):
        next(rows)


def test_settings_from_recipes() -> None:
    hr1 = settings_from_recipe(load_recipe(RECIPES / "fake_hr1.yaml").model)
    assert hr1.system and "\\n" not in hr1.system and "\n" in hr1.system
    assert hr1.sft_rows_system is False  # the recipe passes --system to swift sft
    assert hr1.grpo_rows_system is True  # verl engine: no swift --system, rows carry it
    vlm = settings_from_recipe(load_recipe(RECIPES / "fakevlm_r1.yaml").model)
    assert vlm.answer_format == "fakevlm_r1" and vlm.sft_rows_system is False
    smoke = settings_from_recipe(load_recipe(RECIPES / "fake_hr1.yaml", profile="smoke").model)
    assert smoke.grpo_rows_system is False  # swift GRPO passes --system
    with pytest.raises(DataError, match="differs from prompt.system"):
        settings_from_recipe(load_recipe(RECIPES / "fake_hr1.yaml", ["sft.args.system=other"]).model)
    no_flag = settings_from_recipe(load_recipe(RECIPES / "fake_hr1.yaml", ["sft.args.system=null"]).model)
    assert no_flag.sft_rows_system is True
    with pytest.raises(DataError, match="exactly one <image>"):
        settings_from_recipe(load_recipe(RECIPES / "fake_hr1.yaml", ["prompt.user=Real?"]).model)


def test_encoded_lines_are_the_rows_byte_for_byte() -> None:
    """The exporter writes ms-swift lines from pre-encoded parts: they must be exactly the rows' own encoding,
    whatever the text (quotes, backslashes, non-ASCII, newlines) and with or without a system turn."""
    from fakehr_orchestra.data.export import swift
    from fakehr_orchestra.data.manifest import Record, line_bytes

    for system_rows in (True, False):
        settings = _settings(sft_rows_system=system_rows, grpo_rows_system=not system_rows)
        lines = swift.RowLines(settings)
        for path, target in (("/d/a b.png", "<think>\n\n</think>\n\nfake"), ('/d/"q"\\x.png', "réel \u2028 \"x\"")):
            rec = Record(id=1, path=path, label="fake", label_raw="ai", label_convention="genimage", source="s")
            assert lines.sft(path, lines.value(target)) == line_bytes(swift.sft_row(rec, settings, target))
            assert lines.grpo(path, "fake", "s") == line_bytes(swift.grpo_row(rec, settings))


@pytest.mark.parametrize("val,wired", [
    (None, True),
    ("runs/smoke/data/grpo_val.parquet", True),  # data.workdir, relative to the recipe's workdir
    ("./runs/smoke/data/sub/val.parquet", True),
    ("runs/smoke/val.parquet", False),  # beside data.workdir, not in it
    ("/elsewhere/val.parquet", False),
    ("${env:VAL}", False),  # known at launch only, not written by the data stage
])
def test_wired_inputs_takes_the_val_file_from_the_data_stage_only_where_it_writes(val, wired) -> None:
    from fakehr_orchestra.data.export import wired_inputs

    extra = ["grpo.engine=verl", "~grpo.val_files" if val is None else f"grpo.val_files=[{val}]"]
    model = load_recipe(RECIPES / "fake_hr1.yaml", extra, profile="smoke").model
    keys = wired_inputs(model)
    assert ("grpo.val_files" in keys) is wired
    assert keys["grpo.train_files"] == "parquet" and keys["sft.dataset"] == "sft"  # always the data stage's
    swift = load_recipe(RECIPES / "fake_hr1.yaml", [], profile="smoke").model
    assert wired_inputs(swift) == {"sft.dataset": "sft", "grpo.train_files": "grpo"}


def test_wired_inputs_with_a_launch_time_data_workdir() -> None:
    from fakehr_orchestra.data.export import wired_inputs

    model = load_recipe(RECIPES / "fake_hr1.yaml", ["grpo.engine=verl", "data.workdir=${env:DATA}",
                                                    "grpo.val_files=${env:DATA}/grpo_val.parquet"],
                        profile="smoke").model
    assert "grpo.val_files" in wired_inputs(model)
