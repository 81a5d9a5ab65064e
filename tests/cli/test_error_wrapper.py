"""Every verb behind the same error wrapper: known errors are a message and an exit code
(validation / data 1, unusable input 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fakehr_orchestra.cli import cli


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert isinstance(result.exception, SystemExit), result.exception  # a traceback would be the exception
    assert "Traceback" not in result.output
    return result


def test_data_split_and_validate_data_error_is_exit_1(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'{"id": 0}\nnot json\n')
    for verb in (["data", "split", str(manifest), "--test-fraction", "0.5", "--out", str(tmp_path / "o.jsonl")],
                 ["data", "validate", str(manifest), "--out", str(tmp_path / "o.jsonl"),
                  "--report", str(tmp_path / "r.json")]):
        result = run(*verb)
        assert result.exit_code == 1 and f"error: {manifest}:1: not a manifest record" in result.output


def test_non_utf8_manifest_is_a_message(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'{"id": "\xff"}\n')
    result = run("data", "split", str(manifest), "--test-fraction", "0.5", "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 1 and "not UTF-8" in result.output


def test_non_utf8_recipe_is_exit_2(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(b"name: \xff\n")
    for verb in (["render", str(recipe), "--stage", "sft"], ["validate", str(recipe)],
                 ["data", "prepare", str(recipe)], ["estimate", str(recipe)]):
        result = run(*verb)
        assert result.exit_code == 2 and "not UTF-8" in result.output, (verb, result.output)


def test_unknown_errors_keep_their_traceback() -> None:
    from fakehr_orchestra.cli.errors import known_exit

    assert known_exit(KeyError("bug")) is None
    assert known_exit(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"))[0] == 2


def test_every_known_error_names_a_real_exception_class() -> None:
    """KNOWN matches classes by module and name (so the wrapper imports nothing): a rename or a move must fail here,
    not silently turn a user's message into a traceback."""
    import importlib

    from fakehr_orchestra.cli.errors import KNOWN

    for module_name, class_name, code in KNOWN:
        cls = getattr(importlib.import_module(module_name), class_name, None)
        assert isinstance(cls, type) and issubclass(cls, Exception), (module_name, class_name)
        assert code in (1, 2)


def test_every_mapped_error_class_exists_where_the_table_names_it() -> None:
    """The wrapper names its classes by module and name, so that it imports nothing; a class renamed or moved must
    fail here, not turn its message into a traceback."""
    import importlib

    from fakehr_orchestra.cli.errors import KNOWN

    for module_name, class_name, code in KNOWN:
        cls = getattr(importlib.import_module(module_name), class_name, None)
        assert isinstance(cls, type) and issubclass(cls, Exception), (module_name, class_name)
        assert code in (1, 2)
