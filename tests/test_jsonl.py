"""The one JSON-lines reader: BOM, non-UTF-8 bytes, torn last
line, file:line in every problem; and the readers that use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakehr_orchestra.jsonl import JsonlError, read_jsonl


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bom_does_not_cost_the_first_row(tmp_path: Path) -> None:
    f = write(tmp_path / "a.jsonl", b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')
    assert [r.value for r in read_jsonl(f)] == [{"a": 1}, {"a": 2}]


def test_bom_source_import_keeps_first_row(tmp_path: Path) -> None:
    from fakehr_orchestra.data.sources.jsonl import read_jsonl as read_source

    f = write(tmp_path / "e.jsonl", b'\xef\xbb\xbf{"file_path": "x.png", "label": "fake"}\n')
    raws = list(read_source(f, None))
    assert len(raws) == 1 and "problem" not in raws[0] and raws[0]["label_raw"] == "fake"


def test_non_utf8_is_a_problem_with_file_and_line(tmp_path: Path) -> None:
    f = write(tmp_path / "b.jsonl", b'{"a": 1}\n{"a": "\xff\xfe"}\n{"a": 3}\n')
    with pytest.raises(JsonlError, match=r"b\.jsonl:2: not UTF-8"):
        list(read_jsonl(f))
    rows = list(read_jsonl(f, on_error="collect"))
    assert [r.error is None for r in rows] == [True, False, True]
    assert rows[1].where.endswith("b.jsonl:2")


def test_torn_last_line_is_an_error_unless_the_caller_repairs(tmp_path: Path) -> None:
    f = write(tmp_path / "c.jsonl", b'{"a": 1}\n{"a": 2')
    with pytest.raises(JsonlError, match=r"c\.jsonl:2: not JSON.*cut off"):
        list(read_jsonl(f))
    assert [r.value for r in read_jsonl(f, tail="skip")] == [{"a": 1}]


def test_invalid_complete_last_line_is_always_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "d.jsonl", b'{"a": 1}\n{"a": \n')
    with pytest.raises(JsonlError, match=r"d\.jsonl:2"):
        list(read_jsonl(f, tail="skip"))


def test_objects_blank_lines_and_limit(tmp_path: Path) -> None:
    f = write(tmp_path / "e.jsonl", b'\n{"a": 1}\n\n[1]\n{"a": 3}\n')
    rows = list(read_jsonl(f, on_error="collect"))
    assert [(r.line, r.error is None) for r in rows] == [(2, True), (4, False), (5, True)]
    assert "expected a JSON object, got list" in rows[1].error
    assert [r.line for r in read_jsonl(f, objects=False, limit=1)] == [2]


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(JsonlError, match="file not found"):
        list(read_jsonl(tmp_path / "nope.jsonl"))
    with pytest.raises(JsonlError, match="is a folder"):
        list(read_jsonl(tmp_path))


def test_readers_share_the_error_model(tmp_path: Path) -> None:
    """Manifest, eval set, seed eval rows, reward responses: a non-UTF-8 line is a named problem, no traceback."""
    from fakehr_orchestra.data import DataError
    from fakehr_orchestra.data.export.evaljsonl import read_eval
    from fakehr_orchestra.data.manifest import iter_manifest
    from fakehr_orchestra.evaluation.reader import EvalDataError, read_eval_set

    bad = write(tmp_path / "bad.jsonl", b'\xef\xbb\xbf{"x": "\xc3\x28"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: not a manifest record \(not UTF-8"):
        list(iter_manifest(bad))
    with pytest.raises(EvalDataError, match=r"bad\.jsonl:1: not UTF-8"):
        read_eval_set(bad)
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not an eval row"):
        list(read_eval(bad))
    good = write(tmp_path / "good.jsonl", b'\xef\xbb\xbf' + json.dumps({"file_path": "x", "label": "real"}).encode())
    assert [r["label"] for r in read_eval(good)] == ["real"]
