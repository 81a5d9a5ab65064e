"""Text from the user (a recipe or profile path, a run dir) written into a batch script stays inert: a newline in it
cannot start a command, `$(...)` cannot run. Both the chained scripts and `--stage` scripts, via the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fakehr_orchestra.script_text import script_text
from tests.conftest import ROOT, VENV_BIN

CLI = os.path.join(VENV_BIN, "fakehr-orchestra")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def hostile_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "r\ntouch PWNED\n$(touch PWNED2)`x`.yaml"
    shutil.copy(ROOT / "recipes" / "fake_hr1.yaml", path)
    return path


@pytest.mark.parametrize("extra", [[], ["--stage", "sft", "--nodes", "1"]])
def test_a_newline_in_the_recipe_path_does_not_become_a_line_of_the_script(hostile_recipe, tmp_path, extra):
    proc = subprocess.run([CLI, "submit", str(hostile_recipe), "-p", "smoke", "--run-dir", str(tmp_path / "run"),
                           *extra, "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "touch PWNED" not in [line.strip() for line in lines]
    assert not any(line.lstrip().startswith(("touch", "$(touch", ".yaml")) for line in lines)
    # where the path is an argument it is one $'...' word (inert, and the value is kept exactly)
    for line in lines:
        if "$(touch PWNED2)" in line:
            assert "$'" in line and "\\x0atouch PWNED\\x0a$(touch PWNED2)`x`.yaml'" in line, line
    assert script_text(str(hostile_recipe)) in proc.stdout  # still readable, escaped
    script = tmp_path / "job.sh"
    script.write_text(proc.stdout)
    # run the script's comment lines' worth: bash -n parses; nothing was created by merely parsing either
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert not (tmp_path / "PWNED").exists()


def test_script_text_keeps_plain_paths_and_escapes_the_rest():
    assert script_text("recipes/fake_hr1.yaml") == "recipes/fake_hr1.yaml"
    assert script_text("a\nb") == "a\\x0ab"
    assert script_text('$(x)`y`"z"\\') == "\\x24(x)\\x60y\\x60\\x22z\\x22\\x5c"
    assert "\n" not in script_text("\r\n\u2028\x00") and "\u2028" not in script_text("\u2028")


def test_a_newline_in_the_profile_name_does_not_become_a_line_of_the_script(tmp_path):
    recipe = tmp_path / "r.yaml"
    shutil.copy(ROOT / "recipes" / "fake_hr1.yaml", recipe)
    (tmp_path / "profiles").mkdir()
    profile = "s\ntouch PWNED\n"
    shutil.copy(ROOT / "recipes" / "profiles" / "smoke.yaml", tmp_path / "profiles" / f"{profile}.yaml")
    proc = subprocess.run([CLI, "submit", str(recipe), "-p", profile, "--run-dir", str(tmp_path / "run"),
                           "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert not any(line.strip() == "touch PWNED" for line in proc.stdout.splitlines())
    assert "--profile $'s\\x0atouch PWNED\\x0a'" in proc.stdout
