"""Hostile-but-realistic inputs from the fault catalogue: each is a clear message (or a reported record), never a
traceback, and never a wrong number scored silently. Real files and real commands; the one mock (a read-only file
system) says why."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.jsonl import MAX_LINE_BYTES, read_jsonl
from tests.conftest import RECIPES
from tests.data.conftest import png_bytes, write


def _clean(res) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output


# --- imports: file names and links ------------------------------------------------------------------------------

def test_a_genimage_tree_with_a_non_utf8_name_and_a_symlink_loop_imports(tmp_path):
    root = tmp_path / "gi"
    nature = root / "sdv4" / "train" / "nature"
    ai = root / "sdv4" / "train" / "ai"
    write(nature / "ok.png", png_bytes(1))
    write(ai / "fake.png", png_bytes(2))
    with open(os.path.join(os.fsencode(ai), b"caf\xe9.png"), "wb") as handle:
        handle.write(png_bytes(3))
    (ai / "loop").symlink_to(ai / "loop")  # ELOOP on every stat
    (root / "sdv4" / "train" / "self").symlink_to(root / "sdv4" / "train" / "self")
    out = tmp_path / "m.jsonl"
    res = CliRunner().invoke(cli, ["data", "import", "--kind", "genimage", "--path", str(root), "--label-convention",
                                   "genimage", "--workers", "1", "--max-loss", "1", "--out", str(out)])
    _clean(res)
    assert res.exit_code == 0, res.output
    rows = [r.value for r in read_jsonl(out)]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["ok.png"]["status"] == "ok" and by_name["fake.png"]["status"] == "ok"
    bad = by_name["caf\ufffd.png"]
    assert bad["status"] == "bad_record" and "not UTF-8" in bad["reason"]
    assert by_name["loop"]["status"] != "ok"


# --- numbers: the recipe, validate, scoring ---------------------------------------------------------------------

@pytest.mark.parametrize("override", ["data.max_image_mb=.inf", "data.max_image_mb=.nan", "critic.timeout_s=.inf",
                                      "grpo.reward.kwargs.w_format=.inf", "sft.args.learning_rate=-.inf"])
def test_an_infinite_recipe_number_is_refused_at_load(override):
    res = CliRunner().invoke(cli, ["recipes", "show", str(RECIPES / "fake_hr1.yaml"), override])
    _clean(res)
    assert res.exit_code == 2 and override.split("=")[0] in res.output and "finite" in res.output, res.output


@pytest.mark.parametrize("override,flag", [
    ("sft.args.per_device_train_batch_size=-0", "--per_device_train_batch_size"),
    ("sft.args.learning_rate=.inf", "--learning_rate"),
    ("sft.args.gradient_accumulation_steps=0", "--gradient_accumulation_steps"),
])
def test_validate_refuses_training_numbers_out_of_range(override, flag):
    pytest.importorskip("swift")
    res = CliRunner().invoke(cli, ["validate", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--stage", "sft",
                                   override])
    _clean(res)
    assert res.exit_code != 0 and flag.lstrip("-") in res.output and ("out of range" in res.output or "finite" in res.output), \
        res.output


def _predictions(tmp_path: Path, **extra) -> Path:
    rows = [{"key": f"k{i}", "label": "fake" if i % 2 else "real", "pred": "fake" if i % 2 else "real",
             "prob_fake": 0.9 if i % 2 else 0.1, "response_tokens": 10} for i in range(4)]
    rows[1].update(extra)
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("extra", [{"response_tokens": "many"}, {"response_tokens": -3}, {"prob_fake": "high"},
                                   {"prob_fake": float("inf")}, {"prob_fake": 7}, {"prob_fake": -3},
                                   {"prob_fake": True}])
def test_eval_score_refuses_a_row_number_out_of_range(tmp_path, extra):
    path = _predictions(tmp_path, **extra)
    res = CliRunner().invoke(cli, ["eval", "score", str(path), "--out", str(tmp_path / "m.json"), "--bootstrap", "0"])
    _clean(res)
    key = next(iter(extra))
    assert res.exit_code == 2 and "row 2" in res.output and key in res.output, res.output
    assert not (tmp_path / "m.json").exists()


def test_eval_report_on_a_metrics_file_of_another_shape(tmp_path):
    path = _predictions(tmp_path)
    res = CliRunner().invoke(cli, ["eval", "score", str(path), "--out", str(tmp_path / "m.json"), "--bootstrap", "0"])
    assert res.exit_code == 0, res.output
    old = json.loads((tmp_path / "m.json").read_text())
    del old["overall"]["confusion"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    res = CliRunner().invoke(cli, ["eval", "report", str(tmp_path / "old.json"), "--out", str(tmp_path / "r")])
    _clean(res)
    assert res.exit_code == 2 and "overall.confusion" in res.output, res.output


def test_eval_report_names_that_differ_only_in_unsafe_characters_get_their_own_files(tmp_path):
    path = _predictions(tmp_path)
    assert CliRunner().invoke(cli, ["eval", "score", str(path), "--out", str(tmp_path / "m.json"),
                                    "--bootstrap", "0"]).exit_code == 0
    res = CliRunner().invoke(cli, ["eval", "report", str(tmp_path / "m.json"), str(tmp_path / "m.json"),
                                   "--names", "a/b,a_b", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    confusion = [v for k, v in report["images"].items() if k.startswith("confusion")]
    assert len(set(confusion)) == 2 and all((tmp_path / "r" / f).exists() for f in confusion)


# --- files ------------------------------------------------------------------------------------------------------

def test_a_line_longer_than_the_cap_is_a_reported_row_not_a_parse(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as handle:
        handle.write(b'{"a": 1}\n{"b": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n{"c": 3}\n')
    rows = list(read_jsonl(path, on_error="collect"))
    assert [r.line for r in rows] == [1, 2, 3]
    assert rows[0].value == {"a": 1} and rows[2].value == {"c": 3}
    assert rows[1].error and "longer than" in rows[1].error


def test_a_run_dir_on_a_read_only_file_system_is_a_message(tmp_path, monkeypatch):
    # A mock: a read-only file system needs root to mount; os.open fails exactly as it does there (EROFS).
    from fakehr_orchestra.pipeline import lock

    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).endswith(lock.LOCK):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(lock.os, "open", read_only)
    res = CliRunner().invoke(cli, ["run", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--stages", "data",
                                   "--skip-validate", "--run-dir", str(tmp_path / "run")])
    _clean(res)
    assert res.exit_code == 1 and "Read-only file system" in res.output and "writable" in res.output, res.output


def test_a_lone_surrogate_in_a_predictions_row_is_a_row_problem(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"key": "\\udcff", "label": "fake", "pred": "fake"}\n'
                    '{"key": "\\ud83d\\ude00", "label": "real", "pred": "real"}\n')
    res = CliRunner().invoke(cli, ["eval", "score", str(path), "--out", str(tmp_path / "m.json"), "--bootstrap", "0"])
    _clean(res)
    assert res.exit_code == 2 and "p.jsonl:1" in res.output and "surrogate" in res.output, res.output


@pytest.mark.parametrize("argv", [
    ["reward", "score", "rewards/fake_hr1.py", "{r}", "--timeout", "{v}"],
    ["eval", "score", "{r}", "--out", "{tmp}/m.json", "--confidence", "{v}"],
    ["data", "split", "{r}", "--test-fraction", "{v}", "--out", "{tmp}/s.jsonl"],
    ["data", "import", "--kind", "jsonl", "--path", "{r}", "--label-convention", "text", "--max-loss", "{v}",
     "--out", "{tmp}/i.jsonl"],
])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_command_line_number_is_refused(tmp_path, argv, value):
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"response": "x", "ground_truth": "fake"}) + "\n")
    res = CliRunner().invoke(cli, [a.format(r=responses, tmp=tmp_path, v=value) for a in argv])
    _clean(res)
    assert res.exit_code == 2 and "not finite" in res.output, res.output


def test_validate_refuses_verl_numbers_out_of_range():
    pytest.importorskip("verl")
    res = CliRunner().invoke(cli, ["validate", str(RECIPES / "fake_hr1.yaml"), "--remote-data", "--stage", "grpo",
                                   "grpo.overrides.data.train_batch_size=0",
                                   "grpo.overrides.actor_rollout_ref.actor.optim.lr=-1e-6"])
    _clean(res)
    assert res.exit_code != 0
    assert "data.train_batch_size: '0' is out of range" in res.output, res.output
    assert "optim.lr: '-1e-06' is out of range" in res.output or "optim.lr: '-1e-6' is out of range" in res.output, \
        res.output


@pytest.mark.parametrize("argv", [["eval", "score", "{p}", "--out", "{ro}/m.json"],
                                  ["eval", "report", "{m}", "--out", "{ro}/r"]])
def test_an_output_on_a_read_only_file_system_is_a_message(tmp_path, monkeypatch, argv):
    # A mock, as above: the real EROFS needs a read-only mount (root). Every write below {ro} fails as it would.
    path = _predictions(tmp_path)
    assert CliRunner().invoke(cli, ["eval", "score", str(path), "--out", str(tmp_path / "m.json"),
                                    "--bootstrap", "0"]).exit_code == 0
    ro = tmp_path / "ro"
    real_mkstemp, real_mkdir = __import__("tempfile").mkstemp, Path.mkdir

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(ro)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)
    monkeypatch.setattr("tempfile.mkstemp", mkstemp)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    res = CliRunner().invoke(cli, [a.format(p=path, m=tmp_path / "m.json", ro=ro) for a in argv])
    _clean(res)
    assert res.exit_code == 1 and "Read-only file system" in res.output, res.output


def test_a_genimage_folder_that_cannot_be_listed_is_not_a_traceback(tmp_path):
    res = CliRunner().invoke(cli, ["data", "import", "--kind", "genimage", "--path", "/proc/self", "--label-convention",
                                   "genimage", "--workers", "1", "--out", str(tmp_path / "m.jsonl")])
    _clean(res)
    assert res.exit_code in (1, 2) and "error" in res.output, res.output
