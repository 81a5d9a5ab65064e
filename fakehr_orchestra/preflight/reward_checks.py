"""The reward plugin loads and has verl's signature; the prompt leads the model to the format the reward parses.

The plugin is loaded by file path as verl loads it (spec_from_file_location + exec_module, see
verl/trainer/ppo/reward.py get_custom_reward_fn), through the project's one loader (plugins.py), in this process:
its top-level code runs here as it would in verl.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

from ..plugins import PluginLoadError, load_plugin_file
from .context import Context

VERL_CALL = {"data_source": "fakeclue", "solution_str": "<think>\n\n</think>\n\nfake", "ground_truth": "fake",
             "extra_info": {}}
FORMAT_MARKERS = {"fake_hr1": ("<think>",), "fakevlm_r1": ("<answer>", "[Why fake]", "[If real]")}


def check_reward(ctx: Context) -> None:
    grpo = ctx.model.grpo
    if grpo is None:
        return
    reward, st = grpo.reward, "grpo"
    if "${" in reward.path:
        ctx.warning("reward", "grpo.reward.path", f"{reward.path} is known only at launch; not loaded here", None, st)
        return
    path = Path(reward.path) if Path(reward.path).is_absolute() else Path(ctx.model.workdir) / reward.path
    if not path.is_file():
        ctx.error("reward", "grpo.reward.path", f"reward plugin {reward.path} does not exist", None, st)
        return
    try:
        module = load_plugin_file(path)
    except PluginLoadError as exc:
        ctx.error("reward", "grpo.reward.path", f"reward plugin {reward.path} {exc.reason}",
                  "run `python " + str(path) + "` to see the traceback", st)
        return
    fn = getattr(module, reward.name, None)
    if not callable(fn):
        public = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                  and getattr(v, "__module__", None) == module.__name__]
        ctx.error("reward", "grpo.reward.name", f"{reward.path} has no function '{reward.name}' (verl calls "
                  f"{reward.name}(data_source, solution_str, ground_truth, extra_info=None, **kwargs))",
                  f"define it, or set grpo.reward.name to one of {public}" if public else "define it", st)
        return
    from ..engines.critic import reward_kwargs
    kwargs = reward_kwargs(ctx.model)  # as the plan passes them: grpo.reward.kwargs + the critic section's
    try:
        inspect.signature(fn).bind(**VERL_CALL, **kwargs)
    except TypeError as exc:
        ctx.error("reward", "grpo.reward.name", f"{reward.path}:{reward.name}{inspect.signature(fn)} cannot be "
                  f"called as verl calls it (data_source, solution_str, ground_truth, extra_info, "
                  f"**reward.kwargs): {exc}", "accept those arguments (and **kwargs)", st)
    except ValueError:
        pass  # builtins without a signature: nothing to say
    # a plugin may say what its kwargs leave off (e.g. FakeVLM-R1 with no critic endpoint): preflight(kwargs) -> [str]
    hook = getattr(module, "preflight", None)
    if callable(hook):
        try:
            notes = list(hook(dict(kwargs)))
        except Exception as exc:  # noqa: BLE001 - a plugin's own check must not break validation
            notes = [f"its preflight() raised {type(exc).__name__}: {exc}"]
        for note in notes:
            ctx.warning("reward", "grpo.reward.kwargs", f"{reward.path}: {note}", None, st)
    manager = reward.manager
    if manager is not None and manager.path:
        check_manager(ctx, manager, grpo)


def check_swift_groups(ctx: Context, grpo: Any, functions: list[str]) -> None:
    """On ms-swift the manager's group reward runs inside each reward call: the file must define score_groups and
    every call must hold whole groups (ms-swift groups by position; rewards/hybrid_manager.score_groups)."""
    key = "grpo.reward.manager.path"
    if "score_groups" not in functions:
        ctx.error("reward", key, f"{grpo.reward.manager.path} defines no score_groups(results, keys, group_size, "
                  "kwargs): with grpo.engine=swift the group reward runs through it (rewards/swift_orm.py)",
                  "define it (see rewards/hybrid_manager.py), or remove grpo.reward.manager", "grpo")
    args = grpo.swift_args
    n = args.get("num_generations")
    if not isinstance(n, int) or n < 1:
        ctx.error("reward", "grpo.swift_args.num_generations", "the group reward needs the group size: set "
                  "grpo.swift_args.num_generations (ms-swift's own default would be hidden)", None, "grpo")
        return
    per_call = args.get("per_device_train_batch_size")
    steps = args.get("steps_per_generation") or args.get("gradient_accumulation_steps") or 1
    if isinstance(per_call, int) and isinstance(steps, int) and (per_call * steps) % n:
        ctx.error("reward", "grpo.swift_args.per_device_train_batch_size",
                  f"each process scores per_device_train_batch_size x steps_per_generation = {per_call * steps} "
                  f"samples per reward call, not a multiple of num_generations={n}: the group reward would see "
                  "groups cut across processes", f"make {per_call * steps} a multiple of {n}", "grpo")


def check_manager(ctx: Context, manager: Any, grpo: Any) -> None:
    """The custom manager file defines the class (read with ast: importing it would need verl's runtime), and for
    ms-swift the group function the ORM adapter calls."""
    path = Path(manager.path) if Path(manager.path).is_absolute() else Path(ctx.model.workdir) / manager.path
    if not path.is_file():
        ctx.error("reward", "grpo.reward.manager.path", f"reward manager file {manager.path} does not exist",
                  None, "grpo")
        return
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        ctx.error("reward", "grpo.reward.manager.path", f"{manager.path} has a syntax error: {exc}", None, "grpo")
        return
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    if grpo.engine == "swift":
        check_swift_groups(ctx, grpo, [n.name for n in tree.body if isinstance(n, ast.FunctionDef)])
        return
    if manager.name and manager.name not in classes:
        ctx.error("reward", "grpo.reward.manager.name", f"{manager.path} defines no class {manager.name}",
                  f"classes there: {classes}", "grpo")


def check_prompt(ctx: Context, stages: tuple[str, ...]) -> None:
    """response_prefix and system prompt against the answer format the reward and evaluation parse."""
    from ..answers import fake_hr1_target, fakevlm_r1_target, parse_answer
    from ..prompts import effective

    m = ctx.model
    fmt = m.prompt.answer_format
    if fmt != m.method:
        ctx.warning("prompt", "prompt.answer_format", f"answer_format {fmt} differs from the method {m.method}",
                    None)
    kw_fmt = (m.grpo.reward.kwargs or {}).get("answer_format") if m.grpo is not None else None
    if kw_fmt and kw_fmt != fmt:
        ctx.error("prompt", "grpo.reward.kwargs.answer_format", f"the reward parses {kw_fmt} but the prompt asks "
                  f"for {fmt}", "use one answer format", "grpo")
    targets = [fake_hr1_target("fake", "x"), fake_hr1_target("real")] if fmt == "fake_hr1" else \
        [fakevlm_r1_target("fake", [("a", "b")])]
    prefixes = [("prompt.response_prefix", m.prompt.response_prefix)]
    if m.sft is not None and "sft" in stages and "response_prefix" in m.sft.args:
        prefixes.append(("sft.args.response_prefix", m.sft.args.get("response_prefix")))
    for key, raw in prefixes:
        prefix = effective(raw) if raw else None
        if not prefix:
            continue
        for target in targets:
            if not target.startswith(prefix):
                ctx.error("prompt", key, f"response_prefix {raw!r} is not how a {fmt} answer starts "
                          f"({target[:20]!r}...): trained answers would not parse", "use the format's opening "
                          "(e.g. '<think>\\n' for fake_hr1) or none", "sft")
                break
            completion = target[len(prefix):]
            if not parse_answer(completion, fmt, response_prefix=prefix).well_formed:
                ctx.error("prompt", key, f"with response_prefix {raw!r} the reward cannot parse a well-formed "
                          f"{fmt} completion", None, "sft")
                break
    system = m.prompt.system or ""
    absent = [mk for mk in FORMAT_MARKERS.get(fmt, ()) if mk not in system]
    if system and absent:
        ctx.warning("prompt", "prompt.system", f"the system prompt never mentions {absent}, which the {fmt} "
                    "answer format requires", "describe the expected answer layout in the system prompt")
