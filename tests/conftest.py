"""Shared test fixtures. Integration tests use the real frameworks; in CI (CI=true) a missing dependency fails
the test instead of skipping it, so a broken install can never pass as green."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
VENV_BIN = str(Path(sys.executable).parent)


def require_module(name: str) -> None:
    """Skip locally when `name` is not importable; fail in CI."""
    try:
        importlib.import_module(name)
    except ImportError as exc:
        message = f"{name} is not importable ({exc}); `make test` installs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def require_executable(name: str) -> str:
    path = shutil.which(name, path=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    if path is None:
        message = f"{name} is not on PATH; `make test` installs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def framework_env(**extra: str) -> dict[str, str]:
    """The environment a framework subprocess gets in tests: the venv first on PATH, offline hubs."""
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The tiny Qwen2.5-VL + image sets, built once per session (shared with the repo's .cache when present)."""
    require_module("transformers")
    require_module("torch")
    from fakehr_orchestra.tinyworld import build_tiny

    return build_tiny(ROOT / ".cache" / "tiny")


@pytest.fixture(scope="session")
def tiny_qwen3vl() -> dict[str, str]:
    """The tiny Qwen3-VL (dense) + image sets, where recipes/profiles/smoke_qwen3vl.yaml expects them."""
    require_module("transformers")
    require_module("torch")
    from fakehr_orchestra.tinyworld import build_tiny

    return build_tiny(ROOT / ".cache" / "tiny-qwen3vl", family="qwen3_vl")
