"""Fake-HR1 hybrid-reasoning reward manager for verl 0.9 (`reward.reward_manager.source=importlib`).

Why a manager: the hybrid preference compares the think and no-think samples of the same prompt, which a
per-sample `compute_score` never sees. verl 0.9 scores one sample per `run_single` call (streamed from the agent
loop, spread over `reward.num_workers` Ray workers), so this manager scores the sample with the recipe's
`compute_score` (rewards/fake_hr1.py), then waits at a group barrier keyed by the prompt `uid` (verl puts it in
non_tensor_batch for GRPO) until the group's `n` samples have been scored, and adds the group bonus. The barrier
lives in this process when there is one reward worker, and in one named Ray actor (`fakehr_hybrid_groups`) shared
by all workers otherwise.

Formula (LHRM's hybrid GRPO, arXiv 2505.14631, as Fake-HR1 follows it). For the group G of prompt uid:
  T = samples of G in think mode, N = samples in no-think mode (think / no_think from compute_score; samples with
  no single think block are in neither), acc(S) = mean of `acc` over S.
  preferred = no_think  if T and N are both non-empty and acc(N) >= acc(T) - margin
              think     if T and N are both non-empty and acc(N) <  acc(T) - margin
              none      otherwise (one mode only: nothing to compare)
  bonus_i   = w_mode  if sample i is correct (acc = 1) and in the preferred mode, else 0
  score_i   = compute_score(...)["score"] + bonus_i

Weights (reward kwargs, shared with compute_score, which ignores them):
  hybrid_w_mode = 0.5          bonus for a correct answer in the preferred mode
  hybrid_margin = 0.05         accuracy the no-think mode may lose and still be preferred
  hybrid_group_size = null     samples per uid; null = actor_rollout_ref.rollout.n
  hybrid_group_timeout_s = 600 longest wait for the rest of a group; then the bonus uses the samples present
With compute_score's defaults (w_correct 1, w_format 0.5) a score is in [0, 2.0].

Samples whose extra_info['split'] is test/val/validation/eval (validation data, rollout.val_kwargs.n samples) are
not grouped: bonus 0, no waiting. Logged besides compute_score's keys: hybrid_bonus, hybrid_group_size,
hybrid_preferred (1 think, 0 no-think, -1 none), hybrid_group_complete (0 when the timeout cut the group short).
"""

# No `from __future__ import annotations`: verl loads this file without registering it in sys.modules, and
# dataclasses then cannot resolve string annotations.
import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

log = logging.getLogger("fakehr.hybrid")
VALIDATION_SPLITS = ("test", "val", "validation", "eval")
ACTOR_NAME = "fakehr_hybrid_groups"
# the key this manager adds to `score` (the training curves' reward component); hybrid_group_size,
# hybrid_preferred and hybrid_group_complete are bookkeeping
COMPONENTS = ("hybrid_bonus",)


@dataclass(frozen=True)
class HybridParams:
    w_mode: float = 0.5
    margin: float = 0.05
    group_size: int | None = None
    timeout_s: float = 600.0

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "HybridParams":
        def number(key: str, default: float) -> float:
            value = kwargs.get(key)
            value = default if value is None else float(value)
            if value < 0 or value != value:
                raise ValueError(f"reward kwarg {key}={value!r} must be >= 0 (grpo.reward.kwargs.{key})")
            return value

        size = kwargs.get("hybrid_group_size")
        return cls(w_mode=number("hybrid_w_mode", 0.5), margin=number("hybrid_margin", 0.05),
                   group_size=int(size) if size else None, timeout_s=number("hybrid_group_timeout_s", 600.0))


def preferred_mode(members: Sequence[Mapping[str, float]], margin: float) -> str | None:
    """'think', 'no_think' or None for a group of compute_score results (keys acc, think, no_think)."""
    think = [m["acc"] for m in members if m.get("think") == 1.0]
    no_think = [m["acc"] for m in members if m.get("no_think") == 1.0]
    if not think or not no_think:
        return None
    return "no_think" if sum(no_think) / len(no_think) >= sum(think) / len(think) - margin else "think"


def hybrid_bonus(member: Mapping[str, float], preferred: str | None, w_mode: float) -> float:
    if preferred is None or member.get("acc") != 1.0:
        return 0.0
    return w_mode if member.get(preferred) == 1.0 else 0.0


def group_record(result: Mapping[str, Any]) -> dict[str, float]:
    """What a group member contributes to the group's preference (from compute_score's result)."""
    if not isinstance(result, Mapping):
        raise TypeError("the hybrid bonus needs compute_score to return a dict with acc/think/no_think "
                        f"(rewards/fake_hr1.py does); got {type(result).__name__}")
    return {k: float(result.get(k, 0.0)) for k in ("acc", "think", "no_think")}


def with_bonus(result: Mapping[str, Any], members: Sequence[Mapping[str, float]], complete: bool,
               params: HybridParams) -> dict[str, Any]:
    """compute_score's result plus the group bonus and its log keys: the one formula both engines apply
    (verl through HybridRewardManager.run_single, ms-swift through `score_groups`)."""
    preferred = preferred_mode(members, params.margin)
    bonus = hybrid_bonus(group_record(result), preferred, params.w_mode)
    info = dict(result)
    info.update(score=float(result["score"]) + bonus, hybrid_bonus=bonus, hybrid_group_size=float(len(members)),
                hybrid_preferred={"think": 1.0, "no_think": 0.0, None: -1.0}[preferred],
                hybrid_group_complete=1.0 if complete else 0.0)
    return info


def score_groups(results: Sequence[Mapping[str, Any]], keys: Sequence[Any], group_size: int,
                 kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bonus for one ms-swift reward call (rewards/swift_orm.py).

    ms-swift groups by position: its advantages view the gathered rewards as rows of `num_generations` (its
    sampler repeats each prompt that many times in a row). A process scores its whole share of a generation batch
    in one call, so the call holds whole groups when its length is a multiple of the group size; `keys` (each
    sample's prompt: images and messages) must then be equal within each block. Anything else would give a wrong
    bonus silently, so it is an error naming the batch sizes to change."""
    if len(results) != len(keys):
        raise ValueError(f"{len(results)} results for {len(keys)} keys")
    if group_size < 1 or len(results) % group_size:
        raise ValueError(
            f"hybrid bonus: a reward call of {len(results)} samples does not hold whole groups of "
            f"num_generations={group_size}: ms-swift split a prompt's group across processes. Make "
            "per_device_train_batch_size x steps_per_generation (default gradient_accumulation_steps) a multiple "
            "of num_generations (grpo.swift_args)")
    params = HybridParams.from_kwargs(kwargs)
    out: list[dict[str, Any]] = []
    for start in range(0, len(results), group_size):
        block = range(start, start + group_size)
        if len({keys[i] for i in block}) != 1:
            raise ValueError(f"hybrid bonus: samples {start}..{start + group_size - 1} of a reward call answer "
                             "different prompts: not one group of num_generations (ms-swift's layout changed?)")
        members = [group_record(results[i]) for i in block]
        out.extend(with_bonus(results[i], members, True, params) for i in block)
    return out


@dataclass
class _Group:
    event: asyncio.Event
    members: list[dict[str, float]] = field(default_factory=list)
    readers: int = 0
    complete: bool = False


class GroupStore:
    """Barrier per uid: `join` returns (index of this member, the group's members, complete?) once the group has
    `expected` members or `timeout_s` passed since this member arrived. Used in-process or as a Ray actor."""

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}

    async def join(self, uid: str, record: dict[str, float], expected: int,
                   timeout_s: float) -> tuple[int, list[dict[str, float]], bool]:
        group = self._groups.get(uid)
        if group is None or group.event.is_set():  # a closed group's uid reused later: a new group
            group = self._groups[uid] = _Group(asyncio.Event())
        index = len(group.members)
        group.members.append(record)
        if len(group.members) >= expected:
            group.complete = True
            group.event.set()
        try:
            await asyncio.wait_for(group.event.wait(), timeout_s)
        except asyncio.TimeoutError:
            group.event.set()  # close it: every member sees the same partial group
        group.readers += 1
        if group.readers >= len(group.members) and self._groups.get(uid) is group:
            del self._groups[uid]
        return index, list(group.members), group.complete

    def pending(self) -> int:
        return len(self._groups)


_LOCAL_STORE = GroupStore()


def group_store(num_workers: int) -> Any:
    """The in-process store, or the named Ray actor when several reward workers share groups.

    The actor is not detached: the reward worker that creates it owns it, so it ends with the training job's
    workers. (A detached one would outlive every run on a long-lived cluster, in the job's anonymous namespace
    where no later run can even find it.) The workers of one job share the job's namespace, so the name is
    unique per run."""
    if num_workers <= 1:
        return _LOCAL_STORE
    import ray

    if not ray.is_initialized():
        return _LOCAL_STORE
    actor = ray.remote(GroupStore).options(name=ACTOR_NAME, get_if_exists=True, max_concurrency=100_000,
                                           num_cpus=0)
    return actor.remote()


async def join_group(store: Any, uid: str, record: dict[str, float], expected: int, timeout_s: float) -> Any:
    if isinstance(store, GroupStore):
        return await store.join(uid, record, expected, timeout_s)
    return await store.join.remote(uid, record, expected, timeout_s)


try:  # verl is a training dependency; the formula above is usable (and tested) without it
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
except ImportError:  # pragma: no cover
    RewardManagerBase = object  # type: ignore[misc,assignment]


class HybridRewardManager(RewardManagerBase):  # type: ignore[misc,valid-type]
    """verl reward manager: per-sample compute_score (as verl's naive manager) + the group bonus above."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any, reward_router_address: Any = None,
                 reward_model_tokenizer: Any = None, **_: Any) -> None:
        super().__init__(config, tokenizer, compute_score)
        if compute_score is None:
            raise ValueError("HybridRewardManager needs reward.custom_reward_function.path (rewards/fake_hr1.py)")
        self.is_async_reward_score = inspect.iscoroutinefunction(compute_score) or inspect.iscoroutinefunction(
            getattr(compute_score, "func", None))
        reward_cfg = config.reward.custom_reward_function
        kwargs = dict(reward_cfg.get("reward_kwargs", None) or {})
        self.params = HybridParams.from_kwargs(kwargs)
        self.group_size = self.params.group_size or int(config.actor_rollout_ref.rollout.n)
        self.store = group_store(int(config.reward.get("num_workers", 1) or 1))

    async def _score(self, data_source: Any, response: str, ground_truth: Any, extra_info: Any) -> dict[str, Any]:
        call = dict(data_source=data_source, solution_str=response, ground_truth=ground_truth, extra_info=extra_info)
        if self.is_async_reward_score:
            result = await self.compute_score(**call)
        else:
            result = await self.loop.run_in_executor(None, lambda: self.compute_score(**call))
        group_record(result)  # a result the bonus cannot use fails here, saying why
        return result

    async def run_single(self, data: Any) -> dict[str, Any]:
        data = data[-1:]
        item = data[0]
        response_ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        response = await self.loop.run_in_executor(
            None, lambda: self.tokenizer.decode(response_ids[:valid], skip_special_tokens=True))
        extra_info = item.non_tensor_batch.get("extra_info", None) or {}
        result = await self._score(item.non_tensor_batch.get("data_source"), response,
                                   item.non_tensor_batch["reward_model"]["ground_truth"], extra_info)
        record = group_record(result)
        uid = item.non_tensor_batch.get("uid")
        split = str(extra_info.get("split", "")).lower() if isinstance(extra_info, Mapping) else ""
        members, complete = [record], True
        if uid is not None and self.group_size > 1 and split not in VALIDATION_SPLITS:
            _, members, complete = await join_group(self.store, str(uid), record, self.group_size,
                                                    self.params.timeout_s)
            if not complete:
                log.warning("hybrid group %s closed with %d of %d samples after %.0f s", uid, len(members),
                            self.group_size, self.params.timeout_s)
        info = with_bonus(result, members, complete, self.params)
        return {"reward_score": info["score"], "reward_extra_info": info}
