"""Every entry of the translation table (engines/versions.py) proven against the real frameworks, not against our
own expectations: the new spelling is what the installed version reads (ms-swift's own parser has the flag;
verl's own loaders read the key; nothing in ms-swift or qwen-vl-utils reads a dropped env var), and the old one is
what the older version reads (verl 0.8's own config composes our 0.8 rendering and verl 0.8's own migration code
moves it where its reward loader reads it). A new entry without a proof here fails `test_every_entry_is_proven`."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.engines.versions import TRANSLATIONS, installed_version, parse_version, translate
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.resources import shipped_file
from tests.conftest import IN_CI, RECIPES, ROOT, require_module

pytestmark = pytest.mark.integration
SITE = Path(sys.executable).parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages"
PROOFS: dict[tuple[str, str, str], Callable[[Any], None]] = {}


def proof(framework: str, kind: str, old: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def register(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        PROOFS[(framework, kind, old)] = fn
        return fn
    return register


def installed_at_least(framework: str, since: str) -> str:
    version = installed_version(framework)
    assert version is not None, f"{framework} is not installed"
    assert parse_version(version) >= parse_version(since), f"installed {framework} {version} predates {since}"
    return version


# ---------------------------------------------------------------------------------------------- ms-swift

@proof("swift", "flag", "train_type")
def _tuner_type(entry: Any) -> None:
    require_module("swift")
    from fakehr_orchestra.preflight.swift_flags import parser_for

    version = installed_at_least("swift", entry.since)
    options = parser_for("sft", version)._option_string_actions  # noqa: SLF001 - argparse's own flag table
    assert f"--{entry.new}" in options and f"--{entry.old}" not in options


@proof("swift", "env", "SIZE_FACTOR")
def _size_factor(entry: Any) -> None:
    """Dropped: the name appears nowhere in the installed ms-swift or qwen-vl-utils, and ms-swift's own patch of
    qwen-vl-utils' resize constants, run with SIZE_FACTOR (and IMAGE_FACTOR, which an earlier translation invented)
    set, reads neither."""
    require_module("swift")
    require_module("qwen_vl_utils")
    installed_at_least("swift", entry.since)
    pattern = re.compile(rf"{entry.old}|{entry.old.lower()}")
    for package in ("swift", "qwen_vl_utils"):
        hits = [str(p) for p in (SITE / package).rglob("*.py") if pattern.search(p.read_text(errors="replace"))]
        assert hits == [], hits
    # ms-swift reads IMAGE_FACTOR only when qwen-vl-utils has an IMAGE_FACTOR constant to override; 0.0.14 derives
    # the factor from the model's patch size instead (patch 14 x merge 2 = 28 for Qwen2.5-VL)
    probe = ("import qwen_vl_utils.vision_process as vp; from swift.model.models.qwen import patch_qwen_vl_utils; "
             "res = patch_qwen_vl_utils(vp); print(sorted(res)); print(getattr(vp, 'IMAGE_FACTOR', None))")
    env = {**os.environ, "SIZE_FACTOR": "8", "IMAGE_FACTOR": "8"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    keys_text, constant = out.stdout.strip().splitlines()[-2:]
    keys = ast.literal_eval(keys_text)
    assert "image_max_token_num" in keys  # what it does read: token budgets (from MAX_PIXELS / factor^2)
    assert "image_factor" not in keys and "size_factor" not in keys and constant == "None"


# ---------------------------------------------------------------------------------------------- verl

def verl_config(overrides: list[str], config_dir: Path | None = None) -> Any:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if config_dir is None:
        import verl
        config_dir = Path(verl.__file__).parent / "trainer" / "config"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # reward paths in the recipes are relative to the repository


def _custom_reward_function(entry: Any) -> None:
    require_module("verl")
    from verl.trainer.ppo.reward import get_custom_reward_fn

    installed_at_least("verl", entry.since)
    new = verl_config([f"{entry.new}.path=rewards/fake_hr1.py", f"{entry.new}.name=compute_score"])
    fn = get_custom_reward_fn(new)
    assert fn is not None and fn(data_source="x", solution_str="<think>\n\n</think>\n\nfake",
                                 ground_truth="fake")["acc"] == 1.0
    old = verl_config([f"{entry.old}.path=rewards/fake_hr1.py", f"{entry.old}.name=compute_score"])
    assert get_custom_reward_fn(old) is None  # composes, and is ignored: the run would use the default reward


def _reward_manager(entry: Any) -> None:
    """The three manager keys together: verl's own resolver loads our manager class from the new keys only."""
    require_module("verl")
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    installed_at_least("verl", entry.since)
    values = {"reward_model.reward_manager": "HybridRewardManager", "reward_model.reward_loop_source": "importlib",
              "reward_model.reward_loop_module_path": "rewards/hybrid_manager.py"}
    new = verl_config([f"{translate('verl', 'key', k, '0.9')[0]}={v}" for k, v in values.items()])
    assert resolve_reward_manager_cls(new).__name__ == "HybridRewardManager"
    old = verl_config([f"{k}={v}" for k, v in values.items()])
    assert resolve_reward_manager_cls(old).__name__ == "NaiveRewardManager"


for _old in ("reward_model.reward_manager", "reward_model.reward_loop_source", "reward_model.reward_loop_module_path"):
    PROOFS[("verl", "key", _old)] = _reward_manager
PROOFS[("verl", "key", "custom_reward_function")] = _custom_reward_function


@pytest.mark.parametrize("entry", TRANSLATIONS, ids=lambda e: f"{e.framework}-{e.kind}-{e.old}")
def test_every_entry_is_proven(entry: Any, in_root: None) -> None:
    assert (entry.framework, entry.kind, entry.old) in PROOFS, "add a proof for this translation"
    PROOFS[(entry.framework, entry.kind, entry.old)](entry)


def test_swift_4_render_sets_no_image_factor() -> None:
    plan = render(load_recipe(RECIPES / "fake_hr1.yaml"), "sft", {"swift": "4.6"})
    assert "IMAGE_FACTOR" not in plan.env and "SIZE_FACTOR" not in plan.env
    assert render(load_recipe(RECIPES / "fake_hr1.yaml"), "sft", {"swift": "3.12"}).env["SIZE_FACTOR"] == "8"


# ---------------------------------------------------------------------------------------------- verl 0.8

def verl_08_wheel() -> Path:
    """verl 0.8.0 from PyPI (1.3 MB, cached in .cache/wheels): its own config and migration code."""
    cache = ROOT / ".cache" / "wheels"
    found = sorted(cache.glob("verl-0.8.0-*.whl"))
    if not found:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "verl==0.8.0", "--no-deps", "-q", "-d",
                               str(cache)], capture_output=True, text=True, timeout=600)
        found = sorted(cache.glob("verl-0.8.0-*.whl"))
        if not found:
            message = f"cannot download verl 0.8.0 from PyPI: {proc.stderr.strip()[-500:]}"
            pytest.fail(message) if IN_CI else pytest.skip(message)
    return found[0]


def test_verl_0_8_rendering_composes_and_migrates_with_verl_0_8s_own_code(tmp_path: Path) -> None:
    """--versions verl=0.8 with the hybrid manager: composed against verl 0.8's own ppo_trainer config, then moved
    by verl 0.8's own `migrate_legacy_reward_impl` (main_ppo calls it) to the keys its reward loader reads."""
    require_module("hydra")
    with zipfile.ZipFile(verl_08_wheel()) as whl:
        for name in whl.namelist():
            if name.startswith("verl/trainer/config/") or name == "verl/experimental/reward_loop/reward_loop.py":
                whl.extract(name, tmp_path)
        main_ppo = whl.read("verl/trainer/main_ppo.py").decode()
    assert "config = migrate_legacy_reward_impl(config)" in main_ppo
    recipe = load_recipe(RECIPES / "fake_hr1.yaml")
    plan = render(recipe, "grpo", {"verl": "0.8"}).resolve(
        {"train_file_path": "/d/train.parquet", "model_path": "/m", "model_output_path": "/o", "WORLD_SIZE": "1",
         "RANK": "0", "MASTER_ADDR": "h"})
    assert any(a.startswith("reward_model.reward_loop_source=") for a in plan.options)
    cfg = verl_config(plan.options, tmp_path / "verl" / "trainer" / "config")
    source = (tmp_path / "verl" / "experimental" / "reward_loop" / "reward_loop.py").read_text()
    func = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)
                and n.name == "migrate_legacy_reward_impl")
    from omegaconf import open_dict
    namespace: dict[str, Any] = {"open_dict": open_dict}
    exec(compile(ast.Module(body=[func], type_ignores=[]), "verl-0.8.0/reward_loop.py", "exec"), namespace)
    migrated = namespace["migrate_legacy_reward_impl"](cfg)
    manager = migrated.reward.reward_manager
    assert (manager.source, manager.name, manager.module.path) == ("importlib", "HybridRewardManager",
                                                                   str(shipped_file("rewards/hybrid_manager.py")))
    reward = migrated.reward.custom_reward_function
    assert (reward.path, reward.name) == (str(shipped_file("rewards/fake_hr1.py")), "compute_score")
    assert reward.reward_kwargs.hybrid_margin == 0.05 and "response_prefix" not in reward.reward_kwargs


def test_versions_without_a_proof_are_refused() -> None:
    from fakehr_orchestra.engines.versions import parse_versions_option

    assert parse_versions_option("swift=3.12,verl=0.8") == {"swift": "3.12", "verl": "0.8"}
    for bad in ("verl=0.7", "verl=0.10", "swift=5.0"):
        with pytest.raises(ValueError, match="cannot check"):
            parse_versions_option(bad)
