"""verl's real start-up on CPU: everything main_ppo's task runner imports is installed (the verl-core extra), and
`python -m verl.trainer.main_ppo` with the rendered smoke plan gets past every import, the config checks and both
datasets (train and val, with the real processor), and stops only where verl's GPU workers begin: verl's own
resource check refuses 0 GPUs. (The training steps themselves need a GPU; nothing here stands in for them.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES, ROOT, framework_env, require_module

pytestmark = pytest.mark.integration


def test_what_main_ppos_task_runner_imports_is_installed() -> None:
    require_module("verl")
    probe = ("import transfer_queue, cachetools; import verl.trainer.main_ppo; "
             "from verl.trainer.ppo.v1 import AgentLoopManagerTQ, get_trainer_cls; print(get_trainer_cls('sync'))")
    proc = subprocess.run([sys.executable, "-c", probe], env=framework_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "PPOTrainerSync" in proc.stdout


def test_main_ppo_gets_past_imports_and_datasets_and_stops_at_the_gpu(tiny: dict[str, str], tmp_path: Path) -> None:
    require_module("verl")
    from fakehr_orchestra.data.stage import prepare

    data = prepare(load_recipe(RECIPES / "fake_hr1.yaml", profile="smoke").model, tmp_path / "data", workers=1)
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", [
        "grpo.engine=verl", f"grpo.train_files={data['parquet']}", f"grpo.val_files={data['val_parquet']}",
        f"grpo.output_dir={tmp_path / 'grpo'}"], profile="smoke")
    plan = render(recipe, "grpo").resolve({})
    # on 2 cores Ray cannot place TransferQueue's 8 storage actors + controller (1 CPU each): declare 16 to Ray;
    # RAY_ADDRESS=local: a Ray cluster of its own, never one another test left running on this machine
    argv = [sys.executable, *plan.argv[1:], "ray_kwargs.ray_init.num_cpus=16"]
    assert f"hydra.run.dir={tmp_path / 'grpo' / 'hydra'}" in argv  # the plan keeps hydra's outputs/ out of cwd
    outputs_before = set((ROOT / "outputs").glob("*/*")) if (ROOT / "outputs").exists() else set()
    log = tmp_path / "main_ppo.log"
    env = framework_env(RAY_ADDRESS="local", **plan.env)
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log.read_text(errors="replace")
    # optional engines verl probes (torchtitan, megatron, ...) warn with ModuleNotFoundError; nothing may raise one
    raised = [line for line in text.splitlines() if ("ModuleNotFoundError" in line or "FileNotFoundError" in line)
              and "UserWarning" not in line]
    assert raised == [], raised
    lens = [line.rsplit(":", 1)[1].strip() for line in text.splitlines() if "filter dataset len:" in line]
    train_rows = sum(1 for _ in open(data["grpo"]))
    val_rows = sum(1 for _ in open(data["eval"]))
    assert lens == [str(train_rows), str(val_rows)], lens  # both datasets built, nothing filtered
    assert "Total available GPUs 0 is less than total desired GPUs 1" in text, text[-4000:]
    assert (tmp_path / "grpo" / "hydra" / ".hydra" / "config.yaml").is_file()  # beside the checkpoints
    assert (set((ROOT / "outputs").glob("*/*")) if (ROOT / "outputs").exists() else set()) == outputs_before
