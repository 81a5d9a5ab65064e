"""Results that used to be silently wrong or stale: reward score's output and verdicts, duplicate keys and label
conflicts in imports, a resume or an export after an image changed, the critic's bool score, the data workdir
lock. Real commands on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.jsonl import read_jsonl
from tests.conftest import RECIPES, ROOT
from tests.data.conftest import png_bytes, write

sys.path.insert(0, str(ROOT))


def _plugin(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "plug.py"
    path.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n" + body)
    return path


def _responses(tmp_path: Path, n: int = 2) -> Path:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"response": f"r{i}", "ground_truth": "fake"}) + "\n" for i in range(n)))
    return path


def test_a_plugins_print_stays_out_of_the_json_summary(tmp_path):
    plugin = _plugin(tmp_path, "    print('chatty plugin')\n    return 1.0\n")
    res = CliRunner().invoke(cli, ["reward", "score", str(plugin), str(_responses(tmp_path)),
                                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["scored"] == 2 and "chatty plugin" in res.stderr


@pytest.mark.parametrize("body,says", [
    ("    return float('nan')\n", "not finite"),
    ("    return {'acc': 1}\n", "without 'score'"),
    ("    return {'score': None}\n", "not a number"),
    ("    return '0.75'\n", "not a number"),
    ("    return True\n", "not a number"),
])
def test_reward_score_refuses_what_verl_cannot_use(tmp_path, body, says):
    plugin = _plugin(tmp_path, body)
    out = tmp_path / "o.jsonl"
    res = CliRunner().invoke(cli, ["reward", "score", str(plugin), str(_responses(tmp_path)), "--out", str(out)])
    assert res.exit_code == 1 and says in res.output, res.output
    assert not out.exists() or "NaN" not in out.read_text()


def test_nan_components_are_written_as_null_not_bare_nan(tmp_path):
    plugin = _plugin(tmp_path, "    return {'score': 0.5, 'aux': float('nan')}\n")
    out = tmp_path / "o.jsonl"
    res = CliRunner().invoke(cli, ["reward", "score", str(plugin), str(_responses(tmp_path)),
                                                   "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert "NaN" not in out.read_text() and "NaN" not in res.stdout
    assert [json.loads(line)["aux"] for line in out.read_text().splitlines()] == [None, None]


def test_a_duplicate_key_in_a_jsonl_row_is_a_bad_record(tmp_path):
    img = write(tmp_path / "a.png", png_bytes(1))
    src = tmp_path / "s.jsonl"
    src.write_text(f'{{"file_path": "{img}", "label": "real", "label": "fake"}}\n'
                   f'{{"file_path": "{write(tmp_path / "b.png", png_bytes(2))}", "label": "real"}}\n')
    out = tmp_path / "m.jsonl"
    res = CliRunner().invoke(cli, ["data", "import", "--kind", "jsonl", "--path", str(src), "--label-convention",
                                   "text", "--workers", "1", "--max-loss", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [r.value for r in read_jsonl(out)]
    assert rows[0]["status"] == "bad_record" and "'label' appears twice" in rows[0]["reason"]
    assert rows[1]["status"] == "ok"


def _jsonl_source(folder: Path, rows: list[tuple[bytes, str]]) -> Path:
    lines = []
    for i, (blob, label) in enumerate(rows):
        lines.append(json.dumps({"file_path": write(folder / "img" / f"{i}.png", blob), "label": label}))
    path = folder / "src.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _prepare(src: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["data", "prepare", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke",
                                    f"data.sources=[{{name: s, kind: jsonl, path: {src}, label_convention: text}}]",
                                    "data.split.test_fraction=0.25", *extra, "--out", str(out), "--workers", "1",
                                    "--no-progress"])


def test_the_same_image_under_both_labels_is_a_label_conflict(tmp_path):
    rows = [(png_bytes(i), "fake" if i % 2 else "real") for i in range(8)] + [(png_bytes(0), "fake")]
    src = _jsonl_source(tmp_path, rows)
    res = _prepare(src, tmp_path / "d")
    assert res.exit_code == 0, res.output
    manifest = {Path(r.value["path"]).name: r.value for r in read_jsonl(tmp_path / "d" / "manifest.jsonl")}
    assert manifest["0.png"]["status"] == manifest["8.png"]["status"] == "bad_label"
    assert "labelled otherwise" in manifest["8.png"]["reason"]


def test_data_export_refuses_an_image_truncated_since_the_import(tmp_path):
    src = _jsonl_source(tmp_path, [(png_bytes(i), "fake" if i % 2 else "real") for i in range(8)])
    assert _prepare(src, tmp_path / "d").exit_code == 0
    (tmp_path / "img" / "3.png").write_bytes(b"")
    res = CliRunner().invoke(cli, ["data", "export", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke",
                                   "--manifest", str(tmp_path / "d" / "manifest.jsonl"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 1 and "changed since the import" in res.output and "3.png" in res.output, res.output
    assert not (tmp_path / "e" / "sft.jsonl").exists()


def test_run_resume_reruns_the_data_stage_after_a_source_image_was_replaced(tmp_path):
    src = _jsonl_source(tmp_path, [(png_bytes(i), "fake" if i % 2 else "real") for i in range(8)])
    argv = [sys.executable, "-m", "fakehr_orchestra", "run", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke",
            f"data.sources=[{{name: s, kind: jsonl, path: {src}, label_convention: text}}]",
            "data.split.test_fraction=0.25", "--stages", "data", "--skip-validate", "--run-dir", str(tmp_path / "run")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    again = subprocess.run(argv + ["--resume"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert "outputs verified: not run again" in again.stdout + again.stderr
    time.sleep(0.01)
    (tmp_path / "img" / "2.png").write_bytes(png_bytes(99))  # same name, other picture
    third = subprocess.run(argv + ["--resume"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    out = third.stdout + third.stderr
    assert third.returncode == 0 and "not run again" not in out, out


def test_a_critic_reply_of_true_is_not_a_score():
    from rewards.critic import parse_score

    assert parse_score('{"score": true}') is None and parse_score('{"score": 0.5}') == 0.5


def test_two_data_stages_on_one_workdir_the_second_is_refused(tmp_path):
    from fakehr_orchestra.data.stage import DATA_LOCK
    from fakehr_orchestra.pipeline.lock import locked

    src = _jsonl_source(tmp_path, [(png_bytes(i), "fake" if i % 2 else "real") for i in range(8)])
    out = tmp_path / "d"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from fakehr_orchestra.pipeline.lock import locked\n"
                               f"with locked(Path({str(out)!r}), {DATA_LOCK!r}):\n"
                               "    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        res = _prepare(src, out)
        assert res.exit_code == 1 and "in use by another run" in res.output, res.output
        assert not (out / "artifacts.json").exists()
    finally:
        holder.kill()
        holder.wait()
    with locked(out, DATA_LOCK):
        pass
    assert _prepare(src, out).exit_code == 0


def test_data_export_refuses_an_image_replaced_by_one_of_the_same_size(tmp_path):
    src = _jsonl_source(tmp_path, [(png_bytes(i), "fake" if i % 2 else "real") for i in range(8)])
    assert _prepare(src, tmp_path / "d").exit_code == 0
    target = tmp_path / "img" / "5.png"
    blob = bytearray(target.read_bytes())
    blob[-20] ^= 0xFF  # same size, other bytes
    target.write_bytes(bytes(blob))
    res = CliRunner().invoke(cli, ["data", "export", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke",
                                   "--manifest", str(tmp_path / "d" / "manifest.jsonl"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 1 and "other content, same size" in res.output and "5.png" in res.output, res.output
