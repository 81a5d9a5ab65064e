"""The chained submission, rendered: golden dry runs of a chain for 1 and 4 nodes from fixed plans (every script
passes `bash -n` and shellcheck), the shipped recipe's chain (verl on Ray, ms-swift on torchrun; merge folded into
eval's job when it has nothing to do), sizes from cluster.slurm.stages, companion services, sweeps, and the errors a
user can make. Regenerate the goldens after an intended change with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.slurm import SbatchOptions
from fakehr_orchestra.launch.slurm_chain import (
    RunCommand,
    chain_links,
    dry_run_text,
    group_stages,
    render_link,
    stage_launcher,
)
from fakehr_orchestra.pipeline import sweep
from fakehr_orchestra.pipeline.stages import StagePlan, Step
from tests.conftest import IN_CI, ROOT, VENV_BIN
from tests.launch.test_slurm_render import golden_plan

GOLDEN = Path(__file__).parent / "golden"
CLI = os.path.join(VENV_BIN, "fakehr-orchestra")


def _local(stage: str, *argv: str) -> Step:
    return Step(stage, Plan(stage=stage, argv=["fakehr-orchestra", *argv]))


def golden_chain(nodes: int) -> str:
    """1 node: ms-swift GRPO (torchrun), merge has nothing to do. 4 nodes: verl GRPO on Ray, then a merge job."""
    stages = [StagePlan("data", [_local("data", "data", "prepare", "r.yaml", "--out", "/runs/c/data")]),
              StagePlan("sft", [Step("sft", golden_plan("sft", nodes))])]
    if nodes == 1:
        swift_grpo = Plan(stage="grpo", argv=["swift", "rlhf", "--rlhf_type", "grpo", "--output_dir", "/runs/c/grpo"],
                          engine="swift", head=2, launcher="torchrun", output_dir="/runs/c/grpo")
        stages += [StagePlan("grpo", [Step("grpo", swift_grpo)]),
                   StagePlan("merge", skip_reason="nothing to merge", passthrough={"model": "<grpo.checkpoint>"})]
    else:
        merger = Plan(stage="merge", argv=["python3", "-m", "verl.model_merger", "merge"], engine="verl")
        stages += [StagePlan("grpo", [Step("grpo", golden_plan("grpo", nodes))]),
                   StagePlan("merge", [Step("merge", merger)])]
    stages.append(StagePlan("eval", [_local("eval-infer-sft", "eval", "infer"),
                                     _local("eval-report", "eval", "report")]))
    sizes = {"data": (1, None), "sft": (nodes, 8), "grpo": (nodes, 8), "merge": (1, None), "eval": (1, 8)}

    def options(stage: str, name: str) -> SbatchOptions:
        count, gpus = sizes[stage]
        return SbatchOptions(nodes=count, job_name=f"fakehr-demo-{name}", run_dir="/runs/c", chdir="/REPO",
                             venv_bin="/VENV/bin", recipe="recipes/demo.yaml", partition="gpu",
                             time="2-00:00:00" if stage in ("sft", "grpo") else "04:00:00",
                             cpus_per_task=32, gpus_per_node=gpus)
    command = RunCommand("/REPO/recipes/demo.yaml", ("vars.x=it's",), "smoke", "/runs/c")
    return dry_run_text(chain_links(stages, options, command, run_dir="/runs/c"))


def scripts_of(dry_run: str) -> list[str]:
    return ["#!/bin/bash\n" + part.split("\n# ==== job")[0] for part in dry_run.split("#!/bin/bash\n")[1:]]


def check_shell(script: str, tmp_path: Path) -> None:
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=VENV_BIN)
    if shellcheck is None:
        message = "shellcheck is not installed (`make system-deps`)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    proc = subprocess.run([shellcheck, "--severity=style", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("nodes", [1, 4])
def test_chain_matches_golden_and_every_script_passes_bash_n_and_shellcheck(nodes, tmp_path):
    text = golden_chain(nodes)
    path = GOLDEN / f"chain_{nodes}node.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
    scripts = scripts_of(text)
    assert len(scripts) == (4 if nodes == 1 else 5)
    for script in scripts:
        check_shell(script, tmp_path)


def test_golden_chain_structure():
    text = golden_chain(4)
    headers = re.findall(r"^# ==== job \d of \d: (\S+) .*\n# (.*)$", text, flags=re.M)
    assert [h[0] for h in headers] == ["data", "sft", "grpo", "merge", "eval"]
    assert headers[0][1] == "sbatch /runs/c/slurm/data.sbatch"
    assert headers[2][1] == ("sbatch --dependency=afterok:<job sft> --kill-on-invalid-dep=yes "
                             "/runs/c/slurm/grpo.sbatch")
    data, sft, grpo, merge, evaluate = scripts_of(text)
    # each job sized for its stage: a CPU job for data, GPU nodes for sft/grpo, one node for merge (CPU) and eval
    assert "--gpus-per-node" not in data and "#SBATCH --nodes=1\n" in data and "--time=04:00:00" in data
    assert "#SBATCH --nodes=4\n" in sft and "#SBATCH --gpus-per-node=8\n" in sft and "--time=2-00:00:00" in sft
    assert "--gpus-per-node" not in merge and "#SBATCH --gpus-per-node=8\n" in evaluate
    for script in (data, sft, grpo, merge, evaluate):  # requeue and the signal before the limit, in every job
        assert "#SBATCH --requeue\n#SBATCH --signal=B:USR1@300\n" in script and "trap requeue_job USR1" in script
        assert "--resume \\\n    --slurm \\\n    --skip-validate" in script
        assert "#SBATCH --output=/runs/c/slurm/" in script and "This job has none." in script
    assert "'vars.x=it'\"'\"'s'" in data  # the recipe as submitted, quoted at the shell boundary only
    assert 'export MASTER_ADDR="${hosts[0]}"' in sft and "ray start" not in sft
    assert "--stages sft \\" in sft
    assert 'ray_node \\"\\$@\\"" ray_head' in grpo and "--gpus 32" in grpo and "MASTER_ADDR" not in grpo
    assert "hosts" not in data and "ray_node" not in evaluate
    one = golden_chain(1)
    assert re.findall(r"^# ==== job \d of \d: (\S+)", one, flags=re.M) == ["data", "sft", "grpo", "merge+eval"]
    assert "--stages merge,eval" in one


def test_group_stages_folds_a_stage_with_nothing_to_run_into_the_next_job():
    def sp(stage: str, n: int) -> StagePlan:
        return StagePlan(stage, [_local(stage, "x")] * n)
    assert [g for g, _ in group_stages([sp("data", 1), sp("merge", 0), sp("eval", 2)])] == \
        [("data",), ("merge", "eval")]
    assert [g for g, _ in group_stages([sp("sft", 1), sp("merge", 0)])] == [("sft", "merge")]
    assert stage_launcher([Step("a", golden_plan("sft", 1)), Step("b", golden_plan("grpo", 1))]) == "ray"


def test_companion_services_start_in_the_background_and_stop_with_the_job(tmp_path):
    critic = Plan(stage="grpo", argv=["python3", "-m", "critic_server", "--port", "8000"], env={"A": "b c"})
    links = chain_links([StagePlan("grpo", [Step("grpo", golden_plan("grpo", 2))])],
                        lambda stage, name: SbatchOptions(nodes=2, job_name="j", run_dir="/r", chdir="/c",
                                                          venv_bin="/v", gpus_per_node=8),
                        RunCommand("/r.yaml", (), None, "/r"), run_dir="/r", companions=lambda stage: [critic])
    script = render_link(links[0])
    assert "companion_0() {\n  A='b c' \\\n    python3 -m critic_server \\\n    --port 8000\n}\n" \
           "companion_0 &\njob_steps+=(\"$!\")" in script
    assert script.index("companion_0 &") < script.index("stage_task &")
    check_shell(script, tmp_path)


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "submit", "recipes/fake_hr1.yaml", *args, "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_shipped_recipe_chain_on_4_nodes(tmp_path):
    proc = dry_run("--nodes", "4", "--run-dir", "/runs/fhr")
    assert proc.returncode == 0, proc.stderr
    headers = re.findall(r"^# ==== job \d of \d: (\S+)", proc.stdout, flags=re.M)
    assert headers == ["data", "sft", "grpo", "merge", "eval"]
    scripts = dict(zip(headers, scripts_of(proc.stdout)))
    assert "(ray), chained" in scripts["grpo"] and "(torchrun), chained" in scripts["sft"]
    assert "#SBATCH --nodes=4\n" in scripts["grpo"] and "#SBATCH --gpus-per-node=16\n" in scripts["grpo"]
    assert "--gpus 64" in scripts["grpo"]
    assert "--gpus-per-node" not in scripts["data"] and "--gpus-per-node" not in scripts["merge"]
    # the platform's WORLD_SIZE / RANK are replaced by Slurm's in a job: nothing to export before submitting
    assert "WORLD_SIZE" not in proc.stdout and "CUDA_VISIBLE_DEVICES" not in proc.stdout
    for script in scripts.values():
        check_shell(script, tmp_path)


def test_smoke_chain_and_its_sweep(tmp_path):
    proc = dry_run("-p", "smoke", "--run-dir", "/runs/s")
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"^# ==== job \d of \d: (\S+)", proc.stdout, flags=re.M) == \
        ["data", "sft", "grpo", "merge+eval"]
    assert "--gpus-per-node" not in proc.stdout  # cluster.device: cpu

    proc = dry_run("-p", "smoke", "--sweep", "sft.args.learning_rate=1e-4,2e-4", "--sweep",
                   "+grpo.swift_args.beta=0.1,0.2", "--stages", "data,sft,eval", "--run-dir", "/runs/sw")
    assert proc.returncode == 0, proc.stderr
    headers = re.findall(r"^# ==== job \d+ of \d+: (\S+) .*\n# (.*)$", proc.stdout, flags=re.M)
    assert len(headers) == 4 * 3 + 1
    assert headers[0][0] == "learning_rate=1e-4_beta=0.1/data"
    assert headers[0][1] == "sbatch /runs/sw/learning_rate=1e-4_beta=0.1/slurm/data.sbatch"
    assert headers[-1][0] == "report"
    assert headers[-1][1].startswith("sbatch --dependency=afterok:<job learning_rate=1e-4_beta=0.1/eval>:")
    report = scripts_of(proc.stdout)[-1]
    assert "/runs/sw/learning_rate=2e-4_beta=0.2/eval/sft/metrics.json" in report
    assert "--names learning_rate=1e-4_beta=0.1/sft,learning_rate=1e-4_beta=0.2/sft," in report
    assert "--out /runs/sw/report" in report
    assert "+grpo.swift_args.beta=0.2" in scripts_of(proc.stdout)[-2]
    check_shell(report, tmp_path)


@pytest.mark.parametrize("args,message", [
    (["--stage", "sft", "--sweep", "a=1,2"], "--stage submits one stage's command"),
    (["-p", "smoke", "--sweep", "sft.args.learning_rate=1e-4,1e-4"], "a value is repeated"),
    (["-p", "smoke", "--sweep", "sft.args.learning_rate"], "write KEY=V1,V2"),
    (["-p", "smoke", "--resume"], "--resume needs --run-dir"),
    (["--stages", "sft,oops"], "unknown stage(s) oops"),
    (["-p", "smoke", "cluster.device=cuda"], "how many GPUs per node"),
])
def test_submit_mistakes_are_clear_errors(args, message):
    proc = dry_run(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_sweep_points_labels_and_errors():
    pts = sweep.points(["sft.args.learning_rate=1e-4,2e-4", "grpo.swift_args.learning_rate=1e-5"])
    assert [p.label for p in pts] == ["args.learning_rate=1e-4_swift_args.learning_rate=1e-5",
                                      "args.learning_rate=2e-4_swift_args.learning_rate=1e-5"]
    assert pts[1].overrides == ("sft.args.learning_rate=2e-4", "grpo.swift_args.learning_rate=1e-5")
    assert [p.dirname for p in sweep.points(["+a.path=/x/y,/z"])] == ["path=-x-y", "path=-z"]
    assert len(sweep.points(["a=1,2,3", "b=x,y"])) == 6
    with pytest.raises(sweep.SweepError, match="swept twice"):
        sweep.points(["a=1,2", "+a=3"])
    with pytest.raises(sweep.SweepError, match="cannot hold a comma"):
        sweep.report_plan(Path("/s"), [("a", {"x,y": "/m.json"})])


def test_status_of_a_chain_before_its_first_job_ran(tmp_path, monkeypatch):
    """status joins the chain's record with the manifest; before the data job has run there is no manifest yet."""
    import json

    from click.testing import CliRunner

    from fakehr_orchestra.cli import cli
    from fakehr_orchestra.launch import slurm_chain

    states = {"11": ("RUNNING", "None"), "12": ("PENDING", "Dependency")}
    monkeypatch.setattr(slurm_chain, "query_job", lambda job_id: {"state": states[job_id][0],
                                                                  "reason": states[job_id][1]})
    jobs = [{"job_id": "11", "link": "data", "stages": ["data"], "log": str(tmp_path / "slurm/data-11.out")},
            {"job_id": "12", "link": "merge+eval", "stages": ["merge", "eval"], "log": "/x/merge+eval-12.out"}]
    (tmp_path / "slurm.json").write_text(json.dumps({"kind": "chain", "recipe": "/r.yaml", "profile": "smoke",
                                                     "overrides": [], "submissions": [{"jobs": jobs}]}))
    result = CliRunner().invoke(cli, ["status", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.match(r"  data\s+not started\s+11\s+RUNNING\s+\S+data-11.out", lines[2]), result.output
    assert re.match(r"  merge\s+not started\s+12\s+PENDING \(Dependency\)", lines[3]), result.output
    assert "2 job(s) queued or running" in result.output
    out = json.loads(CliRunner().invoke(cli, ["status", str(tmp_path), "--json"]).output)
    assert out["live_jobs"] == 2 and out["pipeline"] is None and [s["stage"] for s in out["stages"]] == \
        ["data", "merge", "eval"]
