"""Services around a stage (the critic for GRPO), with a real server process standing in for `swift deploy`
(tests/critic/fake_critic.py; tests/integration/test_critic_pipeline.py runs the real one): started, waited for,
handed to the steps, and stopped with its whole process group however the stage ends."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from fakehr_orchestra.engines.plan import Plan
from fakehr_orchestra.launch.process_group import group_alive
from fakehr_orchestra.pipeline import services, stages
from fakehr_orchestra.pipeline.record import StageRecord
from fakehr_orchestra.pipeline.rundir import RunDir
from fakehr_orchestra.pipeline.runner import Options, run_pipeline
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES, ROOT

FAKE = str(ROOT / "tests" / "critic" / "fake_critic.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(port: int, *extra: str, model: str = "judge", blocked: str | None = None) -> stages.ServiceStep:
    plan = Plan(stage="critic", argv=[sys.executable, FAKE, "--port", str(port), *extra])
    return stages.ServiceStep("critic", plan, f"http://127.0.0.1:{port}/v1", model, "on this node (test)", port,
                              20.0, blocked=blocked)


def run_services(tmp_path: Path, svc: stages.ServiceStep, body=lambda entry: None):  # type: ignore[no-untyped-def]
    run = RunDir(tmp_path / "run")
    record = StageRecord(status="running")
    said: list[str] = []
    saves: list[str] = []
    with services.running([svc], run, record, lambda: saves.append(json.dumps(record.to_dict())), said.append):
        body(record.service_entries()["critic"])
    return record.to_dict(), said, saves


def test_ready_before_the_steps_and_stopped_after(tmp_path: Path) -> None:
    port = free_port()
    seen = {}

    def body(entry: dict) -> None:  # the steps: the server answers while they run
        seen["pid"] = entry["pid"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
            seen["models"] = json.loads(r.read())["data"][0]["id"]
        assert entry["status"] == "ready" and entry["probe_score"] == 0.75

    record, said, saves = run_services(tmp_path, step(port), body)
    assert seen["models"] == "judge"
    assert not group_alive(seen["pid"])  # leader and its child: gone
    entry = record["services"]["critic"]
    assert entry["status"] == "stopped" and entry["url"] == f"http://127.0.0.1:{port}/v1"
    assert any("critic ready:" in s for s in said) and any("critic server stopped" in s for s in said)
    assert '"status": "starting"' in saves[0] and '"pid"' in saves[0]  # recorded before the wait


def test_a_failing_step_still_stops_it(tmp_path: Path) -> None:
    pid = {}

    def body(entry: dict) -> None:
        pid["pid"] = entry["pid"]
        raise RuntimeError("the step blew up")

    with pytest.raises(RuntimeError, match="blew up"):
        run_services(tmp_path, step(free_port()), body)
    assert not group_alive(pid["pid"])


def test_a_server_that_exits_while_starting_fails_at_once_with_its_log(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(services.ServiceFailed) as err:
        run_services(tmp_path, step(free_port(), "--exit", "3"))
    assert time.monotonic() - start < 15  # not the 20 s ready timeout
    assert "exited before it answered (exit code 3)" in str(err.value) and "fake critic: child" in str(err.value)


def test_another_server_on_the_port_or_a_blocked_placement_refuse_to_start(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(services.ServiceFailed) as err:
            run_services(tmp_path, step(other.getsockname()[1]))
    assert err.value.code == 2 and "taken by another server" in str(err.value)
    assert "silently move to the next free port" in str(err.value)
    with pytest.raises(services.ServiceFailed, match="node of its own") as err:
        run_services(tmp_path, step(free_port(), blocked="needs a node of its own"))
    assert err.value.code == 2


def test_death_during_the_stage_is_reported_not_fatal(tmp_path: Path) -> None:
    def body(entry: dict) -> None:
        os.killpg(entry["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while entry["status"] != "exited" and time.monotonic() < deadline:
            time.sleep(0.1)

    record, said, _ = run_services(tmp_path, step(free_port()), body)
    entry = record["services"]["critic"]
    assert entry["status"] == "exited" and entry["exit_code"] == 137
    assert any("exited with code 137 while the stage still needs it" in s for s in said)


def test_sigterm_while_waiting_stops_the_server(tmp_path: Path) -> None:
    port = free_port()
    svc = step(port, model="never-listed")  # never ready: the wait goes on until the signal
    svc = dataclasses.replace(svc, model="judge", url=f"http://127.0.0.1:{free_port()}/v1")  # nothing answers there
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    record = StageRecord()
    with pytest.raises(services.Interrupted) as err:
        with services.running([svc], RunDir(tmp_path / "run"), record, lambda: None, lambda text: None):
            pass
    timer.cancel()
    assert err.value.code == 143
    assert not group_alive(record.service_entries()["critic"]["pid"])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_the_runner_runs_grpo_inside_the_critic_and_records_it(tmp_path: Path, monkeypatch) -> None:
    """run_pipeline on the smoke recipe with the real service machinery; the GRPO step (a stand-in) checks that
    the critic its reward kwargs name is up while it runs."""
    port = free_port()
    original = stages.critic_service

    def fake_critic(w):  # type: ignore[no-untyped-def]
        svc = original(w)
        return dataclasses.replace(svc, plan=Plan(stage="critic", argv=[sys.executable, FAKE, "--port",
                                                                         str(svc.port), "--model", svc.model]))
    monkeypatch.setattr(stages, "critic_service", fake_critic)
    recipe = load_recipe(RECIPES / "fakevlm_r1.yaml", [f"critic.server.port={port}"], profile="smoke")
    answered = []

    def grpo(plan, log_path, echo=True):  # type: ignore[no-untyped-def]
        url = json.loads(plan.env["FAKEHR_REWARD_KWARGS"])["critic_base_url"]
        with urllib.request.urlopen(url + "/models", timeout=5) as r:
            answered.append(json.loads(r.read())["data"][0]["id"])
        out = Path(plan.argv[plan.argv.index("--output_dir") + 1]) / "v0-x" / "checkpoint-2"
        out.mkdir(parents=True)
        (out / "model.safetensors").write_text("w")
        (out.parent / "logging.jsonl").write_text(  # ms-swift's own metrics log (the curves' source)
            json.dumps({"loss": 0.5, "learning_rate": 1e-5, "global_step/max_steps": "1/2"}) + "\n")
        log_path.write_text(f"[INFO:swift] last_model_checkpoint: {out}\n")
        return 0

    run = RunDir(tmp_path / "run")
    assert run_pipeline(recipe, run, Options(stages=("grpo",), echo=False), launch=grpo) == 0
    assert answered == ["tiny-critic"]
    record = run.load()["stages"]["grpo"]
    assert record["status"] == "done" and record["services"]["critic"]["status"] == "stopped"
    assert not group_alive(record["services"]["critic"]["pid"])
    from fakehr_orchestra.pipeline.status import describe, format_text
    assert f"service critic: stopped (exit 0), http://127.0.0.1:{port}/v1" in format_text(describe(run.path))
    plans = json.loads((run.path / "plans" / "grpo.json").read_text())
    assert plans["services"][0]["plan"]["argv"][1] == FAKE and plans["services"][0]["port"] == port

    # a critic that never becomes ready fails the stage before GRPO starts, with its log
    monkeypatch.setattr(stages, "critic_service", lambda w: dataclasses.replace(
        fake_critic(w), plan=Plan(stage="critic", argv=[sys.executable, FAKE, "--port", "1", "--exit", "5"])))
    run2 = RunDir(tmp_path / "run2")
    answered.clear()
    # another port: the first server's port may sit in TIME_WAIT for a minute (the runner would wait for it)
    recipe = load_recipe(RECIPES / "fakevlm_r1.yaml", [f"critic.server.port={free_port()}"], profile="smoke")
    assert run_pipeline(recipe, run2, Options(stages=("grpo",), echo=False), launch=grpo) == 1
    record = run2.load()["stages"]["grpo"]
    assert record["status"] == "failed" and record["failed_step"] == "critic" and not answered
    assert "exited before it answered (exit code 5)" in record["error"]


def test_ray_gets_the_training_gpus_and_not_the_critics(tmp_path: Path) -> None:
    """verl on Ray: `ray start` takes its GPUs from CUDA_VISIBLE_DEVICES, so the GRPO plan's (0-5) is passed to it;
    the critic server has 6,7 (critic.server.cuda_visible_devices)."""
    from fakehr_orchestra.pipeline.runner import _launcher, plan_all

    recipe = load_recipe(RECIPES / "fakevlm_r1.yaml")
    opts = Options(stages=("grpo",), echo=False)
    (grpo,) = plan_all(recipe, RunDir(tmp_path / "run"), opts)
    launcher = _launcher(grpo.steps[0], recipe, opts)
    assert launcher.keywords["environ"] == {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5"}
    assert launcher.keywords["gpus_per_node"] == 6
    assert grpo.services[0].plan.env["CUDA_VISIBLE_DEVICES"] == "6,7"
