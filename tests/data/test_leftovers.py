"""Killed `data prepare` runs leave `.data-stage-*` folders and `.*.tmp` files; the next run removes them, but not
those of a data stage still running."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.data.stage import clean_leftovers

from ..conftest import RECIPES


def plant(out: Path, owner: str | None) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stage = out / ".data-stage-abc123"
    stage.mkdir()
    (stage / "imported.jsonl").write_text("{}\n" * 100)
    if owner is not None:
        (stage / "owner").write_text(owner)
    tmp = out / ".manifest.jsonl.k2j3h4ab.tmp"
    tmp.write_text("partial")
    return stage, tmp


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=30)
    return int(proc.stdout)


def test_leftovers_of_dead_runs_are_removed(tmp_path: Path) -> None:
    stage, tmp = plant(tmp_path / "o", f"{socket.gethostname()} {dead_pid()}")
    assert clean_leftovers(tmp_path / "o") == 2
    assert not stage.exists() and not tmp.exists()


def test_a_stage_folder_without_an_owner_file_is_not_ours_and_stays(tmp_path: Path) -> None:
    stage, tmp = plant(tmp_path / "o", None)
    assert clean_leftovers(tmp_path / "o") == 1  # our temp file goes; the folder may be the user's
    assert stage.exists() and not tmp.exists()


def test_a_live_stage_and_its_temp_files_are_kept(tmp_path: Path) -> None:
    for owner in (f"{socket.gethostname()} {os.getpid()}", "another-host 1"):
        stage, tmp = plant(tmp_path / "o", owner)
        assert clean_leftovers(tmp_path / "o") == 0
        assert stage.exists() and tmp.exists()
        shutil.rmtree(tmp_path / "o")


def test_prepare_removes_leftovers(tmp_path: Path, tiny: dict[str, str]) -> None:
    out = tmp_path / "d"
    stage, tmp = plant(out, f"{socket.gethostname()} {dead_pid()}")
    res = CliRunner().invoke(cli, ["data", "prepare", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--out", str(out),
                                   "--workers", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "removed 2 leftover" in res.output
    assert not list(out.glob(".data-stage-*")) and not list(out.glob(".*.tmp"))
