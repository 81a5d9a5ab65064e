"""Rendered sbatch scripts: golden files for 1, 2 and 4 nodes (SFT via torchrun, GRPO via Ray) from fixed plans with
awkward quoting, plus the full Fake-HR1 recipe's scripts embedding its rendered plan verbatim; all pass `bash -n`
and shellcheck; the GPU request and Ray's view of the granted GPUs; option errors; the resume helper. Regenerate the
goldens after an intended change with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.resume import latest_swift_checkpoint
from fakehr_orchestra.launch.slurm import SbatchOptions, SlurmError, render_sbatch, sbatch_lines, slurm_plan
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import IN_CI, ROOT, VENV_BIN

GOLDEN = Path(__file__).parent / "golden"
CLI = os.path.join(VENV_BIN, "fakehr-orchestra")
CASES = [(stage, nodes) for stage in ("sft", "grpo") for nodes in (1, 2, 4)]


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "submit", "recipes/fake_hr1.yaml", *args, "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


# Fixed plans for the goldens, so they pin the scripts' structure, not every renderer change; that the real rendered
# command is embedded verbatim is checked separately (test_script_embeds_the_rendered_plan_verbatim).
def golden_plan(stage: str, nodes: int) -> Plan:
    if stage == "sft":
        return Plan(stage="sft", argv=["swift", "sft", "--model", "/m", "--system", "It's \\n <think>", "--dataset",
                                       "${train_file_path}", "--output_dir", "out/sft"],
                    env={"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7", "NNODES": "${WORLD_SIZE}", "NODE_RANK": "${RANK}",
                         "NPROC_PER_NODE": "8", "HF_HUB_OFFLINE": "1"},
                    env_refs=["WORLD_SIZE", "RANK", "train_file_path"], engine="swift", entrypoint="swift sft", head=2,
                    launcher="torchrun", output_dir="out/sft", nnodes="${WORLD_SIZE}", procs_per_node="8",
                    origins={"env:CUDA_VISIBLE_DEVICES": "cluster.cuda_visible_devices"})
    return Plan(stage="grpo", argv=["python3", "-m", "verl.trainer.main_ppo", "data.train_files=${train_file_path}",
                                    "+reward.custom_reward_function.reward_kwargs.p='<think>\\n'",
                                    "trainer.n_gpus_per_node=8", f"trainer.nnodes={nodes}"],
                env={"NNODES": "${WORLD_SIZE}", "HF_HUB_OFFLINE": "1"}, env_refs=["WORLD_SIZE", "train_file_path"],
                engine="verl", entrypoint="verl.trainer.main_ppo", head=3, launcher="ray", output_dir="out/grpo",
                nnodes=str(nodes), procs_per_node="8")


def golden_script(stage: str, nodes: int) -> str:
    # SFT asks for its GPUs as gres (cluster.slurm.gpu_request: gres) next to another generic resource
    opts = SbatchOptions(nodes=nodes, job_name=f"fakehr-demo-{stage}", run_dir="/runs/job", chdir="/REPO",
                         venv_bin="/VENV/bin", recipe="recipes/demo.yaml", partition="gpu", time="2-00:00:00",
                         cpus_per_task=32, gpus_per_node=8, gres="nvme:1" if stage == "sft" else None,
                         gpu_request="gres" if stage == "sft" else "gpus-per-node")
    return render_sbatch(golden_plan(stage, nodes), opts)


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, int], str]:
    return {(stage, nodes): golden_script(stage, nodes) for stage, nodes in CASES}


@pytest.mark.parametrize("stage,nodes", CASES)
def test_rendered_script_matches_golden(rendered, stage, nodes):
    path = GOLDEN / f"{stage}_{nodes}node.sbatch"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered[(stage, nodes)])
    assert rendered[(stage, nodes)] == path.read_text()


@pytest.fixture(scope="module")
def recipe_scripts() -> dict[tuple[str, int], str]:
    out = {}
    for stage, nodes in CASES:
        proc = dry_run("--stage", stage, "--nodes", str(nodes), "--partition", "gpu", "--time", "2-00:00:00",
                       "--run-dir", "/runs/job")
        assert proc.returncode == 0, proc.stderr
        out[(stage, nodes)] = proc.stdout
    return out


@pytest.mark.parametrize("stage,nodes", CASES)
def test_script_embeds_the_rendered_plan_verbatim(recipe_scripts, stage, nodes):
    recipe = load_recipe(ROOT / "recipes" / "fake_hr1.yaml")
    command = slurm_plan(render(recipe, stage, nodes=nodes)).to_shell().replace("\n", "\n  ")
    assert "\n  " + command + " \\\n" in recipe_scripts[(stage, nodes)]


@pytest.mark.parametrize("stage,nodes", CASES)
@pytest.mark.parametrize("source", ["golden", "recipe"])
def test_rendered_script_passes_bash_n_and_shellcheck(rendered, recipe_scripts, stage, nodes, source, tmp_path):
    script = tmp_path / "job.sbatch"
    script.write_text((rendered if source == "golden" else recipe_scripts)[(stage, nodes)])
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=VENV_BIN)
    if shellcheck is None:
        message = "shellcheck is not installed (`make system-deps`)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    proc = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_sft_structure_one_task_per_node_rank_from_slurm(recipe_scripts):
    rendered = recipe_scripts
    script = rendered[("sft", 4)]
    assert "#SBATCH --nodes=4\n#SBATCH --ntasks-per-node=1\n" in script
    assert "#SBATCH --partition=gpu\n#SBATCH --time=2-00:00:00\n" in script
    assert "#SBATCH --requeue\n#SBATCH --signal=B:USR1@300\n" in script
    assert "trap requeue_job USR1" in script and 'scontrol requeue "$SLURM_JOB_ID"' in script
    # rank is expanded inside each task (the function body travels unexpanded through declare -f)
    assert 'NODE_RANK="${SLURM_NODEID}"' in script and 'MASTER_ADDR="${MASTER_ADDR}"' in script
    assert 'export MASTER_ADDR="${hosts[0]}"' in script
    assert 'srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1' in script
    assert '--resume_from_checkpoint "$FAKEHR_RESUME_FROM"' in script
    # the recipe's platform refs (WORLD_SIZE, RANK) are replaced by Slurm's; other refs stay expansions
    assert "WORLD_SIZE" not in script and "${RANK}" not in script
    assert "NPROC_PER_NODE=16" in script and "--tuner_type full" in script


def test_grpo_structure_ray_head_workers_driver_overlap(recipe_scripts):
    rendered = recipe_scripts
    script = rendered[("grpo", 4)]
    assert 'mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")' in script
    assert 'for worker in "${nodes[@]:1}"; do' in script  # one element per host, unlike verl's example
    assert "ray_node \\\"\\$@\\\"\" ray_head \\\n  --head" in script
    assert 'ray_node \\"\\$@\\"" ray_worker \\\n    --address="$RAY_ADDRESS"' in script
    assert re.search(r"launch\.ray_cluster wait .*--nodes \"\$\{#nodes\[@\]\}\" --gpus 64", script)
    assert "sleep" not in script
    assert 'srun --overlap --nodes=1 --ntasks=1 -w "$head_node"' in script
    assert "trainer.nnodes=4" in script and "trainer.nnodes=1 " not in script
    assert '${FAKEHR_RESUME:+trainer.resume_mode=auto}' in script
    # verl's launch-time refs stay shell expansions; torchrun env is gone
    assert 'data.train_files="${train_file_path}"' in script and "NODE_RANK" not in script


def test_host_array_really_has_one_element_per_host(tmp_path):
    # the same expansion the templates use, fed a 3-host list
    out = subprocess.run(["bash", "-c", 'mapfile -t nodes < <(printf "a\\nb\\nc\\n"); echo "${#nodes[@]}";'
                          'for w in "${nodes[@]:1}"; do echo "$w"; done'], capture_output=True, text=True)
    assert out.stdout.split() == ["3", "b", "c"]


def test_no_requeue_drops_signal_and_trap():
    proc = dry_run("-p", "smoke", "--stage", "sft", "--nodes", "1", "--no-requeue", "--run-dir", "/r")
    assert proc.returncode == 0, proc.stderr
    assert "--requeue" not in proc.stdout and "--signal" not in proc.stdout and "trap requeue_job" not in proc.stdout


def test_swift_grpo_uses_the_torchrun_shape_and_verl_the_ray_shape():
    swift = dry_run("-p", "smoke", "--stage", "grpo", "--nodes", "2", "--run-dir", "/r")
    assert swift.returncode == 0, swift.stderr
    assert "swift rlhf" in swift.stdout and "(torchrun)" in swift.stdout
    verl = dry_run("-p", "smoke", "grpo.engine=verl", "--stage", "grpo", "--nodes", "2", "--run-dir", "/r")
    assert verl.returncode == 0, verl.stderr
    assert "verl.trainer.main_ppo" in verl.stdout and "(ray)" in verl.stdout


def test_nodes_required_when_the_recipe_reads_them_at_launch():
    proc = dry_run("--stage", "sft")
    assert proc.returncode == 2 and "pass --nodes N" in proc.stderr and "Traceback" not in proc.stderr


def test_sbatch_values_with_whitespace_are_refused():
    opts = SbatchOptions(nodes=1, job_name="j", run_dir="/r", chdir="/c", venv_bin="/v", partition="gpu a")
    with pytest.raises(SlurmError, match="partition"):
        sbatch_lines(opts)
    with pytest.raises(SlurmError, match="extra_sbatch"):
        sbatch_lines(SbatchOptions(nodes=1, job_name="j", run_dir="/r", chdir="/c", venv_bin="/v",
                                   extra_sbatch=("mem=4G",)))
    with pytest.raises(SlurmError, match="at least 1"):
        sbatch_lines(SbatchOptions(nodes=0, job_name="j", run_dir="/r", chdir="/c", venv_bin="/v"))


def test_submit_without_sbatch_is_a_clear_error(tmp_path):
    env = {**os.environ, "PATH": "/nonexistent"}
    proc = subprocess.run([CLI, "submit", "recipes/fake_hr1.yaml", "-p", "smoke", "--stage", "sft", "--nodes", "1",
                           "--run-dir", str(tmp_path / "r")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "sbatch is not on PATH" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "slurm.json").exists()


def test_render_refuses_a_plan_that_runs_only_locally():
    with pytest.raises(SlurmError, match="no Slurm script for a 'local' plan"):
        render_sbatch(Plan(stage="sft", argv=["x"]),
                      SbatchOptions(nodes=1, job_name="j", run_dir="/r", chdir="/c", venv_bin="/v"))


def test_latest_swift_checkpoint_picks_highest_complete_step(tmp_path):
    assert latest_swift_checkpoint(tmp_path / "missing") is None
    for rel in ("v0-a/checkpoint-100", "v0-a/checkpoint-200", "v1-b/checkpoint-300"):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "trainer_state.json").write_text("{}")
    (tmp_path / "v1-b/checkpoint-400").mkdir()  # being written: no trainer_state.json yet
    assert latest_swift_checkpoint(tmp_path) == tmp_path / "v1-b/checkpoint-300"
    out = subprocess.run([os.path.join(VENV_BIN, "python"), "-m", "fakehr_orchestra.launch.resume", "swift",
                          "--cwd", str(tmp_path.parent), tmp_path.name], capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "v1-b/checkpoint-300")


def test_grpo_asks_slurm_for_gpus_and_ray_is_told_what_slurm_granted(recipe_scripts):
    """Issue 11: the job requests the recipe's GPUs per node and every Ray node gets the CPUs/GPUs of its step."""
    script = recipe_scripts[("grpo", 2)]
    assert "#SBATCH --gpus-per-node=16\n" in script  # cluster.gpus_per_node, cluster.device cuda
    assert 'exec ray start "$@" --num-cpus="$SLURM_CPUS_ON_NODE" --num-gpus="${SLURM_GPUS_ON_NODE:-0}"' in script
    assert re.search(r'--nodes "\$\{#nodes\[@\]\}" --gpus 32', script)
    assert 'export SRUN_CPUS_PER_TASK="$SLURM_CPUS_PER_TASK"' in script
    # a job sees the GPUs Slurm granted: the recipe's cuda_visible_devices stays out of every job
    assert "CUDA_VISIBLE_DEVICES" not in script and "CUDA_VISIBLE_DEVICES" not in recipe_scripts[("sft", 2)]


def test_gpu_request_as_gres_and_cuda_visible_devices_on_request():
    proc = dry_run("--stage", "sft", "--nodes", "2",
                   "+cluster.slurm={gpu_request: gres, export_cuda_visible_devices: true}", "--run-dir", "/r")
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --gres=gpu:16\n" in proc.stdout and "--gpus-per-node" not in proc.stdout
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15" in proc.stdout
    cpu = dry_run("-p", "smoke", "--stage", "sft", "--run-dir", "/r")  # cluster.device cpu, cluster.nodes null
    assert cpu.returncode == 0, cpu.stderr
    assert "--gpus-per-node" not in cpu.stdout and "--gres" not in cpu.stdout and "#SBATCH --nodes=1\n" in cpu.stdout


def test_a_gpu_request_twice_is_refused():
    proc = dry_run("--stage", "sft", "--nodes", "2", "+cluster.slurm={gres: 'gpu:8'}", "--run-dir", "/r")
    assert proc.returncode == 2 and "asks for GPUs" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(SlurmError, match="ask once"):
        sbatch_lines(SbatchOptions(nodes=1, job_name="j", run_dir="/r", chdir="/c", venv_bin="/v", gres="gpu:a100:2",
                                   gpus_per_node=2))


def test_stage_sizes_come_from_the_recipe():
    proc = dry_run("--stage", "grpo", "--nodes", "2", "+cluster.slurm={cpus_per_task: 64, stages: {grpo: "
                   "{gpus_per_node: 8, time: '12:00:00'}}}", "--run-dir", "/r")
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --time=12:00:00\n#SBATCH --cpus-per-task=64\n#SBATCH --gpus-per-node=8\n" in proc.stdout
    assert "--gpus 16 " in proc.stdout
