"""SIGINT to `fakehr-orchestra run` while the SFT stage trains (ms-swift -> torchrun -> 2 ranks) leaves no child
process alive: checked in the process table (the CLI's descendants and the stage's session). So does `kill -9` of
the CLI's process group, which never reaches the stage's own session: the watchdog stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, VENV_BIN, framework_env, require_executable, require_module
from tests.launch.proctable import alive, descendants, in_session

pytestmark = pytest.mark.integration


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("how", ["SIGINT", "kill -9 of its group"])
def test_sigint_to_run_stops_swift_torchrun_and_its_ranks(tiny, tmp_path, how):
    require_module("swift")
    require_executable("swift")
    fixtures = tiny["model"].rsplit("/model", 1)[0]
    cli = [os.path.join(VENV_BIN, "fakehr-orchestra"), "run", "recipes/fake_hr1.yaml", f"vars.fixtures={fixtures}",
           f"vars.out={tmp_path}/out", "-p", "smoke", "--stages", "sft", "--run-dir", str(tmp_path / "run"),
           "--skip-validate", "--nodes", "1", "--nproc-per-node", "2", "sft.args.max_steps=1000"]
    proc = subprocess.Popen(cli, cwd=ROOT, env=framework_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # a group of its own, as a shell job has
    try:
        deadline, ranks = time.monotonic() + 300, []
        while time.monotonic() < deadline and proc.poll() is None:
            tree = descendants(proc.pid)
            ranks = [p for p in tree if "swift/cli/sft.py" in _cmdline(p) and "torch.distributed.run"
                     not in _cmdline(p)]
            if len(ranks) >= 2:
                break
            time.sleep(0.5)
        assert len(ranks) >= 2, (proc.poll(), proc.stdout.read().decode()[-3000:] if proc.poll() is not None
                                 else "no ranks yet")
        tree = descendants(proc.pid)
        leader = [p for p in tree if " -I -S -c" not in _cmdline(p)][0]  # the stage's process (its own session)
        assert any("torch.distributed.run" in _cmdline(p) for p in tree)
        if how == "SIGINT":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=120)
        deadline = time.monotonic() + 60  # after a kill -9 the watchdog stops the stage: SIGTERM, grace, SIGKILL
        while time.monotonic() < deadline and (in_session(leader) or any(alive(p) for p in tree)):
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code != 0
    assert in_session(leader) == []
    assert [(p, _cmdline(p)) for p in tree if alive(p)] == []
