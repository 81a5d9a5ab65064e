"""Preflight fixtures: the smoke recipe switched to verl for GRPO, with a verl-format parquet built from the tiny
fixture's GRPO rows (verl cannot read the ms-swift jsonl the smoke profile uses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_module

PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture(scope="session")
def verl_parquet(tiny: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    require_module("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    src = ROOT / ".cache" / "tiny" / "data" / "grpo.jsonl"
    for line in src.read_text(encoding="utf-8").splitlines()[:8]:
        row = json.loads(line)
        rows.append({"data_source": "genimage", "prompt": row["messages"],
                     "images": [{"image": p} for p in row["images"]], "ability": "detection",
                     "reward_model": {"style": "rule", "ground_truth": row["solution"]}, "extra_info": {"i": 0}})
    path = tmp_path_factory.mktemp("verl") / "grpo.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


@pytest.fixture
def smoke_verl(verl_parquet: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Overrides that turn the smoke profile's GRPO into a verl stage checked on this machine."""
    monkeypatch.chdir(ROOT)
    return ["grpo.engine=verl", f"grpo.train_files={verl_parquet}",
            f"grpo.reward.path={PLUGINS / 'good_reward.py'}", "~grpo.reward.manager"]


@pytest.fixture(scope="session", autouse=True)
def fresh_swift_schema_cache(tmp_path_factory: pytest.TempPathFactory):
    """Start from no cached ms-swift flag table: the session's first check builds it from ms-swift's real parser."""
    import os

    from fakehr_orchestra.preflight import swift_flags
    old = os.environ.get(swift_flags.CACHE_ENV)
    os.environ[swift_flags.CACHE_ENV] = str(tmp_path_factory.mktemp("swift_schema"))
    swift_flags.cached.cache_clear()
    yield
    if old is None:
        os.environ.pop(swift_flags.CACHE_ENV, None)
    else:
        os.environ[swift_flags.CACHE_ENV] = old
    swift_flags.cached.cache_clear()
