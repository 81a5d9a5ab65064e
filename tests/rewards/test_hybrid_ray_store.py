"""The hybrid manager's shared group store on real Ray (CPU): two of verl's own `RewardLoopWorker` actors (two
worker processes, as `RewardLoopManager` makes them with `reward.num_workers=2`) each load `HybridRewardManager`
through verl's `load_reward_manager` and score, concurrently, half of the samples of the same prompt groups (one
`compute_score` call per sample, as the agent loop streams them). Every sample of a group must get the group
decision that the in-process store gives for the same inputs; a group that never completes is closed by the
timeout for all its members at once; the store actor is not left behind once the workers are gone, and no
process of the Ray instance this test starts survives it. Nothing is mocked: no GPU is involved in scoring."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from tests.conftest import ROOT, require_module
from tests.rewards.test_verl_loading import NO_THINK, THINK, batch, composed, score_batch

pytestmark = pytest.mark.integration

TIMEOUT_S = 3.0
COMPLETE = [  # groups of rollout.n = 4; consecutive rows alternate between the two workers
    # a: no-think as accurate as think (1.0 vs 0.5) -> no-think preferred
    ("a", NO_THINK.format("fake"), "fake", {}), ("a", THINK.format("fake"), "fake", {}),
    ("a", NO_THINK.format("fake"), "fake", {}), ("a", THINK.format("real"), "fake", {}),
    # b: thinking clearly more accurate (1.0 vs 0.0) -> think preferred
    ("b", THINK.format("real"), "real", {}), ("b", NO_THINK.format("fake"), "real", {}),
    ("b", THINK.format("real"), "real", {}), ("b", NO_THINK.format("unrealistic"), "real", {}),
    # d: one mode only -> nothing to compare, no bonus
    ("d", THINK.format("real"), "real", {}), ("d", THINK.format("real"), "real", {}),
    ("d", THINK.format("fake"), "real", {}), ("d", THINK.format("real"), "real", {}),
    # validation sample: never grouped, never waits
    ("v", NO_THINK.format("real"), "real", {"split": "val"}),
]
PARTIAL = [  # group c: 3 of 4 samples ever arrive (2 on one worker, 1 on the other) -> closed by the timeout
    ("c", NO_THINK.format("fake"), "fake", {}), ("c", THINK.format("fake"), "fake", {}),
    ("c", NO_THINK.format("real"), "fake", {}),
]
GROUP_KEYS = ("hybrid_preferred", "hybrid_group_size", "hybrid_group_complete")


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _procs_of(marker: str) -> dict[str, bytes]:
    """Live processes whose command line names `marker` (this test's Ray temp dir): gcs_server, raylet, workers."""
    token = marker.encode()
    return {pid: cmd for pid in os.listdir("/proc") if pid.isdigit()
            and token in (cmd := _cmdline(pid)) and _alive(pid)}


@pytest.fixture
def ray_instance(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private local Ray (address="local": never attaches to another cluster on this machine), torn down after.
    ray.init installs its own SIGTERM handler in this process; the one before it is put back, so later tests see
    the process as it was."""
    require_module("ray")
    import ray

    previous_sigterm = signal.getsignal(signal.SIGTERM)

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    temp = tempfile.mkdtemp(prefix="frh-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    started: dict[str, bytes] = {}
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
                 runtime_env={"env_vars": env})
        started = _procs_of(temp)
        yield temp
    finally:
        ray.shutdown()
        signal.signal(signal.SIGTERM, previous_sigterm)
        deadline = time.monotonic() + 20
        while _procs_of(temp) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _procs_of(temp)
        shutil.rmtree(temp, ignore_errors=True)
    assert any(b"raylet" in cmd for cmd in started.values()), started  # the marker does find Ray's processes
    assert any(b"gcs_server" in cmd for cmd in started.values()), started
    assert left == {}, {pid: cmd.replace(b"\0", b" ")[:200] for pid, cmd in left.items()}


def _group_view(out: list[dict[str, Any]]) -> list[tuple[float, ...]]:
    info = [o["reward_extra_info"] for o in out]
    return [(o["reward_score"], i["hybrid_bonus"], *(i[k] for k in GROUP_KEYS)) for o, i in zip(out, info)]


def test_two_worker_processes_share_groups_through_the_ray_store(
        tiny: dict[str, str], monkeypatch: pytest.MonkeyPatch, ray_instance: str) -> None:
    require_module("verl")
    import ray
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.ppo.reward import load_reward_manager

    cfg = composed("recipes/fake_hr1.yaml", monkeypatch, f"grpo.reward.kwargs.hybrid_group_timeout_s={TIMEOUT_S}")
    assert cfg.actor_rollout_ref.rollout.n == 4
    # worker processes need not share the test's cwd: the plan's relative paths made absolute
    cfg.actor_rollout_ref.model.path = tiny["model"]
    cfg.reward.custom_reward_function.path = str(ROOT / cfg.reward.custom_reward_function.path)
    cfg.reward.reward_manager.module.path = str(ROOT / cfg.reward.reward_manager.module.path)
    local_cfg = OmegaConf.create(OmegaConf.to_container(cfg))
    local_cfg.reward.num_workers = 1
    cfg.reward.num_workers = 2

    tokenizer = AutoTokenizer.from_pretrained(tiny["model"])
    complete, partial = batch(tokenizer, COMPLETE), batch(tokenizer, PARTIAL)

    # the workers, as RewardLoopManager._init_reward_loop_workers makes them (each its own process)
    worker_cls = ray.remote(RewardLoopWorker)
    workers = [worker_cls.options(name=f"reward_loop_worker_{i}").remote(cfg, None) for i in range(2)]
    pids = ray.get([w.__ray_call__.remote(lambda self: os.getpid()) for w in workers], timeout=120)
    assert len(set(pids)) == 2 and os.getpid() not in pids

    # the store's name, from the module under test (loaded by path, as verl loads it)
    spec = importlib.util.spec_from_file_location("hm_under_test", ROOT / "rewards" / "hybrid_manager.py")
    hm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hm)

    def on_ray(data: Any) -> list[Any]:  # one compute_score call per sample, alternating workers
        return [workers[i % 2].compute_score.remote(data[i:i + 1]) for i in range(len(data))]

    # warm-up (first decode, executor threads): validation samples, which are never grouped
    ray.get([w.compute_score.remote(complete[-1:]) for w in workers], timeout=60)
    # complete groups: every sample answered without waiting for the timeout
    start = time.monotonic()
    ray_complete = ray.get(on_ray(complete), timeout=60)
    complete_s = time.monotonic() - start
    # the partial group on Ray (timed in a thread) while the in-process reference scores the same inputs here
    with ThreadPoolExecutor(1) as pool:
        start = time.monotonic()
        pending = pool.submit(lambda refs: (ray.get(refs, timeout=60), time.monotonic() - start), on_ray(partial))
        reference = load_reward_manager(local_cfg, tokenizer)
        assert type(reference.store).__name__ == "GroupStore"  # the in-process store, not an actor handle
        ref_complete = score_batch(reference, complete)
        ref_partial = score_batch(reference, partial)
        ray_partial, partial_s = pending.result()

    assert _group_view(ray_complete) == _group_view(ref_complete)
    assert _group_view(ray_partial) == _group_view(ref_partial)
    assert [o["reward_extra_info"] for o in ray_complete] == [o["reward_extra_info"] for o in ref_complete]
    # the decisions themselves (so that equality with the reference cannot pass vacuously)
    info = [o["reward_extra_info"] for o in ray_complete]
    assert [i["hybrid_preferred"] for i in info] == [0.0] * 4 + [1.0] * 4 + [-1.0] * 4 + [-1.0]
    assert [i["hybrid_group_size"] for i in info] == [4.0] * 12 + [1.0]
    assert all(i["hybrid_group_complete"] == 1.0 for i in info)
    assert [i["hybrid_bonus"] for i in info] == [0.5, 0, 0.5, 0, 0.5, 0, 0.5, 0, 0, 0, 0, 0, 0]
    assert complete_s < TIMEOUT_S, f"complete groups took {complete_s:.1f}s: some waited for the timeout"
    part = [o["reward_extra_info"] for o in ray_partial]
    assert [(i["hybrid_group_size"], i["hybrid_group_complete"], i["hybrid_preferred"]) for i in part] == [
        (3.0, 0.0, 1.0)] * 3  # the 3 present: no-think acc 0.5 < think acc 1.0 - margin -> think preferred
    assert [i["hybrid_bonus"] for i in part] == [0.0, 0.5, 0.0]
    assert TIMEOUT_S <= partial_s < TIMEOUT_S + 20, f"partial group answered after {partial_s:.1f}s"
    print(f"ray store: complete groups {complete_s:.2f}s, partial group {partial_s:.2f}s (timeout {TIMEOUT_S}s)")
    store = ray.get_actor(hm.ACTOR_NAME)  # both workers' managers used the one named store
    assert ray.get(store.pending.remote()) == 0  # every closed group was dropped from the store

    # the store outlives no worker: once verl's workers are gone, so is it (no detached actor left on a cluster)
    for w in workers:
        ray.kill(w)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            ray.get_actor(hm.ACTOR_NAME)
        except ValueError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the group store actor {hm.ACTOR_NAME} outlived the reward workers")
