"""Fuzzing the two readers of user files: the recipe loader and the jsonl
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


# --- the fault catalogue's input classes: script text, URL credentials, hostile numbers, duplicate keys -----------

hostile_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["r\ntouch PWNED\n.yaml", "$(id)`id`\"'\\", "a\r\nb\x00c\u2028d", "x\x1b[2Jy", "\udcff"[:0] + "é/ü"])


@FUZZ
@given(hostile_text)
def test_script_text_and_shell_quote(text: str) -> None:
    import subprocess

    from fakehr_orchestra.script_text import script_text, shell_quote

    shown = script_text(text)
    assert shown.isprintable() and not set(shown) & set("$`\"\n\r")
    assert all(part[:1] in ("x", "u", "U") for part in shown.split("\\")[1:])  # a backslash only starts an escape
    word = shell_quote(text)
    assert "\n" not in word and "\r" not in word
    if "\x00" not in text:  # a shell word cannot hold NUL at all
        out = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, timeout=30).stdout
        assert out == text.encode("utf-8", "surrogateescape")


url_parts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters="\"'<>"),
                    min_size=1, max_size=12)


@FUZZ
@given(url_parts, url_parts, st.sampled_from(["http", "https"]))
def test_redact_url_hides_every_credential(user: str, password: str, scheme: str) -> None:
    from fakehr_orchestra.secrets import has_url_credentials, redact_url

    url = f"{scheme}://{user}:{password}@critic.example:8000/v1"
    shown = redact_url(f"calling {url} now")
    assert shown == f"calling {scheme}://***@critic.example:8000/v1 now"
    assert has_url_credentials(url)


hostile_numbers = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(),
                            st.text(max_size=6), st.sampled_from(["Infinity", "NaN", "-0", "1e309"]))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["real", "fake"]), hostile_numbers, hostile_numbers), min_size=1,
                max_size=6))
def test_eval_score_hostile_numbers(rows: list) -> None:
    import json
    import math

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.jsonl"
        lines = [json.dumps({"key": f"k{i}", "label": label, "pred": label, "prob_fake": p, "response_tokens": t})
                 for i, (label, p, t) in enumerate(rows)]
        path.write_text("\n".join(lines) + "\n")
        code, output, _ = _invoke(["eval", "score", str(path), "--out", f"{tmp}/m.json", "--bootstrap", "0"])
        assert code in (0, 2), output[-400:]
        clean = all((p is None or (not isinstance(p, (bool, str)) and math.isfinite(p) and 0 <= p <= 1))
                    and (t is None or (not isinstance(t, (bool, str, float)) and t >= 0)
                         or (isinstance(t, float) and math.isfinite(t) and t >= 0 and t == int(t)))
                    for _, p, t in rows)
        assert (code == 0) == clean, (rows, output[-300:])


@FUZZ
@given(hostile_numbers, st.booleans())
def test_reward_score_hostile_results(value: object, as_dict: bool) -> None:
    import json
    import math

    with tempfile.TemporaryDirectory() as tmp:
        plugin = Path(tmp) / "p.py"
        result = {"score": value} if as_dict else value
        plugin.write_text("import json\ndef compute_score(data_source, solution_str, ground_truth, extra_info=None):\n"
                          f"    return json.loads({json.dumps(result)!r})\n")
        responses = Path(tmp) / "r.jsonl"
        responses.write_text(json.dumps({"response": "x", "ground_truth": "fake"}) + "\n")
        code, output, _ = _invoke(["reward", "score", str(plugin), str(responses), "--out", f"{tmp}/o.jsonl"])
        usable = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        assert code == (0 if usable else 1), (value, output[-300:])
        if Path(f"{tmp}/o.jsonl").exists():
            assert "NaN" not in Path(f"{tmp}/o.jsonl").read_text()


@FUZZ
@given(st.lists(st.sampled_from(["label", "file_path", "split"]), min_size=1, max_size=5))
def test_duplicate_keys_are_a_row_problem(keys: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.jsonl"
        path.write_text("{" + ", ".join(f'"{k}": "{i}"' for i, k in enumerate(keys)) + "}\n")
        rows = list(read_jsonl(path, on_error="collect", unique_keys=True))
        assert (rows[0].error is not None and "appears twice" in rows[0].error) == (len(set(keys)) < len(keys))
