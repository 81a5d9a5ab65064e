"""FakeVLM-R1's smoke GRPO with its critic served for real: `swift deploy --infer_backend transformers` on the tiny
model (CPU), started by the pipeline, asked by the reward through ms-swift's GRPO, stopped afterwards; and killed
mid-stage, when GRPO must still finish with the failures and fallbacks counted. The GRPO stage runs alone on the
fixture model (SFT is not what these tests are about)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, framework_env, require_executable, require_module

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _command(tiny: dict[str, str], run_dir: Path, port: int, *extra: str, stages: str = "grpo") -> list[str]:
    fixtures = str(Path(tiny["model"]).parent)
    return [sys.executable, "-m", "fakehr_orchestra", "run", str(RECIPES / "fakevlm_r1.yaml"), "-p", "smoke",
            "--stages", stages, f"vars.fixtures={fixtures}", f"critic.server.port={port}", *extra,
            "--run-dir", str(run_dir)]


def _leftovers(port: int) -> list[str]:
    """Processes whose command line names the critic's port (swift deploy and the Python it re-launches)."""
    needle = f"--port\0{port}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if needle in cmdline and state != "Z":
                found.append(entry + ": " + cmdline.replace(b"\0", b" ")[:200].decode(errors="replace"))
    return found


def assert_every_sample_scored_and_answered(grpo_log: str, port: int) -> None:
    """The critic client's summary at exit in the GRPO log: every sample of the smoke run's 2 steps x 4 answered or
    fallen back, and every request the reward sent got an HTTP answer (parsed, or counted as a failure)."""
    final = re.search(rf"\[fakehr critic\] http://127.0.0.1:{port}/v1 model tiny-critic \(pid \d+\) at exit: "
                      r"calls (\d+): answered (\d+), fallback (\d+), cached \d+ \| requests (\d+): replies (\d+), "
                      r"failed (\d+)", grpo_log)
    assert final, grpo_log[-3000:]
    calls, answered, fallback, requests, replies, _failed = map(int, final.groups())
    assert calls == 8 and answered + fallback == 8
    assert replies == requests > 0


def _requires() -> None:
    require_module("swift")
    require_module("msgspec")
    require_module("aiohttp")
    require_executable("swift")


def test_smoke_grpo_starts_asks_and_stops_the_tiny_critic(tiny: dict[str, str], tmp_path: Path) -> None:
    """GRPO, then eval of its model: the critic is served for both stages, and the eval report has the consistency
    rows and column (the tiny model's answers rarely hold reasoning: those are counted apart, not scored)."""
    _requires()
    port = _free_port()
    run_dir = tmp_path / "run"
    proc = subprocess.run(_command(tiny, run_dir, port, f"eval.dataset={tiny['eval']}", stages="grpo,eval"),
                          cwd=ROOT, env=framework_env(), capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "[grpo] critic server starting on this node" in out
    assert f"critic ready: http://127.0.0.1:{port}/v1 lists 'tiny-critic' and answered a judged request with an " \
           "image" in out
    critic_log = (run_dir / "logs" / "critic.log").read_text(errors="replace")
    assert f"Uvicorn running on http://127.0.0.1:{port}" in critic_log  # on the port the reward was given
    assert critic_log.count('"POST /v1/chat/completions HTTP/1.1" 200') >= 2  # the probe, then the reward
    grpo_log = (run_dir / "logs" / "grpo.log").read_text(errors="replace")
    batches = re.findall(r"\[fakehr reward\] batch (\d+): 4 samples; critic answered (\d+), fallback (\d+), "
                         r"failed requests (\d+)", grpo_log)
    assert len(batches) == 2, grpo_log[-3000:]  # max_steps 2, one line per reward batch
    assert all(int(a) + int(f) == 4 for _, a, f, _ in batches)  # every sample answered or fell back, counted
    assert_every_sample_scored_and_answered(grpo_log, port)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    grpo = manifest["stages"]["grpo"]
    assert grpo["status"] == "done" and grpo["services"]["critic"]["status"] == "stopped"
    assert "[grpo] critic server stopped" in out
    # eval: the same critic section, served again around the stage, asked about each answer with reasoning
    ev = manifest["stages"]["eval"]
    assert ev["status"] == "done" and ev["services"]["critic"]["status"] == "stopped", out[-3000:]
    cons = json.loads((run_dir / "eval" / "grpo" / "consistency.json").read_text())
    assert cons["computed"] and cons["critic"]["model"] == "tiny-critic" and cons["critic"]["template"] == "sophiavl_r1"
    statuses = [r["status"] for r in cons["rows"]]
    assert statuses and set(statuses) <= {"scored", "fallback", "no_reasoning", "image_error"}
    metrics = json.loads((run_dir / "eval" / "grpo" / "metrics.json").read_text())
    assert metrics["consistency"]["computed"] and metrics["overall"]["consistency_scored"] == statuses.count("scored")
    report = (Path(ev["artifacts"]["report"]["path"]) / "report.md").read_text()
    assert "| logical consistency (critic, mean) |" in report and "| consistency CI |" in report  # the fixture's
    # eval set has no category column, so the per-category table (with its consistency column) is not written
    assert "- grpo: logical consistency from critic `tiny-critic` (template sophiavl_r1)" in report
    assert _leftovers(port) == []


def test_killing_the_critic_mid_stage_falls_back_and_grpo_finishes(tiny: dict[str, str], tmp_path: Path) -> None:
    _requires()
    port = _free_port()
    run_dir = tmp_path / "run"
    command = _command(tiny, run_dir, port, "grpo.swift_args.max_steps=5", "grpo.swift_args.save_steps=5")
    proc = subprocess.Popen(command, cwd=ROOT, env=framework_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    grpo_log = run_dir / "logs" / "grpo.log"
    try:
        deadline = time.monotonic() + 600
        while not (grpo_log.exists() and "[fakehr reward] batch 1:" in grpo_log.read_text(errors="replace")):
            assert proc.poll() is None and time.monotonic() < deadline, "GRPO never scored a batch"
            time.sleep(0.2)
        pid = json.loads((run_dir / "manifest.json").read_text())["stages"]["grpo"]["services"]["critic"]["pid"]
        os.killpg(pid, signal.SIGKILL)  # the critic's whole process group, mid-stage
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-5000:]
    assert "critic server exited with code 137 while the stage still needs it" in out
    log = grpo_log.read_text(errors="replace")
    after_kill = log[log.index("[fakehr reward] batch 1:"):]
    batches = re.findall(r"\[fakehr reward\] batch (\d+): 4 samples; critic answered (\d+), fallback (\d+)", log)
    assert len(batches) == 5 and all(int(f) == 4 for _, a, f in batches[2:])  # later batches: all fallback
    final = re.search(r"at exit: calls \d+: answered \d+, fallback (\d+).*failed (\d+) \(([^)]*)\)", after_kill)
    assert final and int(final.group(1)) >= 12, log[-3000:]
    assert re.search(r"Client\w*Error|ServerDisconnected", final.group(3)), final.group(0)  # no server any more
    manifest = json.loads((run_dir / "manifest.json").read_text())
    grpo = manifest["stages"]["grpo"]
    assert grpo["status"] == "done" and grpo["services"]["critic"]["status"] == "exited"
    assert "exited with code 137 during the stage" in grpo["warnings"][0]
    assert _leftovers(port) == []


def test_ctrl_c_while_the_critic_starts_leaves_nothing_behind(tiny: dict[str, str], tmp_path: Path) -> None:
    """Interrupted while waiting for `swift deploy` (before GRPO starts): exit 130, the stage recorded as
    interrupted, and the server's whole tree (swift's launcher and the Python it re-launches) gone."""
    _requires()
    port = _free_port()
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(_command(tiny, run_dir, port, "--skip-validate"), cwd=ROOT, env=framework_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_leftovers(port)) < 2:  # swift deploy and its re-launched Python are both up
            assert proc.poll() is None and time.monotonic() < deadline, "swift deploy never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-3000:]
    assert "[grpo] interrupted; its services were stopped" in out
    grpo = json.loads((run_dir / "manifest.json").read_text())["stages"]["grpo"]
    assert grpo["status"] == "interrupted" and grpo["services"]["critic"]["status"] == "stopped"
    assert _leftovers(port) == []
