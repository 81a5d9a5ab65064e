"""Fuzzing the two readers of user files (issue 19, "What it must show" 2): the recipe loader and the jsonl
reader, fed random bytes, random nesting, random anchors/aliases. Whatever comes in: no traceback, bounded time
and memory, and from the CLI an exit code (2 for a recipe, 1/2 for data) with an `error:` message."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakehr_orchestra.cli import cli
from fakehr_orchestra.jsonl import JsonlError, read_jsonl

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)
SECONDS = 30.0  # per example: far above the ~0.1-3 s a bad input takes, even on a loaded 2-core machine
GROWTH_MB = 600  # an example's peak-memory growth (a billion-laughs expansion would need gigabytes)


def alias_bomb(levels: int, fanout: int) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * fanout)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def nesting(depth: int, kind: str) -> str:
    if kind == "flow":
        return "x: " + "[" * depth + "]" * depth + "\n"
    if kind == "map":
        return "x: " + "{a: " * depth + "1" + "}" * depth + "\n"
    return "".join("  " * i + "k:\n" for i in range(depth)) + "  " * depth + "v\n"


def shared_structure(value: object) -> str:
    """safe_dump writes an anchor for an object used twice and aliases for its other uses."""
    return yaml.safe_dump({"sft": {"env": value, "args": [value, value]}, "other": value})


leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
trees = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids,
                                                                                        max_size=4), max_leaves=30)
yaml_texts = st.one_of(
    st.builds(alias_bomb, st.integers(1, 12), st.integers(1, 12)),
    st.builds(nesting, st.integers(1, 5000), st.sampled_from(["flow", "map"])),
    st.builds(nesting, st.integers(1, 1200), st.just("block")),  # 1200 levels: ~1.4 MB, over the size cap
    trees.map(shared_structure),
    st.text(max_size=300),
)
recipe_bytes = st.one_of(yaml_texts.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=400),
                         st.builds(lambda t, b: t.encode("utf-8", "surrogatepass") + b, yaml_texts, st.binary(max_size=8)))



def _peak_rss() -> int:
    """This process's peak resident set (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_peak_rss() -> int:
    """Reset the peak to the current RSS (Linux: clear_refs 5), so an example's growth is its own, whatever earlier
    tests in this process peaked at; returns the new baseline."""
    Path("/proc/self/clear_refs").write_text("5")
    return _peak_rss()


def _invoke(args: list[str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    took = time.perf_counter() - start
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.exit_code, result.output, took


@FUZZ
@given(recipe_bytes, st.booleans())
def test_recipe_loader(data: bytes, via_extends: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "r.yaml"
        recipe.write_bytes(data)
        if via_extends:
            (Path(tmp) / "child.yaml").write_text("extends: r.yaml\n")
            recipe = Path(tmp) / "child.yaml"
        before = _reset_peak_rss()
        code, output, took = _invoke(["render", str(recipe), "--stage", "sft"])
    assert code == 2 and "error" in output.lower(), output[-500:]
    assert took < SECONDS
    assert (_peak_rss() - before) / 2**20 < GROWTH_MB


json_lines = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                    st.text(max_size=8)),
                          lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                                                    max_size=3), max_leaves=12)
jsonl_bytes = st.one_of(
    st.binary(max_size=600),
    st.lists(json_lines.map(lambda v: __import__("json").dumps(v).encode()), max_size=6).map(b"\n".join),
    st.builds(lambda d: b"\xef\xbb\xbf" + b"[" * d + b"]" * d, st.integers(1, 5000)),
    st.builds(lambda a, b: a + b, st.binary(max_size=100), st.sampled_from([b"", b"\n", b'{"a": "\xff"}', b"{"])),
)


@FUZZ
@given(jsonl_bytes)
def test_jsonl_reader(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.jsonl"
        path.write_bytes(data)
        start = time.perf_counter()
        rows = list(read_jsonl(path, on_error="collect", objects=False))
        assert all(r.line >= 1 and (r.error is None or (r.value is None and r.where in f"{path}:{r.line}"))
                   for r in rows)
        try:
            list(read_jsonl(path))
        except JsonlError as exc:
            assert f"{path}:" in str(exc)
        assert time.perf_counter() - start < SECONDS
        for args, codes in ((["data", "split", str(path), "--test-fraction", "0.5", "--out", f"{tmp}/o.jsonl"],
                             (0, 1)),
                            (["eval", "score", str(path), "--out", f"{tmp}/m.json", "--bootstrap", "0"], (2,)),
                            (["reward", "score", "rewards/fake_hr1.py", str(path)], (0, 1, 2))):
            code, output, took = _invoke(args)
            assert code in codes, (args[:2], code, output[-400:])
            assert code == 0 or "error" in output.lower()
            assert took < SECONDS
