"""Env var names are identifiers, secrets are refused where a name is expected, credentials are redacted
."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.recipe import RecipeError, load_recipe
from tests.conftest import RECIPES

SECRET = "sk-proj-9fQ2xLk3Vb7TzR1mN8pW4sYc"


@pytest.mark.parametrize("name", ["X$(touch /tmp/x)", "A B", "1ABC", "A-B", ""])
def test_bad_env_names_are_recipe_errors_naming_key_and_file(tmp_path: Path, name: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {RECIPES / 'fake_hr1.yaml'}\nsft:\n  env:\n    '{name}': 1\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(str(recipe))
    text = str(err.value)
    assert f"{recipe}:4" in text and "sft.env" in text and "not a shell identifier" in text, text


def test_secret_in_api_key_env_is_refused_without_echo(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {RECIPES / 'fakevlm_r1.yaml'}\ncritic:\n  api_key_env: {SECRET}\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(str(recipe))
    assert "looks like a secret" in str(err.value) and SECRET not in str(err.value)
    result = CliRunner().invoke(cli, ["render", str(RECIPES / "fakevlm_r1.yaml"), "--stage", "grpo",
                                      f"critic.api_key_env={SECRET}"])
    assert result.exit_code == 2 and SECRET not in result.output and "secret" in result.output
    for name in ("CRITIC_API_KEY", "OPENAI_API_KEY", "my_key_2"):
        load_recipe(str(RECIPES / "fakevlm_r1.yaml"), [f"critic.api_key_env={name}"])


def test_shell_boundary_refuses_bad_names() -> None:
    from fakehr_orchestra.engines import RenderError
    from fakehr_orchestra.engines.plan import Plan

    plan = Plan(stage="sft", argv=["swift", "sft"], env={"X$(touch /tmp/x)": "1"})
    with pytest.raises(RenderError, match="not a shell identifier"):
        plan.to_shell()
    assert Plan(stage="sft", argv=["swift"], env={"OK_1": "a b"}).to_shell().startswith("OK_1='a b'")


def test_critic_client_refuses_secret_and_redacts_credentials(caplog: pytest.LogCaptureFixture, capsys) -> None:
    import sys

    sys.path.insert(0, str(RECIPES.parent))
    from rewards.critic import CriticClient, CriticConfig

    with pytest.raises(ValueError) as err:
        CriticConfig(base_url="http://127.0.0.1:1/v1", api_key_env=SECRET)
    assert SECRET not in str(err.value)
    with pytest.raises(ValueError) as err:  # credentials in the URL: refused, and the message redacts them
        CriticConfig(base_url="https://user:hunter2@critic.example/v1", breaker_threshold=1)
    assert "hunter2" not in str(err.value) and "https://***@critic.example/v1" in str(err.value)
    client = CriticClient(CriticConfig(base_url="https://critic.example/v1", breaker_threshold=1))
    with caplog.at_level(logging.WARNING, logger="fakehr.critic"):
        client._fail("ClientConnectorError")
    client.stats.calls = 1
    client.report()
    logged = caplog.text + capsys.readouterr().err + repr(client)
    assert "https://critic.example/v1" in logged
