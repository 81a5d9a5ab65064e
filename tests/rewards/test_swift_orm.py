"""The ms-swift ORM adapter: unit (registration from the env, batches, async plugins) and a real 2-step
`swift rlhf --rlhf_type grpo` on the tiny model, run from the plan `render` produces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, framework_env, require_executable, require_module
from tests.rewards.conftest import REWARDS, load


def _env(monkeypatch: pytest.MonkeyPatch, path: str, orm: str, kwargs: dict, trace: Path | None = None) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("FAKEHR_REWARD_PATH", path)
    monkeypatch.setenv("FAKEHR_REWARD_NAME", "compute_score")
    monkeypatch.setenv("FAKEHR_REWARD_ORM", orm)
    monkeypatch.setenv("FAKEHR_REWARD_KWARGS", json.dumps(kwargs))
    if trace:
        monkeypatch.setenv("FAKEHR_REWARD_TRACE_DIR", str(trace))


def test_registers_fake_hr1_and_puts_the_prefix_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_module("swift")
    from swift.rewards import ORM, orms

    _env(monkeypatch, "rewards/fake_hr1.py", "t_fake_hr1", {"response_prefix": "<think>\\n"}, tmp_path)
    load("swift_orm")
    orm = orms["t_fake_hr1"]()
    assert isinstance(orm, ORM)
    # swift hands completions without the response prefix it generated after
    scores = orm(["\n</think>\n\nreal", "<think>\n\n</think>\n\nfake", "unrealistic"],
                 solution=["real", "real", "real"], images=[["a.png"]] * 3, trainer_state=None)
    assert scores == [1.5, 0.5, 0.0]
    (trace,) = tmp_path.glob("*.json")
    assert json.loads(trace.read_text())["scores"] == scores


def test_async_plugin_becomes_async_orm(monkeypatch: pytest.MonkeyPatch) -> None:
    require_module("swift")
    import asyncio

    from swift.rewards import AsyncORM, orms

    _env(monkeypatch, str(REWARDS / "fakevlm_r1.py"), "t_fakevlm", {"length_min_words": 1})
    load("swift_orm")
    orm = orms["t_fakevlm"]()
    assert isinstance(orm, AsyncORM)
    good = "<think>[Why fake] odd shadow [If real] soft light</think><answer>Fake</answer>"
    scores = asyncio.run(orm([good, "junk"], solution=["fake", "fake"]))
    assert scores[0] == 1.0 and scores[1] == 0.0


def test_async_batches_print_critic_counts_and_close_their_sessions(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """ms-swift runs each reward batch in its own asyncio.run: the adapter awaits the plugin's aclose() at the end
    of the batch (no session outlives its loop) and prints the batch's critic counts for the GRPO log."""
    require_module("swift")
    import asyncio

    from swift.rewards import orms

    from tests.rewards.critic_server import CriticServer, fixed

    with CriticServer(fixed("no score here")) as server:
        _env(monkeypatch, str(REWARDS / "fakevlm_r1.py"), "t_fakevlm_critic",
             {"length_min_words": 1, "critic_base_url": server.base_url, "critic_model": "judge",
              "critic_retries": 1, "critic_timeout_s": 5})
        mod = load("swift_orm")
        orm = orms["t_fakevlm_critic"]()
        good = "<think>[Why fake] odd shadow [If real] soft light</think><answer>Fake</answer>"
        for _ in range(2):
            asyncio.run(orm([good, good + " "], solution=["fake", "fake"]))
    err = capsys.readouterr().err
    assert "[fakehr reward] batch 1: 2 samples; critic answered 0, fallback 2, failed requests 4" in err
    assert "batch 2: 2 samples; critic answered 0, fallback 2, failed requests 4 (run so far: answered 0, " \
           "fallback 4, failed requests 8)" in err
    assert len(server.requests) == 8
    # the plugin module is loaded once per file (fakehr_orchestra/plugins.py): other tests' clients live there too
    clients = [c for cfg, c in orm.scorer.module._CLIENTS.items() if cfg.base_url == server.base_url]
    assert clients and all(not c._loops for c in clients)  # each batch closed its session
    assert mod.CriticTally().add([{"score": 1.0}]) is None  # no critic fields: no line


def test_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load("swift_orm")
    with pytest.raises(RuntimeError, match="FAKEHR_REWARD_PATH is not set"):
        mod.config_from_env({})
    with pytest.raises(RuntimeError, match="not valid JSON"):
        mod.config_from_env({"FAKEHR_REWARD_PATH": "x.py", "FAKEHR_REWARD_KWARGS": "{"})
    with pytest.raises(FileNotFoundError, match="no such reward plugin"):
        mod.load_plugin("rewards/nope.py")


@pytest.mark.integration
def test_swift_grpo_two_steps_with_the_adapter(tiny: dict[str, str], tmp_path: Path) -> None:
    require_executable("swift")
    require_module("msgspec")
    render = [str(Path(sys.executable).parent / "fakehr-orchestra"), "render", "recipes/fake_hr1.yaml", "--stage", "grpo",
              "-p", "smoke", "--format", "json", f"grpo.output_dir={tmp_path / 'out'}"]
    plan = json.loads(subprocess.run(render, cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    assert plan["argv"][:2] == ["swift", "rlhf"] and plan["env"]["FAKEHR_REWARD_ORM"] == "fake_hr1"
    trace = tmp_path / "trace"
    env = framework_env(**plan["env"], FAKEHR_REWARD_TRACE_DIR=str(trace))
    proc = subprocess.run(plan["argv"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "rewards/FakeHR_fake_hr1/mean" in log
    assert "last_model_checkpoint" in log
    batches = [json.loads(p.read_text()) for p in sorted(trace.glob("*.json"))]
    assert len(batches) >= 2  # one per step
    for batch in batches:
        assert len(batch["completions"]) == 4 and set(batch["solution"]) <= {"real", "fake"}
        assert all(0.0 <= s <= 1.5 for s in batch["scores"])
