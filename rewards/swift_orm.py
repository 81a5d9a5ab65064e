"""ms-swift GRPO adapter: wraps one of our verl-style reward plugins as an ms-swift ORM.

Loaded by `swift rlhf --rlhf_type grpo --external_plugins <abs>/rewards/swift_orm.py --reward_funcs <orm>`; which
plugin to wrap comes from the environment (the plan rendered by fakehr_orchestra.engines.swift sets it):
  FAKEHR_REWARD_PATH    plugin file (relative to the cwd, or absolute), e.g. rewards/fake_hr1.py
  FAKEHR_REWARD_NAME    function in it (default compute_score)
  FAKEHR_REWARD_ORM     name registered in swift.rewards.orms (default fakehr_<file stem>)
  FAKEHR_REWARD_KWARGS  JSON object of reward kwargs (the recipe's grpo.reward.kwargs)
  FAKEHR_REWARD_GROUPS  optional: a file whose `score_groups(results, keys, group_size, kwargs)` adds a group
                        reward (the recipe's grpo.reward.manager.path, e.g. rewards/hybrid_manager.py: the same
                        bonus verl's HybridRewardManager adds, from the same code)
  FAKEHR_REWARD_GROUP_SIZE  the group size for it (grpo.swift_args.num_generations)
  FAKEHR_REWARD_TRACE_DIR  optional: each scored batch is written there as <pid>-<n>.json (completions, solutions
                        and every component), for reward debugging; off when unset

ms-swift passes the decoded completions (messages[-1]['content'], without any --response_prefix: the plan passes
the same `response_prefix` as a reward kwarg and the parser puts it back) and every extra dataset column as a
batched keyword argument;
the ground truth is the `solution` column. ms-swift wants one float per completion, so the adapter returns the
plugin's `score` (its other components are not logged by ms-swift; `fakehr-orchestra reward score` shows them).
A bad ground truth raises (a data error must stop the run); model output never raises in the plugins. An async
plugin (fakevlm_r1 with a critic) is registered as an AsyncORM, so ms-swift gathers its critic calls; ms-swift runs
each batch in its own `asyncio.run`, so the plugin's `aclose()` (if it has one) is awaited at the end of the batch.

Groups: ms-swift's sampler repeats each prompt num_generations times in a row, and each process scores its whole
share of a generation batch (per_device_train_batch_size x steps_per_generation samples) in one call (checked in
ms-swift 4.6: rl_core/grpo_algorithm.score_completions, before the rewards are gathered). With FAKEHR_REWARD_GROUPS
score_groups groups the call's samples by position, as ms-swift's advantages do, after checking each block answers
one prompt (images + messages); a call that does not hold whole groups is an error naming the batch sizes to
change. One line per batch goes to stderr:
`[fakehr reward] batch N: hybrid bonus on B of S samples (groups preferring think T, no-think K, neither E)`.

Trust-GRPO (reward kwarg `trust_grpo: true`, fakevlm_r1 only; rewards/trust_grpo.py): the batch's samples are grouped
by prompt (prompt_key) and each group goes to the plugin's `compute_score_group(calls, step)` with ms-swift's
global step, so the critic is skipped for groups whose answers are all right or all wrong.

When a batch's results carry critic fields (consistency, critic_fallback, critic_failures), one line per batch goes
to stderr (the GRPO log): `[fakehr reward] batch N: S samples; critic answered A, fallback F, failed requests X
(run so far: ...)`, so the log shows what the critic did even when ms-swift logs only the mean score.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from fakehr_orchestra.plugins import load_plugin_file

ENV_PATH, ENV_NAME, ENV_ORM, ENV_KWARGS = ("FAKEHR_REWARD_PATH", "FAKEHR_REWARD_NAME", "FAKEHR_REWARD_ORM",
                                           "FAKEHR_REWARD_KWARGS")
ENV_GROUPS, ENV_GROUP_SIZE = "FAKEHR_REWARD_GROUPS", "FAKEHR_REWARD_GROUP_SIZE"


def load_module(path: str, env: str = ENV_PATH) -> Any:
    file = Path(path).expanduser()
    if not file.is_absolute():
        file = Path.cwd() / file
    if not file.is_file():
        raise FileNotFoundError(f"{env}={path!r}: no such reward plugin file (looked at {file})")
    return load_plugin_file(file)


def load_plugin(path: str, name: str = "compute_score") -> Callable[..., Any]:
    module = load_module(path)
    if not hasattr(module, name):
        raise AttributeError(f"{ENV_NAME}={name!r}: {module.__file__} has no such function")
    return getattr(module, name)


def config_from_env(environ: dict[str, str] | None = None) -> tuple[str, str, str, dict[str, Any]]:
    env = os.environ if environ is None else environ
    path = env.get(ENV_PATH)
    if not path:
        raise RuntimeError(f"{ENV_PATH} is not set: render the plan with fakehr-orchestra (it sets FAKEHR_REWARD_*)")
    name = env.get(ENV_NAME) or "compute_score"
    orm = env.get(ENV_ORM) or f"fakehr_{Path(path).stem}"
    try:
        kwargs = json.loads(env.get(ENV_KWARGS) or "{}")
    except ValueError as exc:
        raise RuntimeError(f"{ENV_KWARGS} is not valid JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise RuntimeError(f"{ENV_KWARGS} must be a JSON object, got {type(kwargs).__name__}")
    return path, name, orm, kwargs


def _row(value: Any, i: int) -> Any:
    return value[i] if isinstance(value, (list, tuple)) and len(value) > i else None


class CriticTally:
    """Critic outcomes per batch and for the run, from the results' critic fields; one log line per batch."""

    def __init__(self) -> None:
        self.batches = 0
        self.total = {"answered": 0, "fallback": 0, "failed": 0}

    def add(self, results: list[Any]) -> str | None:
        judged = [r for r in results if isinstance(r, dict) and "critic_fallback" in r]
        if not judged:
            return None
        self.batches += 1
        batch = {"answered": sum(1 for r in judged if not r["critic_fallback"]),
                 "fallback": sum(1 for r in judged if r["critic_fallback"]),
                 "failed": int(sum(r.get("critic_failures", 0) for r in judged))}
        for key, value in batch.items():
            self.total[key] += value
        line = (f"[fakehr reward] batch {self.batches}: {len(results)} samples; critic answered {batch['answered']}, "
                f"fallback {batch['fallback']}, failed requests {batch['failed']} (run so far: answered "
                f"{self.total['answered']}, fallback {self.total['fallback']}, failed requests {self.total['failed']})")
        print(line, file=sys.stderr, flush=True)
        return line


def prompt_key(extras: dict[str, Any], i: int) -> str:
    """Which prompt sample i answers: its images and its messages up to the completion (ms-swift passes every
    dataset column, and `messages` with the completion last)."""
    messages = _row(extras.get("messages"), i)
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict) \
            and messages[-1].get("role") == "assistant":
        messages = messages[:-1]
    return json.dumps([_row(extras.get("images"), i), messages], sort_keys=True, default=str)


class GroupBonus:
    """The group reward of FAKEHR_REWARD_GROUPS, applied to each batch's results, with one log line per batch."""

    def __init__(self, module: Any, group_size: int, kwargs: dict[str, Any]) -> None:
        if not hasattr(module, "score_groups"):
            raise AttributeError(f"FAKEHR_REWARD_GROUPS: {module.__file__} has no score_groups(results, keys, "
                                 "group_size, kwargs)")
        self.module, self.group_size, self.kwargs = module, group_size, kwargs
        self.batches = 0

    def apply(self, results: list[Any], extras: dict[str, Any]) -> list[Any]:
        keys = [prompt_key(extras, i) for i in range(len(results))]
        scored = self.module.score_groups(results, keys, self.group_size, self.kwargs)
        self.batches += 1
        bonus = sum(1 for r in scored if r.get("hybrid_bonus", 0.0) > 0)
        prefs = [r.get("hybrid_preferred", -1.0) for r in scored[::self.group_size]]
        print(f"[fakehr reward] batch {self.batches}: hybrid bonus on {bonus} of {len(scored)} samples (groups "
              f"preferring think {prefs.count(1.0)}, no-think {prefs.count(0.0)}, neither {prefs.count(-1.0)})",
              file=sys.stderr, flush=True)
        return scored


class PluginScorer:
    """Batch scorer around a compute_score: sync plugins per row, async ones gathered (critic calls overlap)."""

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any],
                 aclose: Callable[[], Any] | None = None, groups: GroupBonus | None = None,
                 group_fn: Callable[..., Any] | None = None) -> None:
        self.fn, self.kwargs = fn, kwargs
        self.group_fn = group_fn  # the plugin's compute_score_group (trust_grpo: scores whole prompt groups)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.aclose = aclose  # the plugin's per-loop cleanup, awaited after each async batch
        self.tally = CriticTally()
        self.groups = groups

    def _finish(self, results: list[Any], extras: dict[str, Any]) -> list[Any]:
        self.tally.add(results)
        return self.groups.apply(results, extras) if self.groups is not None else results

    def _calls(self, completions: list[Any], solution: Any, extras: dict[str, Any]) -> list[dict[str, Any]]:
        calls = []
        for i, completion in enumerate(completions):
            extra_info = {k: _row(v, i) for k, v in extras.items() if k in ("images", "image", "label_convention")}
            calls.append(dict(data_source=_row(extras.get("data_source"), i) or "swift", solution_str=completion,
                              ground_truth=_row(solution, i), extra_info=extra_info, **self.kwargs))
        return calls

    async def _gather(self, calls: list[dict[str, Any]]) -> list[Any]:
        try:
            return list(await asyncio.gather(*(self.fn(**c) for c in calls)))
        finally:
            if self.aclose is not None:
                await self.aclose()

    async def _gather_groups(self, calls: list[dict[str, Any]], extras: dict[str, Any]) -> list[Any]:
        """compute_score_group per prompt (its samples found by prompt_key), results back in the batch's order;
        the step is ms-swift's global step (its `trainer_state` reward kwarg)."""
        state = extras.get("trainer_state")
        step = float(getattr(state, "global_step", 0) or 0)
        groups: dict[str, list[int]] = {}
        for i in range(len(calls)):
            groups.setdefault(prompt_key(extras, i), []).append(i)
        assert self.group_fn is not None
        try:
            scored = await asyncio.gather(*(self.group_fn([calls[i] for i in members], step)
                                            for members in groups.values()))
        finally:
            if self.aclose is not None:
                await self.aclose()
        results: list[Any] = [None] * len(calls)
        for members, group_results in zip(groups.values(), scored):
            for i, result in zip(members, group_results):
                results[i] = result
        return results

    async def ascore(self, completions: list[Any], solution: Any, **extras: Any) -> list[dict[str, Any]]:
        calls = self._calls(completions, solution, extras)
        if self.group_fn is not None:
            return self._finish(await self._gather_groups(calls, extras), extras)
        results = await self._gather(calls) if self.is_async else [self.fn(**c) for c in calls]
        return self._finish(results, extras)

    def score(self, completions: list[Any], solution: Any, **extras: Any) -> list[dict[str, Any]]:
        calls = self._calls(completions, solution, extras)
        if self.group_fn is not None:
            return self._finish(asyncio.run(self._gather_groups(calls, extras)), extras)
        results = asyncio.run(self._gather(calls)) if self.is_async else [self.fn(**c) for c in calls]
        return self._finish(results, extras)


def _register() -> None:
    """Register the ORM named by the env (only when ms-swift imports this file as a plugin)."""
    try:
        from swift.rewards import ORM, AsyncORM, orms
    except ImportError:  # ms-swift 3.x
        from swift.plugin import ORM, orms  # type: ignore[no-redef]
        AsyncORM = None  # type: ignore[assignment,misc]

    path, name, orm_name, kwargs = config_from_env()
    module = load_module(path)
    if not hasattr(module, name):
        raise AttributeError(f"{ENV_NAME}={name!r}: {module.__file__} has no such function")
    hook = getattr(module, "aclose", None)
    groups = None
    if os.environ.get(ENV_GROUPS):
        size = os.environ.get(ENV_GROUP_SIZE, "")
        if not size.isdigit() or int(size) < 1:
            raise RuntimeError(f"{ENV_GROUP_SIZE}={size!r}: the group size must be a positive integer "
                               "(grpo.swift_args.num_generations)")
        groups = GroupBonus(load_module(os.environ[ENV_GROUPS], ENV_GROUPS), int(size), kwargs)
    group_fn = None
    if kwargs.get("trust_grpo"):
        group_fn = getattr(module, "compute_score_group", None)
        if group_fn is None:
            raise AttributeError(f"reward kwarg trust_grpo: {module.__file__} has no compute_score_group (SophiaVL-R1's "
                                 "Trust-GRPO gating is offered by rewards/fakevlm_r1.py)")
    scorer = PluginScorer(getattr(module, name), kwargs, hook if inspect.iscoroutinefunction(hook) else None,
                          groups, group_fn)

    def check(solution: Any) -> None:
        if solution is None:
            raise RuntimeError("the GRPO dataset has no `solution` column (the ground truth): "
                               "export it with `fakehr-orchestra data`")

    trace_dir = os.environ.get("FAKEHR_REWARD_TRACE_DIR")
    batches = [0]

    def floats(results: list[Any], completions: list[Any], solution: Any, extras: dict[str, Any]) -> list[float]:
        scores = [float(r["score"]) if isinstance(r, dict) else float(r) for r in results]
        if trace_dir:
            from fakehr_orchestra.io import write_json_atomic

            batches[0] += 1
            sources = extras.get("data_source")
            write_json_atomic(Path(trace_dir) / f"{os.getpid()}-{batches[0]}.json",
                              {"orm": orm_name, "plugin": path, "completions": completions,
                               "solution": list(solution), "results": results, "scores": scores,
                               "data_source": list(sources) if isinstance(sources, (list, tuple)) else None})
        return scores

    if scorer.is_async and AsyncORM is not None:
        class FakeHRRewardORM(AsyncORM):  # type: ignore[misc,valid-type]
            async def __call__(self, completions: list[Any], solution: Any = None, **kw: Any) -> list[float]:
                check(solution)
                return floats(await scorer.ascore(list(completions), solution, **kw), list(completions), solution, kw)
    else:
        class FakeHRRewardORM(ORM):  # type: ignore[misc,valid-type,no-redef]
            def __call__(self, completions: list[Any], solution: Any = None, **kw: Any) -> list[float]:
                check(solution)
                return floats(scorer.score(list(completions), solution, **kw), list(completions), solution, kw)

    FakeHRRewardORM.__name__ = f"FakeHR_{orm_name}"
    FakeHRRewardORM.scorer = scorer  # type: ignore[attr-defined]  # for debugging and tests
    scorer.module = module  # type: ignore[attr-defined]
    orms[orm_name] = FakeHRRewardORM


if os.environ.get(ENV_PATH):
    _register()
