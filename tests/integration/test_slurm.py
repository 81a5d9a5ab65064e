"""Real Slurm: a one-node cluster (slurmctld + slurmd + munge, configured under a temp dir by the fixture), the
smoke SFT submitted with `fakehr-orchestra submit`, waited for through `fakehr-orchestra status`, then the
checkpoint and the job log checked; the Ray script on Slurm sees the GPUs the job asked for. Needs root and Debian's
slurm-wlm (launch/install_test_deps.sh)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.ray_cluster import free_port
from fakehr_orchestra.launch.slurm import SbatchOptions, render_sbatch
from tests.conftest import IN_CI, ROOT, VENV_BIN, framework_env, require_executable, require_module
from tests.integration.slurm_cluster import FAKE_GPUS, available, slurm_cluster

pytestmark = pytest.mark.integration
CLI = os.path.join(VENV_BIN, "fakehr-orchestra")
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


@pytest.fixture
def slurm(tmp_path_factory):
    missing = available()
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    yield from slurm_cluster(tmp_path_factory.mktemp("slurm"))


def _cli(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_submit_smoke_sft_to_slurm_trains_and_status_reports_it(slurm, tiny, tmp_path):
    require_module("swift")
    require_executable("swift")
    fixtures = tiny["model"].rsplit("/model", 1)[0]
    env = framework_env(**slurm.env)
    run_dir, out = tmp_path / "run", tmp_path / "out"
    proc = _cli(["submit", "recipes/fake_hr1.yaml", f"vars.fixtures={fixtures}", f"vars.out={out}", "-p", "smoke",
                 "--stage", "sft", "--nodes", "1", "--run-dir", str(run_dir)], env)
    job_id = re.search(r"submitted job (\d+)", proc.stdout).group(1)
    record = json.loads((run_dir / "slurm.json").read_text())
    assert record["job_id"] == job_id and record["stage"] == "sft" and record["nodes"] == 1
    assert (run_dir / "sft.sbatch").read_text().startswith("#!/bin/bash")

    deadline, states = time.monotonic() + 900, []
    while time.monotonic() < deadline:
        status = json.loads(_cli(["status", str(run_dir), "--json"], env).stdout)
        states.append(status["state"])
        if status["state"] in FINAL:
            break
        time.sleep(2)
    log = Path(run_dir / f"slurm-{job_id}.out").read_text(errors="replace")
    assert status["state"] == "COMPLETED", (states[-5:], slurm.logs()[-3000:], log[-4000:])
    assert status["source"] in ("squeue", "scontrol", "sacct")
    assert "RUNNING" in states or "PENDING" in states  # status saw the job before it ended

    # the batch script's srun task ran swift, which re-launched itself through torchrun as node 0 of 1
    assert f"fakehr-orchestra: job {job_id}, 1 node(s)" in log
    assert re.search(r"torch\.distributed\.run .*--nnodes 1 --node_rank 0 --master_addr \S+", log), log[-4000:]
    checkpoints = sorted(out.glob("sft/v*/checkpoint-*"))
    assert len(checkpoints) == 1, (checkpoints, log[-3000:])
    assert f"last_model_checkpoint: {checkpoints[0]}" in log

    human = _cli(["status", str(run_dir)], env).stdout
    assert f"job {job_id} (sft, 1 node(s)): COMPLETED" in human

    # Requeue it (what preemption or our USR1 trap does): the restarted job resumes from the checkpoint.
    subprocess.run(["scontrol", "requeue", job_id], env=env, check=True, capture_output=True, timeout=30)
    # slurmctld holds a requeued job back for a while (BeginTime); no need to wait for that in a test
    for _ in range(20):
        if subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=env,
                          capture_output=True, timeout=30).returncode == 0:
            break
        time.sleep(0.5)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = json.loads(_cli(["status", str(run_dir), "--json"], env).stdout)
        if status["state"] in FINAL and status.get("restarts") == "1":
            break
        time.sleep(2)
    log = Path(run_dir / f"slurm-{job_id}.out").read_text(errors="replace")
    assert status["state"] == "COMPLETED" and status.get("restarts") == "1", (status, log[-4000:])
    assert f"restart 1; resuming from: {checkpoints[0]}" in log
    assert re.search(rf"run sh: .*--resume_from_checkpoint {re.escape(str(checkpoints[0]))}", log), log[-4000:]


def test_status_of_a_dir_that_is_no_run_dir_is_a_clear_error(tmp_path):
    proc = subprocess.run([CLI, "status", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no slurm.json" in proc.stderr and "Traceback" not in proc.stderr


def _wait_final(run_dir: Path, env: dict[str, str], timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = json.loads(_cli(["status", str(run_dir), "--json"], env).stdout)
        if status["state"] in FINAL:
            return status
        time.sleep(2)
    raise AssertionError(f"job in {run_dir} not finished after {timeout_s} s: {status}")


def test_ray_script_on_slurm_starts_ray_with_the_gpus_the_job_was_granted(slurm, tmp_path):
    """Issue 11: the job asks Slurm for its GPUs per node and every Ray node is started with what Slurm granted
    (SLURM_GPUS_ON_NODE, SLURM_CPUS_ON_NODE). The node's GPUs are fake gres (plain files; see slurm_cluster.py), so
    the driver is a stand-in for verl's (whose workers need a real GPU): it prints what the Ray cluster offers."""
    require_executable("ray")
    run_dir = tmp_path / "ray"
    driver = ("import json, os, ray; ray.init(); "
              "print('RESOURCES', json.dumps(ray.cluster_resources()), os.environ.get('SLURM_GPUS_ON_NODE'))")
    plan = Plan(stage="grpo", argv=["python3", "-c", driver], engine="verl", launcher="ray")
    opts = SbatchOptions(nodes=1, job_name="ray-gpus", run_dir=str(run_dir), chdir=str(ROOT), venv_bin=VENV_BIN,
                         gpus_per_node=1, ray_port=free_port(), ray_wait_s=120)
    script = render_sbatch(plan, opts)
    assert "#SBATCH --gpus-per-node=1\n" in script
    ray_tmp = tempfile.mkdtemp(prefix="frs-")  # short: Ray's socket paths must stay under 107 bytes
    try:
        env = framework_env(**slurm.env, RAY_TMPDIR=ray_tmp)
        run_dir.mkdir()
        (run_dir / "grpo.sbatch").write_text(script)
        job_id = subprocess.run(["sbatch", "--parsable", str(run_dir / "grpo.sbatch")], env=env, text=True,
                                capture_output=True, check=True, timeout=60).stdout.strip()
        (run_dir / "slurm.json").write_text(json.dumps({"job_id": job_id, "stage": "grpo", "nodes": 1}))
        status = _wait_final(run_dir, env, 300)
        log = (run_dir / f"slurm-{job_id}.out").read_text(errors="replace")
        assert status["state"] == "COMPLETED", log[-4000:]
        line = next(ln for ln in log.splitlines() if ln.startswith("RESOURCES "))
        payload, granted = line.split(" ", 1)[1].rsplit(" ", 1)
        resources = json.loads(payload)
        # one of the node's FAKE_GPUS GPUs, as granted; Ray's own detection would find none on this machine
        assert FAKE_GPUS > 1 and granted == "1" and resources["GPU"] == 1.0, line
        assert resources["CPU"] == 1.0, line  # the one CPU Slurm granted the job (no --cpus-per-task)
        assert '"gpus": 1.0' in log  # the readiness poll waited for nodes x GPUs
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
