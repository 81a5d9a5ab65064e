"""Eval set validation and the torn-line repair that makes resume exact."""

from __future__ import annotations

import json

import pytest

from fakehr_orchestra.evaluation.reader import EvalDataError, done_keys, iter_predictions, read_eval_set, repair_tail


def test_eval_set_rows_and_every_problem_reported(tmp_path):
    img = tmp_path / "a.png"
    img.write_bytes(b"x")
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"file_path": "a.png", "label": "Fake", "category": "sd"}) + "\n\n")
    [item] = read_eval_set(good)
    assert item.label == "fake" and item.file_path == str(img) and item.groups == {"category": "sd"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps({"file_path": "a.png", "label": "fake"}),
                              json.dumps({"file_path": "a.png", "label": "real"}),
                              json.dumps({"file_path": "missing.png", "label": "real"}),
                              json.dumps({"file_path": "a.png", "label": "unrealistic"}),
                              "{not json"]) + "\n")
    with pytest.raises(EvalDataError) as err:
        read_eval_set(bad)
    text = str(err.value)
    assert "bad.jsonl:2" in text and "listed again" in text
    assert "bad.jsonl:3" in text and "not found" in text
    assert "bad.jsonl:4" in text and "unrealistic" in text
    assert "bad.jsonl:5" in text and "not JSON" in text


def test_label_convention_is_declared(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"file_path": "a.png", "label": 0}) + "\n")
    with pytest.raises(EvalDataError):
        read_eval_set(f)
    assert read_eval_set(f, "fakeclue")[0].label == "fake"  # FakeClue: 0 = fake


@pytest.mark.parametrize("tail,kept", [
    ('{"key": "c", "lab', 2),            # killed mid-line
    ('{"key": "c"', 2),                  # torn at any byte
    ('{"key": "c"}\n', 3),               # complete
    ('{"key": "c"}', 2),                 # complete object but no newline yet: rewritten on resume
])
def test_repair_tail(tmp_path, tail, kept):
    f = tmp_path / "p.jsonl"
    f.write_text('{"key": "a"}\n{"key": "b"}\n' + tail)
    repair_tail(f)
    assert f.read_text().endswith("\n")
    assert [r["key"] for r in iter_predictions(f)] == ["a", "b", "c"][:kept]
    assert len(done_keys(f)) == kept


def test_a_broken_line_in_the_middle_is_an_error(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"key": "a"}\n{"key": \n{"key": "b"}\n')
    with pytest.raises(EvalDataError, match="p.jsonl:2"):
        list(iter_predictions(f))
