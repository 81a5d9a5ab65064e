"""The pipeline as chained jobs on a real one-node Slurm cluster (tests/integration/slurm_cluster.py), with the real
ms-swift on CPU: `submit recipes/fake_hr1.yaml --profile smoke` whose SFT job fails (a file where its output dir
goes: something outside the recipe, which a resume would refuse to change) leaves the later jobs cancelled by Slurm;
`submit --resume` then submits only what is not finished and the chain completes to its report; a requeued job of
the chain continues from the run dir. A 2-point sweep ends in one side-by-side report. Needs root and Debian's
slurm-wlm (launch/install_test_deps.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT, VENV_BIN, framework_env, require_executable, require_module
from tests.integration.slurm_cluster import available, slurm_cluster

pytestmark = pytest.mark.integration
CLI = os.path.join(VENV_BIN, "fakehr-orchestra")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = available()
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    yield from slurm_cluster(tmp_path_factory.mktemp("slurm"))


@pytest.fixture
def env(slurm, tiny):
    require_module("swift")
    require_executable("swift")
    return framework_env(**slurm.env)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _status(run_dir: Path, env: dict[str, str]) -> dict:
    return json.loads(_cli(["status", str(run_dir), "--json"], env).stdout)


def _wait_idle(run_dir: Path, env: dict[str, str], timeout_s: float, logs: str = "") -> dict:
    """Poll `status` until no job of the chain is queued or running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _status(run_dir, env)
        if status["live_jobs"] == 0:
            return status
        time.sleep(3)
    raise AssertionError(f"{run_dir}: jobs still live after {timeout_s} s: {status['stages']}")


def _by_stage(status: dict) -> dict[str, dict]:
    return {s["stage"]: s for s in status["stages"]}


def test_chain_stops_at_a_failed_sft_and_resume_completes_it_to_the_report(env, tiny, tmp_path, slurm):
    fixtures = tiny["model"].rsplit("/model", 1)[0]
    run_dir = tmp_path / "run"
    recipe = ["recipes/fake_hr1.yaml", "-p", "smoke", f"vars.fixtures={fixtures}", f"vars.out={tmp_path / 'out'}"]
    first = _cli(["submit", *recipe, "--run-dir", str(run_dir)], env)
    assert "submitted 4 job(s)" in first.stdout, first.stdout
    # the SFT job (which waits for the data job) fails: ms-swift cannot create its output dir
    (run_dir / "sft").write_text("in the way\n")
    status = _wait_idle(run_dir, env, 600)
    stages = _by_stage(status)
    assert [stages[s]["status"] for s in ("data", "sft")] == ["done", "failed"], status["stages"]
    assert stages["data"]["state"] == "COMPLETED" and stages["sft"]["state"] == "FAILED"
    for later in ("grpo", "merge", "eval"):  # merge (nothing to do after ms-swift's GRPO) runs in eval's job
        assert stages[later]["state"] == "CANCELLED" and stages[later]["reason"] == "DependencyNeverSatisfied", \
            status["stages"]
        assert stages[later]["status"] == "not started"
    assert stages["merge"]["job_id"] == stages["eval"]["job_id"]
    text = _cli(["status", str(run_dir)], env).stdout
    assert "CANCELLED (DependencyNeverSatisfied)" in text and "continue with: fakehr-orchestra submit" in text
    assert Path(stages["sft"]["log"]).is_file() and not Path(stages["grpo"]["log"]).exists()

    (run_dir / "sft").unlink()
    second = _cli(["submit", *recipe, "--run-dir", str(run_dir), "--resume"], env)
    assert "submitted 3 job(s)" in second.stdout and "\n  data " not in second.stdout, second.stdout
    status = _wait_idle(run_dir, env, 900)
    stages = _by_stage(status)
    logs = {s: Path(stages[s]["log"]).read_text(errors="replace")[-3000:] for s in stages
            if stages[s]["log"] and Path(stages[s]["log"]).exists()}
    assert status["complete"], (status["stages"], logs, slurm.logs()[-2000:])
    assert [stages[s]["status"] for s in ("data", "sft", "grpo", "merge", "eval")] == \
        ["done", "done", "done", "skipped", "done"]
    assert all(stages[s]["state"] == "COMPLETED" for s in stages)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["data"]["attempts"] == 1 and manifest["stages"]["sft"]["attempts"] == 2
    report = (run_dir / "eval" / "report" / "report.md").read_text()
    assert "| metric | sft | grpo |" in report
    # the SFT job spread ms-swift over the job's nodes with srun (one task per node, NODE_RANK from Slurm)
    task = json.loads((run_dir / "logs" / "sft.task.json").read_text())
    assert task["env"]["NODE_RANK"] == "${SLURM_NODEID}" and task["env"]["NNODES"] == "${SLURM_JOB_NUM_NODES}"
    assert "--nnodes 1 --node_rank 0" in (run_dir / "logs" / "sft.log").read_text(errors="replace")
    assert _cli(["submit", *recipe, "--run-dir", str(run_dir), "--resume"], env).stdout.startswith(
        "nothing to submit: every stage is finished")

    # A requeued job of the chain (preemption, or its own USR1 trap before the time limit) runs again from the run
    # dir: its stage is done, so it is not trained twice.
    sft_job = stages["sft"]["job_id"]
    subprocess.run(["scontrol", "requeue", sft_job], env=env, check=True, capture_output=True, timeout=30)
    for _ in range(20):  # slurmctld holds a requeued job back for a while (BeginTime)
        if subprocess.run(["scontrol", "update", f"JobId={sft_job}", "StartTime=now"], env=env,
                          capture_output=True, timeout=30).returncode == 0:
            break
        time.sleep(0.5)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = next(j for j in _status(run_dir, env)["jobs"] if j["job_id"] == sft_job)
        if job["state"] == "COMPLETED" and job.get("restarts") == "1":
            break
        time.sleep(2)
    log = Path(stages["sft"]["log"]).read_text(errors="replace")
    assert job["state"] == "COMPLETED" and job.get("restarts") == "1", (job, log[-3000:])
    assert f"fakehr-orchestra: job {sft_job} (sft), restart 1" in log
    assert "[sft] done earlier, outputs verified: not run again" in log
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["sft"]["attempts"] == 2


def test_sweep_of_two_points_ends_in_one_side_by_side_report(env, tiny, tmp_path):
    fixtures = tiny["model"].rsplit("/model", 1)[0]
    sweep_dir = tmp_path / "sweep"
    proc = _cli(["submit", "recipes/fake_hr1.yaml", "-p", "smoke", f"vars.fixtures={fixtures}",
                 f"vars.out={tmp_path / 'out'}", "--sweep", "sft.args.learning_rate=1e-4,2e-4",
                 "--stages", "data,sft,eval",
                 "--run-dir", str(sweep_dir)], env)
    assert "submitted 7 job(s) for 2 sweep point(s)" in proc.stdout, proc.stdout
    assert "report " in proc.stdout
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = _status(sweep_dir, env)
        job = status["report_job"]
        if job and job["state"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(3)
    assert job["state"] == "COMPLETED", (status, Path(job["log"]).read_text(errors="replace")[-3000:]
                                         if Path(job["log"]).exists() else "")
    assert [p["label"] for p in status["points"]] == ["learning_rate=1e-4", "learning_rate=2e-4"]
    assert all(p["complete"] for p in status["points"]), status["points"]
    report = (sweep_dir / "report" / "report.md").read_text()
    assert "| metric | learning_rate=1e-4/sft | learning_rate=2e-4/sft |" in report
    for point in ("learning_rate=1e-4", "learning_rate=2e-4"):
        manifest = json.loads((sweep_dir / point / "manifest.json").read_text())
        assert f"sft.args.learning_rate={point.split('=')[1]}" in manifest["recipe"]["overrides"]
