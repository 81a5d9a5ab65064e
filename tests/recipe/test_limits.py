"""Bounded recipe reading: alias bombs, deep nesting, devices, huge and non-UTF-8 files
are a RecipeError naming the file (exit 2 from the CLI), never MemoryError / RecursionError / a traceback."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.recipe import RecipeError, load_recipe, yaml_source
from tests.conftest import RECIPES


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(billion_laughs())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RecipeError, match="aliases"):
        load_recipe(str(f))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, grown_mb


def test_extending_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    f = tmp_path / "child.yaml"
    f.write_text("extends: bomb.yaml\n")
    with pytest.raises(RecipeError, match=r"bomb\.yaml.*aliases"):
        load_recipe(str(f))


def test_deep_nesting_is_a_message_not_recursion_error(tmp_path: Path) -> None:
    f = tmp_path / "deep.yaml"
    f.write_text("x: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(RecipeError, match="nested too deeply"):
        load_recipe(str(f))
    g = tmp_path / "deep2.yaml"  # deep enough for our limit, shallow enough for PyYAML's recursion
    g.write_text("x: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(RecipeError, match="levels deep"):
        load_recipe(str(g))


def test_extends_dev_zero_and_huge_files_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "z.yaml"
    f.write_text("extends: /dev/zero\n")
    with pytest.raises(RecipeError, match="not a regular file"):
        load_recipe(str(f))
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(yaml_source.MAX_BYTES + 1)
    with pytest.raises(RecipeError, match="larger than a recipe"):
        load_recipe(str(big))


def test_non_utf8_recipe_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "latin1.yaml"
    f.write_bytes(b"# ok\nname: caf\xe9\n")
    with pytest.raises(RecipeError, match=r"latin1\.yaml:2.*not UTF-8"):
        load_recipe(str(f))


@pytest.mark.parametrize("text", [billion_laughs(), "x: " + "[" * 5000 + "]" * 5000, "extends: /dev/zero\n"])
def test_cli_exits_2_with_a_message(tmp_path: Path, text: str) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(text)
    result = CliRunner().invoke(cli, ["render", str(f), "--stage", "sft"])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, (MemoryError, RecursionError))


def test_override_value_with_aliases_is_bounded() -> None:
    with pytest.raises(RecipeError, match="aliases"):
        load_recipe(str(RECIPES / "fake_hr1.yaml"), ["+sft.env.X=" + billion_laughs().replace("\n", ", ")
                                                     .join(["{", "}"])])
