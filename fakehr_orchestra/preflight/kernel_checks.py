"""GPU-only packages a plan needs but `pip install ".[train,gpu]"` cannot bring: caught before anything is queued.

flash-attention has no wheel on PyPI (a separate build step), and DeepSpeed is in the `gpu` extra only; a job that asks
for either where it is missing dies at start-up, after the queue wait. The check looks for the module without
importing it (find_spec), so validate stays fast. With --remote-data (the job runs on a cluster whose environment
this machine cannot see) a missing package is a warning: it must be importable there.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

from .context import Context

# ms-swift's --attn_impl values that load a flash-attention kernel, and the module each needs
# (swift/model/utils.py AttnImpl: flash_attn / flash_attention_2 -> flash_attn; flash_attention_3 -> flash_attn_interface)
FLASH_MODULES = {"flash_attn": "flash_attn", "flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}
FLASH_INSTALL = "make flash-attn (pip install --no-build-isolation flash-attn==2.8.3 after torch)"


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _option(options: list[str], flag: str) -> str | None:
    """The value a `--flag value` pair gives in an argv (last one wins, as argparse does)."""
    value = None
    for i, item in enumerate(options[:-1]):
        if item == flag:
            value = options[i + 1]
    return value


def check_kernels(ctx: Context, swift_plans: list[Any], present: Callable[[str], bool] = _present) -> None:
    for plan in swift_plans:
        use_vllm = (_option(plan.options, "--use_vllm") or "").lower() in ("true", "1")
        if plan.stage == "grpo" and use_vllm and ctx.model.cluster.device == "cpu":
            key = plan.origin("--use_vllm", "grpo.swift_args.use_vllm")
            ctx.error("kernels", key, "ms-swift's GRPO cannot use vLLM rollouts on CPU: vLLM's CPU build repacks "
                      "each linear weight for oneDNN and frees the parameter, so ms-swift's weight sync into the "
                      "engine fails at the first rollout (colocate); server mode syncs over NCCL (GPUs)",
                      f"{key}=false on CPU (ms-swift then generates with transformers)", plan.stage)
        section = "sft.args" if plan.stage == "sft" else "grpo.swift_args"
        attn = _option(plan.options, "--attn_impl")
        module = FLASH_MODULES.get(attn or "")
        report = ctx.warning if ctx.remote_data else ctx.error
        if module is not None and not present(module):
            key = plan.origin("--attn_impl", f"{section}.attn_impl")
            report("kernels", key, f"attn_impl {attn} needs the flash-attention package ({module}), which this "
                   "environment cannot import, so the job would die at model load",
                   f"install it: {FLASH_INSTALL}; or use PyTorch's kernel: {key}=sdpa", plan.stage)
        ds = _option(plan.options, "--deepspeed")
        if ds and ds.lower() not in ("none", "null", "") and not present("deepspeed"):
            key = plan.origin("--deepspeed", f"{section}.deepspeed")
            report("kernels", key, f"deepspeed {ds} needs the deepspeed package, which this environment cannot "
                   "import", f"install it: pip install -c constraints.txt \".[gpu]\" (CUDA machines); or train "
                   f"without it: {key}=null", plan.stage)
