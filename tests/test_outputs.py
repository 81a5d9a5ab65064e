"""The output-path guard: an output never replaces an input, a folder we did not make is never emptied, and only
temp names we created are removed. Each case through the real command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.data.stage import clean_leftovers
from fakehr_orchestra.outputs import OutputPathError, is_our_temp, refuse_input_as_output

from .conftest import RECIPES, ROOT
from .data.conftest import png_bytes, write


def _jsonl_source(folder: Path, name: str = "rows.jsonl", n: int = 8) -> Path:
    rows = []
    for i in range(n):
        rows.append({"file_path": write(folder / "img" / f"{i}.png", png_bytes(i)),
                     "label": "fake" if i % 2 else "real"})
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_data_stage_refuses_a_source_it_would_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    src = _jsonl_source(out, "eval.jsonl")  # the user's source, beside the data, under an export's name
    before = src.read_bytes()
    res = CliRunner().invoke(cli, ["data", "prepare", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke",
                                   f"data.sources=[{{name: mine, kind: jsonl, path: {src}, label_convention: text}}]",
                                   "--out", str(out), "--workers", "1", "--no-progress"])
    assert res.exit_code != 0 and "would overwrite an input" in res.output and "eval.jsonl" in res.output
    assert src.read_bytes() == before


def _reward_plugin(folder: Path) -> Path:
    plugin = folder / "plug.py"
    plugin.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kw):\n"
                      "    return 1.0\n")
    return plugin


@pytest.mark.parametrize("case", ["import", "import_symlink", "eval", "reward", "split", "validate"])
def test_an_output_path_equal_to_an_input_is_refused_and_the_input_kept(tmp_path: Path, case: str) -> None:
    src = _jsonl_source(tmp_path)
    if case == "reward":
        src.write_text(json.dumps({"response": "x", "ground_truth": "fake"}) + "\n")
    if case == "eval":
        src.write_text(json.dumps({"image": "a.png", "label": "fake", "pred": "fake"}) + "\n")
    before = src.read_bytes()
    same = str(src)
    if case == "import_symlink":
        (tmp_path / "link.jsonl").symlink_to(src)
        same = str(tmp_path / "link.jsonl")
    argv = {"import": ["data", "import", "--kind", "jsonl", "--path", str(src), "--label-convention", "text",
                       "--workers", "1", "--out", same],
            "eval": ["eval", "score", str(src), "--out", same],
            "reward": ["reward", "score", str(_reward_plugin(tmp_path)), str(src), "--out", same],
            "split": ["data", "split", str(src), "--test-fraction", "0.5", "--out", same],
            "validate": ["data", "validate", str(src), "--out", str(tmp_path / "o.jsonl"), "--report", same],
            }[case.replace("_symlink", "")]
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 2 and "would overwrite an input" in res.output, res.output
    assert "Traceback" not in res.output
    assert src.read_bytes() == before


def test_eval_score_out_a_folder_is_a_message(tmp_path: Path) -> None:
    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"image": "a.png", "label": "fake", "pred": "fake"}) + "\n")
    res = CliRunner().invoke(cli, ["eval", "score", str(src), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output and res.exception is None or \
        isinstance(res.exception, SystemExit), res.output


@pytest.mark.parametrize("sub", ["data", "model"])
def test_fixtures_tiny_does_not_empty_a_data_folder_it_did_not_make(tmp_path: Path, sub: str) -> None:
    mine = tmp_path / sub / "precious.txt"
    mine.parent.mkdir()
    mine.write_text("keep me")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "fakehr_orchestra", "fixtures", "tiny", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0 and "was not made by `fixtures tiny`" in proc.stderr, proc.stderr
    assert mine.read_text() == "keep me"


def test_data_prepare_keeps_the_users_tmp_files_and_folders(tmp_path: Path) -> None:
    out = tmp_path / "d"
    theirs = [out / "notes.tmp", out / ".draft.tmp", out / ".eval.jsonl.backup.tmp"]
    folder = out / ".data-stage-mine"
    folder.mkdir(parents=True)
    (folder / "thesis.tex").write_text("mine")
    for path in theirs:
        path.write_text("mine")
    ours = out / ".manifest.jsonl.ab12cd_9.tmp"
    ours.write_text("partial")
    assert clean_leftovers(out) == 1
    assert not ours.exists() and all(p.read_text() == "mine" for p in theirs)
    assert (folder / "thesis.tex").read_text() == "mine"
    # a stage folder of ours (owner file) whose owner is dead goes
    dead = out / ".data-stage-x1"
    dead.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (dead / "owner").write_text(f"{socket.gethostname()} {int(proc.stdout)}")
    assert clean_leftovers(out) == 1 and not dead.exists() and folder.exists()


def test_guard_units(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text("")
    with pytest.raises(OutputPathError, match="--out .* is IN"):
        refuse_input_as_output({"--out": tmp_path / "x" / ".." / "a.jsonl"}, {"IN": a})
    refuse_input_as_output({"--out": tmp_path / "b.jsonl"}, {"IN": a})
    assert is_our_temp(_touch(tmp_path / ".grpo.parquet.abcdefgh.tmp"), ["grpo.parquet"])
    assert not is_our_temp(_touch(tmp_path / ".other.abcdefgh.tmp"), ["grpo.parquet"])


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


def test_eval_report_does_not_write_over_a_metrics_file_it_reads(tmp_path: Path) -> None:
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"key": "a", "label": "fake", "pred": "fake"}) + "\n")
    folder = tmp_path / "r"
    folder.mkdir()
    assert CliRunner().invoke(cli, ["eval", "score", str(pred), "--out", str(folder / "report.json"),
                                    "--bootstrap", "0"]).exit_code == 0
    before = (folder / "report.json").read_bytes()
    res = CliRunner().invoke(cli, ["eval", "report", str(folder / "report.json"), "--out", str(folder)])
    assert res.exit_code == 2 and "would overwrite an input" in res.output, res.output
    assert (folder / "report.json").read_bytes() == before
