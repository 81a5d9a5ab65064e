"""`reward score` with broken plugins and failing critics: a message naming the plugin and
a nonzero exit, never a traceback or a silent exit 0; HTTP status codes reported; validate warns about an unset
critic key variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from tests.conftest import RECIPES, ROOT

RECORD = {"response": "<think>[Why fake] a [If real] b</think><answer>Fake</answer>", "ground_truth": "fake"}


def responses(tmp_path: Path) -> Path:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(RECORD) + "\n" + json.dumps({**RECORD, "ground_truth": "real"}) + "\n")
    return path


def run(*args: str):
    result = CliRunner().invoke(cli, ["reward", "score", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("source, words", [
    ("def compute_score(**kw):\n    return 1 +\n", "syntax error at line 2"),
    ("import no_such_module_xyz\n", "cannot be imported: ModuleNotFoundError"),
    ("import sys\nsys.exit(0)\n", "called sys.exit(0) while being imported"),
    ("raise RuntimeError('boom')\n", "failed while being imported: RuntimeError: boom"),
])
def test_plugin_that_cannot_import(tmp_path: Path, source: str, words: str) -> None:
    plugin = tmp_path / "broken.py"
    plugin.write_text(source)
    result = run(str(plugin), str(responses(tmp_path)))
    assert result.exit_code == 2 and words in result.output and str(plugin) in result.output, result.output


def test_plugin_raising_while_scoring(tmp_path: Path) -> None:
    plugin = tmp_path / "keyerr.py"
    plugin.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info, **kw):\n"
                      "    return extra_info['missing']\n")
    result = run(str(plugin), str(responses(tmp_path)))
    assert result.exit_code == 1 and str(plugin) in result.output
    assert "every record failed: the plugin raised KeyError: 'missing'" in result.output


@pytest.mark.parametrize("case", ["401", "refused"])
def test_critic_failures_are_reported_and_fail_the_command(tmp_path: Path, case: str) -> None:
    from tests.rewards.critic_server import CriticServer

    args = [str(ROOT / "rewards/fakevlm_r1.py"), str(responses(tmp_path)), "--kwargs", "length_min_words=1",
            "--kwargs", "critic_retries=0", "--kwargs", "critic_model=judge"]
    if case == "401":
        with CriticServer(lambda n, body: (401, '{"error": "bad key"}', 0.0)) as server:
            result = run(*args, "--kwargs", f"critic_base_url={server.base_url}")
        assert "http_401 2" in result.output and "critic_api_key_env" in result.output, result.output
    else:
        result = run(*args, "--kwargs", "critic_base_url=http://127.0.0.1:9/v1")
        assert "ClientConnectorError" in result.output, result.output
    assert result.exit_code == 1 and "every call to the critic" in result.output


def test_validate_warns_when_the_critic_key_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakehr_orchestra.preflight.context import Context
    from fakehr_orchestra.preflight.critic_checks import check_key_env
    from fakehr_orchestra.preflight.report import Report
    from fakehr_orchestra.recipe import load_recipe

    recipe = load_recipe(str(RECIPES / "fakevlm_r1.yaml"), ["critic.mode=external", "critic.url=http://h:1/v1",
                                                             "critic.api_key_env=FAKEHR_TEST_CRITIC_KEY"])
    monkeypatch.delenv("FAKEHR_TEST_CRITIC_KEY", raising=False)
    ctx = Context(recipe, Report("r"))
    check_key_env(ctx)
    assert [f.key for f in ctx.report.warnings] == ["critic.api_key_env"]
    assert "HTTP 401" in ctx.report.warnings[0].message
    monkeypatch.setenv("FAKEHR_TEST_CRITIC_KEY", "x")
    ctx = Context(recipe, Report("r"))
    check_key_env(ctx)
    assert ctx.report.warnings == []
