"""Real torchrun across two "nodes" on loopback: two node processes (NODE_RANK 0 and 1, MASTER_ADDR 127.0.0.1), each
running the smoke SFT plan through the real ms-swift via `run_plan`, join one rendezvous (world size 2, gloo on CPU)
and write one checkpoint. This is what `make sft NODES=2 NODE_RANK=r MASTER_ADDR=a` does on two machines."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.engines.torchrun import with_nodes
from fakehr_orchestra.launch.local import run_plan
from fakehr_orchestra.launch.ray_cluster import free_port
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES, ROOT, framework_env, require_executable, require_module

pytestmark = pytest.mark.integration


def test_two_node_torchrun_on_loopback_trains_one_run(tiny, tmp_path, monkeypatch):
    require_module("swift")
    require_executable("swift")
    fixtures = tiny["model"].rsplit("/model", 1)[0]
    recipe = load_recipe(RECIPES / "fake_hr1.yaml", [f"vars.fixtures={fixtures}", f"vars.out={tmp_path}"],
                         profile="smoke")
    plan = render(recipe, "sft")
    assert not {"NNODES", "NODE_RANK"} & set(plan.env)  # the smoke profile is single-node: ranks come from here
    port = free_port()
    monkeypatch.chdir(ROOT)
    environ = {k: v for k, v in framework_env().items() if k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                                                 "MODELSCOPE_OFFLINE", "TOKENIZERS_PARALLELISM")}
    codes: dict[int, int] = {}

    def node(rank: int) -> None:
        node_plan = with_nodes(plan, nodes=2, node_rank=rank, master_addr="127.0.0.1", master_port=port,
                               nproc_per_node=1)
        codes[rank] = run_plan(node_plan, tmp_path / f"node{rank}.log", environ, echo=False)

    threads = [threading.Thread(target=node, args=(rank,)) for rank in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    logs = {rank: (tmp_path / f"node{rank}.log").read_text(errors="replace") for rank in (0, 1)}
    assert codes == {0: 0, 1: 0}, {rank: log[-3000:] for rank, log in logs.items()}
    for rank, log in logs.items():
        # ms-swift re-launched itself through torchrun with this node's place in the job
        assert re.search(rf"torch\.distributed\.run .*--nnodes 2 --node_rank {rank} --master_addr 127\.0\.0\.1",
                         log), log[:3000]
        assert re.search(r"world_size: 2\b", log), log[-3000:]
    checkpoints = sorted(Path(tmp_path, "sft").glob("v*/checkpoint-*"))
    assert len(checkpoints) == 1, checkpoints
    assert (checkpoints[0] / "model.safetensors").exists() or list(checkpoints[0].glob("*.safetensors"))
    assert f"last_model_checkpoint: {checkpoints[0]}" in logs[0]
