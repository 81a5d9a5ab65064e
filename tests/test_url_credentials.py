"""URLs with credentials: refused in a recipe (so render, run --dry-run, submit's scripts, recipe.resolved.yaml and
the trainer's argv never hold them), refused by the critic client, and redacted whole (every `@`) in messages."""

from __future__ import annotations

import os
import subprocess

import pytest

from fakehr_orchestra.secrets import redact_url
from tests.conftest import RECIPES, ROOT, VENV_BIN

CLI = os.path.join(VENV_BIN, "fakehr-orchestra")
SECRET = "p@ss-SECRET"
URL = f"http://alice:{SECRET}@critic.example:8000/v1"


@pytest.mark.parametrize("argv", [
    ["render", str(RECIPES / "fakevlm_r1.yaml"), "--stage", "grpo"],
    ["run", str(RECIPES / "fakevlm_r1.yaml"), "--dry-run", "--skip-validate"],
    ["submit", str(RECIPES / "fakevlm_r1.yaml"), "--dry-run", "--run-dir", "/runs/x"],
    ["validate", str(RECIPES / "fakevlm_r1.yaml")],
    ["recipes", "show", str(RECIPES / "fakevlm_r1.yaml")],
])
def test_a_url_with_credentials_is_refused_and_never_echoed(argv, tmp_path):
    proc = subprocess.run([CLI, *argv, "critic.mode=external", f"critic.url={URL}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "carries credentials" in out and "critic.url" in out
    assert "SECRET" not in out and "ss-S" not in out and "alice" not in out
    assert "Traceback" not in out


@pytest.mark.parametrize("text,shown", [
    ("http://user:pw@host/v1", "http://***@host/v1"),
    (f"see {URL} now", "see http://***@critic.example:8000/v1 now"),
    ("https://u:a/b@c@host:1/x?y=1", "https://***@host:1/x?y=1"),
    ("'http://a:b@h' and http://c:d@e/", "'http://***@h' and http://***@e/"),
    ("http://host/v1", "http://host/v1"),
])
def test_the_redactor_hides_everything_up_to_the_last_at(text, shown):
    assert redact_url(text) == shown


def test_the_critic_client_refuses_a_url_with_credentials():
    from rewards.critic import CriticConfig

    with pytest.raises(ValueError, match="carries credentials") as info:
        CriticConfig(base_url=URL, model="m")
    assert "SECRET" not in str(info.value)
