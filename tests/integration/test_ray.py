"""Real Ray: a head and a worker on this machine as separate `ray start` processes (CPU only), a wait that polls
Ray until both have joined, a driver (run through run_plan with RAY_ADDRESS) that sees 2 nodes, and a teardown
after which no process of the cluster is left (checked in the process table)."""

from __future__ import annotations

import os
import sys

import pytest

from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.local import run_plan
from fakehr_orchestra.launch.ray_cluster import LocalRayCluster, RayClusterError
from tests.conftest import require_executable, require_module

pytestmark = pytest.mark.integration

DRIVER = ("import ray; ray.init(); alive = [n for n in ray.nodes() if n['Alive']]; "
          "print('DRIVER_SEES_NODES', len(alive), 'CPUS', ray.cluster_resources().get('CPU'))")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_head_and_worker_join_driver_sees_two_nodes_and_teardown_leaves_nothing(tmp_path):
    require_module("ray")
    require_executable("ray")
    cluster = LocalRayCluster()
    seen_pids: list[int] = []
    try:
        cluster.start_head(num_cpus=1, num_gpus=0)
        cluster.add_worker(num_cpus=1, num_gpus=0)
        joined = cluster.wait(nodes=2, cpus=2, timeout_s=180)
        assert joined["nodes"] == 2 and joined["cpus"] == 2
        seen_pids = cluster.pids()
        assert len(seen_pids) >= 4  # two `ray start` + at least gcs_server and two raylets
        driver = Plan(stage="ray-driver", argv=[sys.executable, "-c", DRIVER])
        code = run_plan(driver, tmp_path / "driver.log", cluster.client_env(), echo=False)
        log = (tmp_path / "driver.log").read_text()
        assert code == 0, log[-3000:]
        assert "DRIVER_SEES_NODES 2 CPUS 2.0" in log
    finally:
        cluster.shutdown()
    assert cluster.pids() == []
    assert [pid for pid in seen_pids if _alive(pid)] == []
    assert all(p.poll() is not None for p in cluster.procs)


def test_wait_names_what_joined_when_nodes_are_missing():
    require_module("ray")
    require_executable("ray")
    with LocalRayCluster() as cluster:
        cluster.start_head(num_cpus=1, num_gpus=0)
        with pytest.raises(RayClusterError, match=r"waited 8s for 2 nodes.*\"nodes\": 1"):
            cluster.wait(nodes=2, timeout_s=8)
    assert cluster.pids() == []
    assert os.path.isdir(cluster.work_dir)


def test_run_on_ray_starts_a_head_runs_the_driver_and_attaches_to_an_existing_cluster(tmp_path):
    """The verl stage's path: torchrun env stripped, RAY_ADDRESS set for the driver, own head torn down."""
    require_module("ray")
    require_executable("ray")
    from fakehr_orchestra.launch.ray_cluster import run_on_ray

    driver = Plan(stage="grpo", argv=[sys.executable, "-c", DRIVER + "; import os; print('NNODES' in os.environ)"],
                  env={"NNODES": "${WORLD_SIZE}"}, env_refs=["WORLD_SIZE"])
    assert run_on_ray(driver, tmp_path / "own.log", nodes=1, echo=False) == 0  # WORLD_SIZE not needed any more
    own = (tmp_path / "own.log").read_text()
    assert "DRIVER_SEES_NODES 1" in own and "\nFalse\n" in own
    assert [p for p in os.listdir("/proc") if p.isdigit() and b"frr-" in _cmd(p)] == []

    with LocalRayCluster() as cluster:
        cluster.start_head(num_cpus=1, num_gpus=0)
        cluster.add_worker(num_cpus=1, num_gpus=0)
        code = run_on_ray(driver, tmp_path / "attach.log", nodes=2, address=cluster.address, echo=False)
        assert code == 0
        assert "DRIVER_SEES_NODES 2" in (tmp_path / "attach.log").read_text()
    assert cluster.pids() == []


def _cmd(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""
