"""The critic's readiness probe against a real HTTP server on 127.0.0.1 (tests/rewards/critic_server.py): ready
only when /v1/models lists the served name AND a judged request with an image is answered; never hangs."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time

from fakehr_orchestra.critic.probe import probe_once, tiny_png, wait_ready
from tests.conftest import ROOT
from tests.rewards.critic_server import CriticServer, fixed


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens there once closed


def test_ready_when_listed_and_a_judged_request_with_an_image_is_answered() -> None:
    with CriticServer(fixed('{"score": 0.7}')) as server:
        result = wait_ready(server.base_url, "judge", 10)
    assert result.ok and result.score == 0.7 and "holds the score 0.7" in result.message
    (body,) = server.requests  # exactly one judged request, shaped like the reward's
    assert body["model"] == "judge" and body["messages"][0]["role"] == "system"
    image = body["messages"][1]["content"][0]["image_url"]["url"]
    assert image.startswith("data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1]) == tiny_png()
    assert "[Why fake]" in body["messages"][1]["content"][1]["text"]


def test_the_probe_asks_with_the_recipes_template() -> None:
    """With critic.template sophiavl_r1 the judged request is SophiaVL-R1's (prompt text, then the image; no reply
    limit when max_tokens is null) and its <answer> reply is read by that template's parser."""
    with CriticServer(fixed("<answer>0.7</answer>"), models=("thinking-reward-model",)) as server:
        result = wait_ready(server.base_url, "thinking-reward-model", 10, max_tokens=None, template="sophiavl_r1")
    assert result.ok and result.score == 0.7
    (body,) = server.requests
    assert body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    text, image = body["messages"][1]["content"]
    assert text["text"].startswith("You are an expert reasoning evaluator.") and "[Why fake]" in text["text"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,") and "max_tokens" not in body


def test_a_reply_without_a_score_is_ready_and_says_so() -> None:
    with CriticServer(fixed("\n\n junk tokens")) as server:
        result = wait_ready(server.base_url, "judge", 10)
    assert result.ok and result.score is None and "no score" in result.message


def test_another_model_on_the_port_fails_at_once() -> None:
    with CriticServer(fixed('{"score": 1}'), models=("someone-else",)) as server:
        start = time.monotonic()
        result = wait_ready(server.base_url, "judge", 30)
    assert not result.ok and time.monotonic() - start < 5
    assert "serves ['someone-else'], not 'judge'" in result.message and not server.requests


def test_nothing_listening_times_out_without_hanging() -> None:
    start = time.monotonic()
    result = wait_ready(_dead_url(), "judge", 2, poll_s=0.2)
    assert not result.ok and time.monotonic() - start < 6
    assert "not ready after 2 s" in result.message and "cannot connect" in result.message
    once = probe_once(_dead_url(), "judge", timeout_s=2)
    assert not once.ok and once.message.startswith("not answering: cannot connect")


def test_a_server_process_that_exits_stops_the_wait() -> None:
    start = time.monotonic()
    result = wait_ready(_dead_url(), "judge", 60, alive=lambda: "exit code 1")
    assert not result.ok and "exited before it answered (exit code 1)" in result.message
    assert time.monotonic() - start < 2


def test_listed_but_failing_requests_keep_it_not_ready() -> None:
    with CriticServer(lambda n, body: (500, "engine not loaded", 0.0)) as server:
        result = wait_ready(server.base_url, "judge", 2, poll_s=0.3)
        once = probe_once(server.base_url, "judge", timeout_s=2)
    assert not result.ok and "a judged request with an image failed: HTTP 500" in result.message
    assert not once.ok and "HTTP 500" in once.message


def test_wait_command_line() -> None:
    """`python -m fakehr_orchestra.critic wait` (what a Slurm script runs): exit code and a JSON last line."""
    with CriticServer(fixed('{"score": 0.9}')) as server:
        ok = subprocess.run([sys.executable, "-m", "fakehr_orchestra.critic", "wait", "--url", server.base_url,
                             "--model", "judge", "--timeout", "20"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["score"] == 0.9
    bad = subprocess.run([sys.executable, "-m", "fakehr_orchestra.critic", "wait", "--url", _dead_url(), "--model",
                          "judge", "--timeout", "1", "--poll", "0.2"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1 and "not ready after 1 s" in bad.stderr


def test_serve_command_line_renders_the_recipes_critic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`python -m fakehr_orchestra.critic serve RECIPE [OVERRIDES] -p P --log F`: overrides may follow the options;
    a recipe without a critic server is a clear error (exit 2), nothing started."""
    cmd = [sys.executable, "-m", "fakehr_orchestra.critic", "serve", "recipes/fakevlm_r1.yaml", "-p", "smoke",
           "critic.mode=off", "--log", str(tmp_path / "critic.log")]
    off = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert off.returncode == 2 and "critic.mode is off: there is no critic server" in off.stderr
    assert not (tmp_path / "critic.log").exists()
    bad = subprocess.run(cmd + ["--bogus"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr
