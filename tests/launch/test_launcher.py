"""choose_launcher: the one place a plan's launcher is chosen, all with one signature (plan, log_path, echo)."""

from __future__ import annotations

import inspect

from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.launcher import choose_launcher
from fakehr_orchestra.launch.local import run_plan
from fakehr_orchestra.launch.ray_cluster import run_on_ray
from fakehr_orchestra.launch.srun import run_on_allocation
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES


def _cluster(*overrides: str):
    return load_recipe(RECIPES / "fakevlm_r1.yaml", list(overrides)).model.cluster


def _takes_the_interface(launcher) -> None:
    inspect.signature(launcher).bind(Plan(stage="t", argv=["true"]), "t.log", echo=False)


def test_a_local_or_torchrun_plan_runs_on_this_node():
    for kind in ("local", "torchrun"):
        launcher = choose_launcher(Plan(stage="t", argv=["true"], launcher=kind), _cluster())
        assert launcher is run_plan
        _takes_the_interface(launcher)


def test_in_a_slurm_job_a_torchrun_plan_runs_on_every_node_and_others_here():
    cluster = _cluster("cluster.slurm.export_cuda_visible_devices=true")
    launcher = choose_launcher(Plan(stage="sft", argv=["swift", "sft"], launcher="torchrun"), cluster, slurm_nodes=2)
    assert launcher.func is run_on_allocation and launcher.keywords == {"export_cuda_visible_devices": True}
    _takes_the_interface(launcher)
    assert choose_launcher(Plan(stage="data", argv=["true"]), cluster, slurm_nodes=2) is run_plan


def test_a_ray_plan_gets_a_cluster_sized_as_the_plan_says():
    plan = Plan(stage="grpo", argv=["python3"], launcher="ray", nnodes="${N}", procs_per_node="4",
                env={"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, env_refs=["N"])
    launcher = choose_launcher(plan, _cluster("cluster.ray.address=10.0.0.9:6379"), environ={"N": "2"})
    assert launcher.func is run_on_ray
    assert launcher.keywords["nodes"] == 2 and launcher.keywords["gpus_per_node"] == 4
    assert launcher.keywords["address"] == "10.0.0.9:6379"
    assert launcher.keywords["environ"] == {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    _takes_the_interface(launcher)
    # in a Slurm job the job's own Ray cluster wins over the recipe's address
    inside = choose_launcher(plan, _cluster("cluster.ray.address=10.0.0.9:6379"), slurm_nodes=2,
                             environ={"N": "2", "RAY_ADDRESS": "10.0.0.1:6379"})
    assert inside.keywords["address"] == "10.0.0.1:6379"
