"""GPU-only packages a plan needs (flash-attention, DeepSpeed) and vLLM rollouts on CPU, refused before queueing."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import require_module
from tests.preflight.test_validate import check, messages

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _frameworks() -> None:
    require_module("swift")


def test_the_seeds_flash_attention_without_flash_attn_is_an_error_with_both_fixes() -> None:
    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash_attn is installed here: the check passes by design")
    report = check([], ("sft",), profile=None)  # recipes/fake_hr1.yaml as shipped: attn_impl flash_attention_2
    [attn] = [f for f in report.errors if f.key == "sft.args.attn_impl"]
    assert "flash_attention_2 needs the flash-attention package (flash_attn)" in attn.message
    assert "make flash-attn" in attn.fix and "sft.args.attn_impl=sdpa" in attn.fix
    assert attn.file.endswith("fake_hr1.yaml") and attn.line is not None  # named where the recipe sets it
    if importlib.util.find_spec("deepspeed") is None:
        [ds] = [f for f in report.errors if f.key == "sft.args.deepspeed"]
        assert "deepspeed zero2 needs the deepspeed package" in ds.message and "sft.args.deepspeed=null" in ds.fix
    fixed = check(["sft.args.attn_impl=sdpa", "sft.args.deepspeed=null"], ("sft",), profile=None)
    assert not any(f.check == "kernels" for f in fixed.findings), messages(fixed)


def test_vllm_rollouts_on_cpu_are_refused() -> None:
    report = check(["+grpo.swift_args.use_vllm=true"], ("grpo",))
    [err] = [f for f in report.errors if f.key == "grpo.swift_args.use_vllm"]
    assert "repacks each linear weight" in err.message and "grpo.swift_args.use_vllm=false" in err.fix
