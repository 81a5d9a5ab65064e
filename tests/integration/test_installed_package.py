"""fakehr-orchestra as a user installs it: a wheel, installed non-editable into a fresh venv, run from a folder that
is not the checkout. The recipes, reward plugins and launch templates must come from the installed package.

Needs a package index (CI has one; so does this machine through pip's config). The venvs are made without pip
(`venv --without-pip`) and filled by the test environment's own pip (`pip --python`), which keeps each install to
seconds for the core (about 10 s here) and well under a minute for the eval extra when its wheels are cached.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT

pytestmark = pytest.mark.integration
INSTALL_S = 600  # the eval extra brings torch: minutes from a cold index


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH: the checkout on it would count as installed (its egg-info) and be imported instead."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _pip(*args: str, timeout: float = INSTALL_S) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, env=_clean_env())
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if not IN_CI and ("No matching distribution" in text or "Could not find a version" in text):
            pytest.skip(f"no package index reachable for the install: {text[-400:]}")
        raise AssertionError(text[-3000:])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a clean copy: setuptools reuses a checkout's build/ folder, which can hold files older than the source
    src = tmp_path_factory.mktemp("src") / "fakehr-orchestra"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".cache", "runs", "outputs", ".pytest_cache",
        ".hypothesis", ".whl"))
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    _pip("wheel", str(src), "--no-deps", *isolation, "-w", str(out), "-q")
    (whl,) = out.glob("fakehr_orchestra-*.whl")
    return whl


def _venv(path: Path, requirement: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    _pip("--python", str(python), "install", "-q", "--no-compile", requirement, "-c", str(ROOT / "constraints.txt"))
    return path / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = _clean_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(bin_dir / "fakehr-orchestra"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_core_wheel_from_an_unrelated_folder(wheel: Path, tmp_path: Path) -> None:
    bin_dir = _venv(tmp_path / "venv", str(wheel))
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    ls = _run(bin_dir, elsewhere, "recipes", "ls")
    assert ls.returncode == 0, ls.stderr
    names = [line.split()[0] if not line.startswith("profile") else line.split()[1] for line in ls.stdout.splitlines()]
    # shared bases (recipes/_*.yaml) are not listed
    assert names == ["fake_hr1", "fakevlm_r1", "cross_generator", "demo.fakevlm_r1", "demo", "smoke", "smoke_qwen3vl",
                     "smoke_vllm"], \
        ls.stdout
    assert str(site) in ls.stdout  # read from the installed package, not a checkout

    cp = _run(bin_dir, elsewhere, "recipes", "cp", "fake_hr1", "mine/")
    assert cp.returncode == 0, cp.stderr
    assert (elsewhere / "mine" / "fake_hr1.yaml").is_file()
    again = _run(bin_dir, elsewhere, "recipes", "cp", "fake_hr1", "mine/")
    assert again.returncode != 0 and "not overwriting" in again.stderr

    for stage in ("sft", "grpo"):  # the copy (its extends bases came along), with the shipped smoke profile
        out = _run(bin_dir, elsewhere, "render", "mine/fake_hr1.yaml", "--stage", stage, "--profile", "smoke",
                   "--format", "json")
        assert out.returncode == 0, out.stderr
        plan = json.loads(out.stdout)
        assert plan["stage"] == stage
    swift_grpo = json.loads(out.stdout)  # the smoke profile runs GRPO with ms-swift behind our ORM adapter
    adapter = swift_grpo["argv"][swift_grpo["argv"].index("--external_plugins") + 1]
    assert Path(adapter).is_file() and Path(adapter).is_relative_to(site), adapter
    assert Path(swift_grpo["env"]["FAKEHR_REWARD_PATH"]).is_file()

    verl = _run(bin_dir, elsewhere, "render", "fakevlm_r1", "--stage", "grpo", "--format", "json")  # a shipped name
    assert verl.returncode == 0, verl.stderr
    reward = next(a.split("=", 1)[1] for a in json.loads(verl.stdout)["argv"]
                  if a.startswith("reward.custom_reward_function.path="))
    assert Path(reward).is_file() and Path(reward).is_relative_to(site), reward

    valid = _run(bin_dir, elsewhere, "validate", "mine/fake_hr1.yaml", "--fast", "--remote-data")
    assert "Traceback" not in valid.stderr + valid.stdout, valid.stderr
    assert valid.returncode in (0, 1), valid.stderr  # findings, not a crash: no ms-swift/verl in this venv

    submit = _run(bin_dir, elsewhere, "submit", "mine/fake_hr1.yaml", "--stage", "grpo", "--nodes", "2", "--dry-run")
    assert submit.returncode == 0, submit.stderr
    assert "#SBATCH --nodes=2" in submit.stdout, submit.stdout


def test_eval_extra_alone_scores_and_reports(wheel: Path, tmp_path: Path) -> None:
    bin_dir = _venv(tmp_path / "venv", f"{wheel}[eval]")
    probe = subprocess.run([str(bin_dir / "python"), "-c", "import importlib.util as u; "
                            "print([m for m in ('swift', 'verl', 'ray') if u.find_spec(m)])"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr  # no training framework came along
    pred = tmp_path / "p.jsonl"
    rows = [{"key": str(i), "label": lab, "pred": pred_, "mode": "no_think"}
            for i, (lab, pred_) in enumerate([("fake", "fake"), ("real", "real"), ("fake", "real"), ("real", None)])]
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pred.with_name("p.jsonl.meta.json").write_text(json.dumps({"rows": 4, "settings": {"model": "m"}}))
    score = _run(bin_dir, tmp_path, "eval", "score", str(pred), "--out", "m.json", "--bootstrap", "50")
    assert score.returncode == 0, score.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["overall"]["accuracy"] == pytest.approx(0.5)
    report = _run(bin_dir, tmp_path, "eval", "report", "m.json", "--out", "report")
    assert report.returncode == 0, report.stderr
    assert {p.suffix for p in (tmp_path / "report").iterdir()} >= {".json", ".md", ".png"}
