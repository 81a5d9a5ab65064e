"""vLLM's OpenAI server as the critic's server (critic.server.engine: vllm): the exact argv, flags as vLLM spells
them."""

from __future__ import annotations

import pytest

from fakehr_orchestra.engines import render
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.recipe.errors import RecipeError
from tests.conftest import RECIPES


def test_the_smoke_vllm_critic_renders_vllms_openai_server() -> None:
    plan = render(load_recipe(RECIPES / "fakevlm_r1.yaml", ["vars.fixtures=/fx"], "smoke_vllm"), "critic")
    assert plan.argv == ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "/fx/model",
                         "--served-model-name", plan.argv[6], "--host", "127.0.0.1", "--port", "8011",
                         "--max-model-len", "2048", "--gpu-memory-utilization", "0.1", "--tensor-parallel-size", "1",
                         "--dtype", "float32", "--enforce-eager"]
    assert plan.entrypoint == "vllm.entrypoints.openai.api_server" and plan.engine == "vllm"
    assert plan.options[:2] == ["--model", "/fx/model"] and plan.origins["--model"] == "critic.server.model"
    assert plan.origins["--enforce-eager"] == "critic.server.args.enforce_eager"
    assert plan.origins["--max-model-len"] == "critic.server.max_model_len"
    assert plan.env["OMP_NUM_THREADS"] == "1"  # the server's env, as the profile sets it


def test_false_renders_vllms_no_flag_and_reserved_flags_are_refused() -> None:
    recipe = load_recipe(RECIPES / "fakevlm_r1.yaml", ["vars.fixtures=/fx", "critic.server.args.enforce_eager=false"],
                         "smoke_vllm")
    assert "--no-enforce-eager" in render(recipe, "critic").argv
    clash = load_recipe(RECIPES / "fakevlm_r1.yaml", ["vars.fixtures=/fx", "+critic.server.args.max_model_len=9"],
                        "smoke_vllm")
    with pytest.raises(Exception, match="critic.server.args.max_model_len: set by the critic section itself"):
        render(clash, "critic")


def test_vllm_serve_takes_no_swift_backend() -> None:
    with pytest.raises(RecipeError, match="leave backend at vllm"):
        load_recipe(RECIPES / "fakevlm_r1.yaml", ["critic.server.engine=vllm", "critic.server.backend=transformers"])
