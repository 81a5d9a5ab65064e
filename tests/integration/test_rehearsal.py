"""The rehearsal with the real frameworks on CPU: verl's start-up code (datasets with the real processor and the
overlong filter, the reward worker, a scored batch) and ms-swift's (arguments, template, encoding), on both shipped
recipes; then a catalogue of broken recipes, each caught at the step and recipe key where it breaks, none hanging."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.rehearsal import rehearse
from tests.conftest import RECIPES, ROOT, framework_env, require_module

pytestmark = pytest.mark.integration
PLUGINS = Path(__file__).resolve().parents[1] / "rehearsal" / "plugins"


def _validate(recipe: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakehr_orchestra", "validate", "--rehearse", str(RECIPES / recipe),
                           "-p", "smoke", "grpo.engine=verl", *extra], cwd=ROOT, env=framework_env(),
                          capture_output=True, text=True, timeout=900)


def test_rehearsal_of_the_fake_hr1_smoke_with_verl_passes_and_lists_the_steps(tiny: dict[str, str]) -> None:
    require_module("verl")
    require_module("swift")
    proc = _validate("fake_hr1.yaml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "[data] sample of the data stage: ok" in out
    for line in ("[sft] encode: ok", "[grpo] imports: ok", "[grpo] train dataset: ok", "[grpo] val dataset: ok",
                 "[grpo] reward manager: ok", "[grpo] scored batch: ok"):
        assert line in out, out
    assert "HybridRewardManager" in out and "rows kept" in out and "hybrid_bonus" in out


def test_rehearsal_of_the_fakevlm_r1_smoke_reports_the_critic_as_skipped(tiny: dict[str, str]) -> None:
    require_module("verl")
    proc = _validate("fakevlm_r1.yaml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "[grpo] scored batch: ok" in proc.stdout
    assert "[grpo] critic: skipped" in proc.stdout and "[sft] encode: ok" in proc.stdout


# ---------------------------------------------------------------------------------------------- the catalogue

@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, tiny: dict[str, str]) -> dict[str, str]:
    from fakehr_orchestra.data.stage import prepare

    return prepare(load_recipe(RECIPES / "fake_hr1.yaml", profile="smoke").model,
                   tmp_path_factory.mktemp("data"), workers=1)


BROKEN = {
    # one rehearsal per group; each group's mistakes break independent steps
    "val_default_and_import_error": ["~grpo.val_files", f"grpo.reward.path={PLUGINS / 'import_error.py'}"],
    "val_missing_and_no_manager": ["grpo.val_files=/nonexistent/val.parquet",
                                   "grpo.reward.manager.name=NoSuchManager"],
    "all_overlong": ["grpo.overrides.data.max_prompt_length=16"],
    "reward_raises": [f"grpo.reward.path={PLUGINS / 'raises_on_truth.py'}", "~grpo.reward.manager"],
}


@pytest.fixture(scope="module")
def rehearsed(data: dict[str, str], monkeypatch_module: Any) -> dict[str, dict[str, Any]]:
    require_module("verl")
    monkeypatch_module.chdir(ROOT)
    out = {}
    for name, mistakes in BROKEN.items():
        base = ["grpo.engine=verl", f"grpo.train_files={data['parquet']}", f"grpo.val_files={data['val_parquet']}"]
        recipe = load_recipe(RECIPES / "fake_hr1.yaml", base + mistakes, profile="smoke")
        out[name] = {r.step: r for r in rehearse(recipe, ("grpo",), framework_env())}
    return out


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _failed(steps: dict[str, Any], step: str, key: str) -> Any:
    result = steps[step]
    assert result.status == "failed" and result.key == key, result
    return result


def test_val_files_left_at_verls_default(rehearsed: dict[str, dict[str, Any]]) -> None:
    result = _failed(rehearsed["val_default_and_import_error"], "val dataset", "grpo.val_files")
    assert "gsm8k/test.parquet does not exist" in result.detail and "grpo_val.parquet" in result.fix


def test_a_missing_val_file(rehearsed: dict[str, dict[str, Any]]) -> None:
    steps = rehearsed["val_missing_and_no_manager"]
    assert "/nonexistent/val.parquet does not exist" in _failed(steps, "val dataset", "grpo.val_files").detail
    assert steps["train dataset"].status == "ok"


def test_every_row_filtered_as_overlong(rehearsed: dict[str, dict[str, Any]]) -> None:
    steps = rehearsed["all_overlong"]
    result = _failed(steps, "train dataset", "grpo.overrides.data.max_prompt_length")
    assert "none of the 22 rows" in result.detail and "max_prompt_length=16" in result.detail
    assert steps["scored batch"].status == "skipped"


def test_a_reward_file_with_an_import_error(rehearsed: dict[str, dict[str, Any]]) -> None:
    steps = rehearsed["val_default_and_import_error"]
    assert "fakehr_no_such_dependency" in _failed(steps, "reward function", "grpo.reward.path").detail
    assert steps["scored batch"].status == "skipped"


def test_a_reward_function_raising_on_the_datasets_ground_truth(rehearsed: dict[str, dict[str, Any]]) -> None:
    steps = rehearsed["reward_raises"]
    assert steps["reward function"].status == "ok"
    assert "KeyError" in _failed(steps, "scored batch", "grpo.reward.path").detail


def test_a_reward_manager_class_that_does_not_exist(rehearsed: dict[str, dict[str, Any]]) -> None:
    steps = rehearsed["val_missing_and_no_manager"]
    assert "NoSuchManager" in _failed(steps, "reward manager", "grpo.reward.manager.name").detail


# ------------------------------------------------------------------------ what a rehearsal does not try to run

def test_a_failed_data_sample_skips_the_training_stages(tiny: dict[str, str]) -> None:
    """The training stages would read exports the data stage never wrote (ms-swift would take the missing jsonl
    for a hub id and try to download it until the step's timeout): they are skipped, saying why."""
    fakeclue = ROOT / ".cache" / "tiny" / "data" / "FakeClue" / "data_json" / "train.json"
    source = (f"data.sources=[{{name: fakeclue, kind: fakeclue, path: {fakeclue}, label_convention: fakeclue, "
              f"image_root: /nonexistent/FakeClue/train}}]")
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", [source], profile="smoke")
    start = time.monotonic()
    results = rehearse(recipe, ("data", "sft", "grpo"), framework_env())
    took = time.monotonic() - start
    by_stage = {(r.stage, r.step): r for r in results}
    data = by_stage[("data", "sample of the data stage")]
    assert data.status == "failed" and "fakeclue" in data.detail and "/nonexistent/FakeClue/train" in data.detail
    for stage in ("sft", "grpo"):
        assert by_stage[(stage, "start-up")].status == "skipped"
        assert "data sample failed" in by_stage[(stage, "start-up")].detail
    assert [r.stage for r in results if r.stage in ("sft", "grpo") and r.step != "start-up"] == []
    assert took < 60, took


def test_an_sft_dataset_not_on_this_machine_is_not_looked_up_on_the_hub(tiny: dict[str, str]) -> None:
    require_module("swift")
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", ["sft.dataset=[/nonexistent/data/sft.jsonl]"], profile="smoke")
    start = time.monotonic()
    steps = {r.step: r for r in rehearse(recipe, ("sft",), framework_env())}
    assert steps["arguments"].status == "ok" and steps["template"].status == "ok"
    assert steps["dataset"].status == "skipped" and "/nonexistent/data/sft.jsonl" in steps["dataset"].detail
    assert "hub" in steps["dataset"].detail and steps["encode"].status == "skipped"
    assert time.monotonic() - start < 100  # the dataset step's timeout is 120 s: no download was attempted


def test_a_declared_val_file_is_rehearsed_as_declared_in_a_pipeline_run(tiny: dict[str, str]) -> None:
    """With the data stage in the run, the train files are the data sample's, but a val file declared outside
    data.workdir is what verl will read at start-up: the rehearsal loads that one (and fails on it), not a sample
    of the data stage's test split."""
    require_module("verl")
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", ["grpo.engine=verl", "grpo.val_files=[/nonexistent/val.parquet]"],
                         profile="smoke")
    steps = {r.step: r for r in rehearse(recipe, ("data", "grpo"), framework_env())}
    assert steps["sample of the data stage"].status == "ok"
    assert steps["train dataset"].status == "ok", steps["train dataset"]
    result = _failed(steps, "val dataset", "grpo.val_files")
    assert "/nonexistent/val.parquet does not exist" in result.detail and "grpo_val.parquet" in result.fix
