"""The one bounded reader, where it is used: the critic client (a huge reply, an image path that is a device or a
FIFO), the critic probe of `validate` (a server that drips its reply), and `reward score` (a plugin that never
returns). Real sockets and real files; nothing here may take more than a few seconds."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sys
import threading
import time
from typing import Callable

import pytest
from click.testing import CliRunner

from fakehr_orchestra.bounded import BoundedReadError, read_file
from fakehr_orchestra.cli import cli
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT))


class RawServer:
    """A one-behaviour HTTP server on a real socket: `serve(conn)` writes whatever it likes."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.serve = serve
        self.stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)
            self.serve(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def huge(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    conn.sendall(b'{"choices": [{"message": {"content": "')
    block = b"x" * 2**20
    for _ in range(256):
        conn.sendall(block)


def drip(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    for byte in b'{"object": "list", "data": [' + b" " * 100:
        conn.sendall(bytes([byte]))
        time.sleep(0.5)


def test_the_critic_client_does_not_hold_a_huge_reply(monkeypatch):
    from rewards.critic import CriticClient, CriticConfig

    server = RawServer(huge)
    try:
        client = CriticClient(CriticConfig(base_url=server.url, retries=0, timeout_s=30))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()

        async def go():
            try:
                return await client.score("because", "fake")
            finally:
                await client.aclose()
        result = asyncio.run(go())
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    finally:
        server.close()
    assert result.fallback and time.monotonic() - started < 20
    assert grown_mb < 100, f"peak memory grew by {grown_mb:.0f} MB reading the reply"


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "proc"])
def test_the_critic_reads_no_device_fifo_or_proc_file_as_an_image(tmp_path, kind):
    from rewards.critic import image_ref

    path = {"dev_zero": "/dev/zero", "proc": "/proc/self/status", "fifo": str(tmp_path / "fifo")}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("ref", image_ref({"path": path})), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "image_ref hung"
    assert box["ref"] == ("", None)


def test_read_file_refuses_non_regular_and_oversized(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 1000)
    with pytest.raises(BoundedReadError, match="cap"):
        read_file(str(big), 999)
    assert read_file(str(big), 1000) == b"\0" * 1000
    with pytest.raises(BoundedReadError, match="not a regular file"):
        read_file("/dev/zero", 10)


def test_the_validate_probe_of_a_dripping_server_ends_within_its_timeout():
    from fakehr_orchestra.critic.probe import probe_once

    server = RawServer(drip)
    try:
        started = time.monotonic()
        result = probe_once(server.url, "judge", None, 3.0)
        took = time.monotonic() - started
    finally:
        server.close()
    assert not result.ok and took < 6, (took, result.message)
    assert "3 s" in result.message or "in time" in result.message, result.message


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_reward_score_with_a_plugin_that_never_returns_ends(tmp_path, flavour):
    plugin = tmp_path / "loop.py"
    body = "    while True:\n        pass\n"
    plugin.write_text(("async " if flavour == "async" else "")
                      + "def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n" + body)
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"response": "x", "ground_truth": "fake"}) + "\n")
    started = time.monotonic()
    res = CliRunner().invoke(cli, ["reward", "score", str(plugin), str(responses), "--timeout", "1"])
    assert time.monotonic() - started < 10
    assert res.exit_code == 1 and "ran past its time limit" in res.output, res.output


@pytest.mark.parametrize("argv", [["eval", "score", "{p}", "--out", "{tmp}/m.json"],
                                  ["reward", "score", "rewards/fake_hr1.py", "{p}"],
                                  ["eval", "report", "{p}", "--out", "{tmp}/r"],
                                  ["data", "split", "{p}", "--test-fraction", "0.5", "--out", "{tmp}/o.jsonl"]])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_a_fifo_or_device_given_as_an_input_file_is_a_message(tmp_path, argv, kind):
    path = str(tmp_path / "fifo") if kind == "fifo" else "/dev/zero"
    if kind == "fifo":
        os.mkfifo(path)
    box: dict = {}

    def go():
        box["res"] = CliRunner().invoke(cli, [a.format(p=path, tmp=tmp_path) for a in argv])
    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), f"{argv[:2]} hung on {kind}"
    res = box["res"]
    assert res.exit_code in (1, 2) and "regular file" in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_an_output_hard_linked_to_its_input_is_refused(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps({"response": "x", "ground_truth": "fake"}) + "\n")
    os.link(src, tmp_path / "hard.jsonl")
    res = CliRunner().invoke(cli, ["reward", "score", "rewards/fake_hr1.py", str(src), "--out",
                                   str(tmp_path / "hard.jsonl")])
    assert res.exit_code == 2 and "hard link" in res.output, res.output


def test_the_probe_never_prints_credentials():
    from fakehr_orchestra.critic.probe import probe_once

    result = probe_once("http://alice:s3cr3t@127.0.0.1:9/v1", "judge", None, 2.0)
    assert not result.ok and "s3cr3t" not in result.message + result.url


def test_reward_score_with_a_plugin_whose_import_never_ends(tmp_path):
    plugin = tmp_path / "hang.py"
    plugin.write_text("while True:\n    pass\n")
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"response": "x", "ground_truth": "fake"}) + "\n")
    started = time.monotonic()
    res = CliRunner().invoke(cli, ["reward", "score", str(plugin), str(responses), "--timeout", "1"])
    assert time.monotonic() - started < 10
    assert res.exit_code == 2 and "ran past its time limit" in res.output, res.output


def test_eval_report_with_a_fifo_as_its_curves_file(tmp_path):
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"key": "a", "label": "fake", "pred": "fake"}) + "\n")
    assert CliRunner().invoke(cli, ["eval", "score", str(pred), "--out", str(tmp_path / "m.json"),
                                    "--bootstrap", "0"]).exit_code == 0
    fifo = tmp_path / "sft.jsonl"
    os.mkfifo(fifo)
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("res", CliRunner().invoke(
        cli, ["eval", "report", str(tmp_path / "m.json"), "--curves", f"sft={fifo}", "--out", str(tmp_path / "r")])),
        daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "eval report hung on a FIFO"
    assert box["res"].exit_code == 2 and ("regular file" in box["res"].output or "not found" in box["res"].output)
