"""Reward plugins are loaded by file path, as verl and ms-swift load them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

REWARDS = Path(__file__).resolve().parents[2] / "rewards"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"test_plugin_{name}", REWARDS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def plugin() -> Callable[[str], ModuleType]:
    cache: dict[str, ModuleType] = {}

    def get(name: str) -> ModuleType:
        if name not in cache:
            cache[name] = load(name)
        return cache[name]

    return get
