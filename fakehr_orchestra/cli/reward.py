"""`fakehr-orchestra reward score PLUGIN[:FUNC] RESPONSES.jsonl`: score saved responses with a reward plugin and
summarise every component, for reward debugging before an RL run (the plugin is called exactly as verl calls it).

Input records: {"response": str, "ground_truth": ..., "data_source": str?, "extra_info": {...}?}. Output: a
per-component summary (mean, min, max, distribution), the think / no-think mix and parse failures; with --out,
one JSON line per record with every component (written atomically).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from ..numbers import Rule, click_number
from .common import fail


def parse_kwargs(items: tuple[str, ...]) -> dict[str, Any]:
    """k=v pairs; v is read as JSON when it parses (numbers, true/false, null, lists), else kept as text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--kwargs")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def load_plugin(spec: str) -> tuple[Callable[..., Any], str]:
    """PLUGIN[:FUNC]: a plugin file, or a bare name: rewards/<name>.py under the cwd, else the shipped one. A plugin
    that cannot be imported (syntax error, missing import, an exception, or sys.exit at import) is a message naming
    it."""
    fn, file, _ = load_plugin_module(spec)
    return fn, file


def load_plugin_module(spec: str) -> tuple[Callable[..., Any], str, Any]:
    path, _, func = spec.partition(":")
    func = func or "compute_score"
    file = Path(path)
    if not file.is_file() and "/" not in path and not path.endswith(".py"):
        file = Path("rewards") / f"{path}.py"
        if not file.is_file():
            from ..resources import shipped_dir
            file = shipped_dir("rewards") / f"{path}.py"
    if not file.is_file():
        fail(f"error: reward plugin {path!r} not found (give a file such as rewards/fake_hr1.py, or a name found "
             f"as rewards/<name>.py under {Path.cwd()})")
    from ..plugins import PluginLoadError, load_plugin_file

    try:
        module = load_plugin_file(file)
    except PluginLoadError as err:
        exc = err.__cause__
        if isinstance(exc, SyntaxError):
            fail(f"error: reward plugin {file} has a syntax error at line {exc.lineno}: {exc.msg}")
        if isinstance(exc, ImportError):
            fail(f"error: reward plugin {file} cannot be imported: {type(exc).__name__}: {exc} (is the package it "
                 f"needs installed in this environment?)")
        if isinstance(exc, SystemExit):
            fail(f"error: reward plugin {file} called sys.exit({exc.code!r}) while being imported; a plugin must "
                 f"only define functions at import")
        if exc is not None:
            fail(f"error: reward plugin {file} failed while being imported: {type(exc).__name__}: {exc}")
        fail(f"error: {err}")
    fn = getattr(module, func, None)
    if not callable(fn):
        fail(f"error: {file} has no function {func!r}")
    return fn, str(file), module


def read_records(path: str) -> list[dict[str, Any]]:
    from ..jsonl import JsonlError, read_jsonl

    records, problems = [], []
    try:
        for line in read_jsonl(path, on_error="collect", unique_keys=True):
            record = line.value
            if line.error is not None:
                problems.append(f"{line.where}: {line.error}")
            elif "response" not in record or "ground_truth" not in record:
                problems.append(f"{line.where}: needs an object with 'response' and 'ground_truth'")
            else:
                record["_line"] = line.line
                records.append(record)
    except JsonlError as exc:
        fail(f"error: {exc}")
    if problems:
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        fail("error: bad records (nothing scored):\n  " + "\n  ".join(problems[:10]) + more)
    return records


class PluginTimeout(BaseException):
    """A plugin call ran past its time limit (raised in the main thread by SIGALRM; BaseException so that a
    plugin's own `except Exception` does not swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise PluginTimeout in the main thread after `seconds`: a plugin stuck in a loop cannot be cancelled
    otherwise (no thread can be, and a blocking coroutine never yields to asyncio's timeouts)."""
    import signal
    import threading

    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise PluginTimeout(f"{what} ran past its time limit of {seconds:g} s (--timeout)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def checked_result(value: Any) -> dict[str, Any]:
    """The plugin's result as verl takes it: a number, or a dict whose 'score' is one; a finite real number (not a
    bool, not text, not None: verl would fail on it or train on a wrong reward). ValueError says what is wrong."""
    from ..numbers import as_number

    result = value if isinstance(value, dict) else {"score": value}
    if "score" not in result:
        raise ValueError(f"the plugin returned a dict without 'score' ({', '.join(map(str, result)) or 'empty'}): "
                         "verl reads the reward from 'score'")
    number = as_number(result["score"])
    if number is None:
        raise ValueError(f"the plugin's score {result['score']!r} is a {type(result['score']).__name__}, not a "
                         "number: verl needs a float")
    if not math.isfinite(number):
        raise ValueError(f"the plugin's score is {number} (not finite): it would poison the advantages")
    return {**result, "score": number}


def json_safe(value: Any) -> Any:
    """The value with non-finite floats as null: strict JSON (a bare NaN is not JSON, and jq / pandas reject it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def score_all(fn: Callable[..., Any], records: list[dict[str, Any]], kwargs: dict[str, Any],
              concurrency: int = 256, timeout_s: float | None = None,
              close: Callable[[], Any] | None = None) -> list[dict[str, Any] | str]:
    """One result per record: the plugin's dict (a float becomes {'score': x}) or an error message. A call that
    runs past `timeout_s` is an error for its record; with an async plugin, the whole run also stops after
    `timeout_s` times the number of rounds of `concurrency` calls (a coroutine that blocks never times out alone)."""
    import asyncio
    import inspect

    if not inspect.iscoroutinefunction(fn):
        return _score_sync(fn, records, kwargs, timeout_s)
    rounds = -(-len(records) // concurrency) + 1
    try:
        with time_limit(timeout_s * rounds if timeout_s else None, "the plugin's calls"):
            return asyncio.run(_score_async(fn, records, kwargs, concurrency, timeout_s, close))
    except PluginTimeout as exc:
        return [f"line {r['_line']}: {exc} (a coroutine that blocks the event loop)" for r in records]


def _call(record: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments verl calls a reward function with, for one record."""
    return dict(data_source=record.get("data_source", "cli"), solution_str=record["response"],
                ground_truth=record["ground_truth"], extra_info=record.get("extra_info") or {}, **kwargs)


def _failed(record: dict[str, Any], exc: BaseException) -> str:
    if isinstance(exc, (ValueError, TypeError)):
        return f"line {record['_line']}: {exc}"
    return f"line {record['_line']}: the plugin raised {type(exc).__name__}: {exc}"


def _score_sync(fn: Callable[..., Any], records: list[dict[str, Any]], kwargs: dict[str, Any],
                timeout_s: float | None) -> list[dict[str, Any] | str]:
    results: list[dict[str, Any] | str] = []
    for record in records:
        try:
            with time_limit(timeout_s, f"the plugin's call for line {record['_line']}"):
                results.append(checked_result(fn(**_call(record, kwargs))))
        except (Exception, SystemExit, PluginTimeout) as exc:  # noqa: BLE001 - a failure is a finding per record
            results.append(_failed(record, exc))
    return results


async def _score_async(fn: Callable[..., Any], records: list[dict[str, Any]], kwargs: dict[str, Any],
                       concurrency: int, timeout_s: float | None,
                       close: Callable[[], Any] | None) -> list[dict[str, Any] | str]:
    import asyncio
    import inspect

    gate = asyncio.Semaphore(concurrency)

    async def one(record: dict[str, Any]) -> dict[str, Any] | str:
        async with gate:
            try:
                return checked_result(await asyncio.wait_for(fn(**_call(record, kwargs)), timeout_s))
            except asyncio.TimeoutError:
                return f"line {record['_line']}: the plugin ran past its time limit of {timeout_s:g} s (--timeout)"
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's failure is a finding
                return _failed(record, exc)

    try:
        return list(await asyncio.gather(*(one(r) for r in records)))
    finally:  # the plugin's HTTP sessions end with this loop (else: "Unclosed client session" at exit)
        if close is not None and inspect.iscoroutinefunction(close):
            with contextlib.suppress(Exception):
                await close()


def distribution(values: list[float]) -> str:
    counts = Counter(values)
    if len(counts) <= 6:
        return "  ".join(f"{k:g}:{v}" for k, v in sorted(counts.items()))
    low, high = min(values), max(values)
    width = (high - low) / 5 or 1.0
    bins = Counter(min(4, int((v - low) / width)) for v in values)
    return "  ".join(f"[{low + i * width:.3g},{low + (i + 1) * width:.3g}{']' if i == 4 else ')'}:{bins.get(i, 0)}"
                     for i in range(5))


def summarise(results: list[dict[str, Any] | str]) -> dict[str, Any]:
    scored = [r for r in results if isinstance(r, dict)]
    keys: list[str] = []
    for r in scored:
        keys += [k for k in r if k not in keys and isinstance(r[k], (int, float))]
    components = {}
    for key in keys:
        values = [float(r[key]) for r in scored if isinstance(r.get(key), (int, float))]
        finite = [v for v in values if math.isfinite(v)]
        components[key] = {"mean": sum(finite) / len(finite) if finite else float("nan"), "min": min(finite, default=0),
                           "max": max(finite, default=0), "non_finite": len(values) - len(finite),
                           "distribution": distribution(finite) if finite else ""}
    summary: dict[str, Any] = {"records": len(results), "scored": len(scored),
                               "errors": [r for r in results if isinstance(r, str)], "components": components}
    if scored and "think" in keys and "no_think" in keys:
        think = sum(r.get("think", 0) for r in scored)
        no_think = sum(r.get("no_think", 0) for r in scored)
        summary["mode_mix"] = {"think": think / len(scored), "no_think": no_think / len(scored),
                               "neither": (len(scored) - think - no_think) / len(scored)}
    if scored and "parse_failure" in keys:
        summary["parse_failures"] = int(sum(r.get("parse_failure", 0) for r in scored))
    return summary


def print_summary(summary: dict[str, Any], plugin: str) -> None:
    click.echo(f"{plugin}: {summary['scored']}/{summary['records']} records scored")
    width = max((len(k) for k in summary["components"]), default=5)
    for key, c in summary["components"].items():
        bad = f"  NON-FINITE: {c['non_finite']}" if c["non_finite"] else ""
        click.echo(f"  {key:<{width}}  mean {c['mean']:.4f}  min {c['min']:.4g}  max {c['max']:.4g}"
                   f"  | {c['distribution']}{bad}")
    if "mode_mix" in summary:
        m = summary["mode_mix"]
        click.echo(f"  mode mix: think {m['think']:.1%}  no-think {m['no_think']:.1%}  neither {m['neither']:.1%}")
    if "parse_failures" in summary:
        click.echo(f"  parse failures: {summary['parse_failures']}")
    for error in summary["errors"][:5]:
        click.echo(f"  error: {error}", err=True)
    if len(summary["errors"]) > 5:
        click.echo(f"  ... {len(summary['errors']) - 5} more errors", err=True)


@click.group()
def reward() -> None:
    """Score responses with a reward plugin (reward debugging)."""


@reward.command("score")
@click.argument("plugin")
@click.argument("responses", type=click.Path(exists=True, dir_okay=False))
@click.option("--kwargs", "kwargs_", multiple=True, metavar="K=V",
              help="Reward kwargs as verl passes them (repeatable), e.g. --kwargs w_format=0.5")
@click.option("--out", type=click.Path(dir_okay=False), help="Write one JSON line per record with every component.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--timeout", "timeout_s", type=click_number(Rule(low=0, low_open=True, high=86400 * 365)),
              default=120.0, show_default=True,
              help="Seconds one plugin call may take; a longer call is an error for its record.")
def score(plugin: str, responses: str, kwargs_: tuple[str, ...], out: str | None, as_json: bool,
          timeout_s: float) -> None:
    """Score RESPONSES.jsonl with PLUGIN[:FUNC] (default function compute_score)."""
    from ..outputs import OutputPathError, refuse_input_as_output

    kwargs = parse_kwargs(kwargs_)
    try:  # a plugin's print() must not land in --json output; an import that never ends is ended
        with contextlib.redirect_stdout(sys.stderr), time_limit(timeout_s, f"importing {plugin}"):
            fn, plugin_file, module = load_plugin_module(plugin)
    except PluginTimeout as exc:
        fail(f"error: {exc}")
    try:
        refuse_input_as_output({"--out": out} if out else {}, {"RESPONSES": responses, "PLUGIN": plugin_file})
    except OutputPathError as exc:
        fail(f"error: {exc}")
    records = read_records(responses)
    with contextlib.redirect_stdout(sys.stderr):
        results = score_all(fn, records, kwargs, timeout_s=timeout_s, close=getattr(module, "aclose", None))
    errors = [r for r in results if isinstance(r, str)]
    if records and len(errors) == len(records) and len({e.split(": ", 1)[1] for e in errors}) == 1:
        # the same error for every record (a bad kwarg, a plugin bug): one message, not N
        fail(f"error: {plugin_file}: every record failed: {errors[0].split(': ', 1)[1]}", code=1)
    if out:
        _write_rows(out, records, results)
    summary = summarise(results)
    critics = critic_summary(module)
    if critics:
        summary["critic"] = critics
    if as_json:
        click.echo(json.dumps(json_safe(summary), indent=2, allow_nan=False, default=str))
    else:
        print_summary(summary, plugin_file)
        for c in critics:
            click.echo(f"  critic {c['url']}: {c['summary']}")
    dead = _dead_critics(critics)
    if summary["errors"] or dead:
        sys.exit(1)


def _write_rows(out: str, records: list[dict[str, Any]], results: list[dict[str, Any] | str]) -> None:
    """--out: one JSON line per record, every component or the record's error."""
    from ..io import atomic_open

    with atomic_open(out) as handle:
        for record, result in zip(records, results):
            row = {"line": record["_line"], **(result if isinstance(result, dict) else {"error": result})}
            handle.write(json.dumps(json_safe(row), allow_nan=False, default=str) + "\n")


def _dead_critics(critics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The critics no call reached, each said as an error: the consistency score was the fallback throughout."""
    dead = [c for c in critics if c["all_failed"]]
    for c in dead:
        click.echo(f"error: every call to the critic at {c['url']} failed ({c['errors'] or 'no reply'}); the "
                   f"consistency component is the fallback score for every record. "
                   + ("HTTP 401/403: check the key variable named by critic_api_key_env. " if any(
                       k in c["errors"] for k in ("http_401", "http_403")) else "")
                   + "Check that the critic is up and critic_base_url / critic_model are right.", err=True)
    return dead


def critic_summary(module: Any) -> list[dict[str, Any]]:
    """The critic calls a plugin made (plugins with a `critic_stats()`), with HTTP status codes by kind."""
    stats_of = getattr(module, "critic_stats", None)
    if not callable(stats_of):
        return []
    out = []
    for url, stats in stats_of():
        if not stats.calls:
            continue
        out.append({"url": url, "calls": stats.calls, "answered": stats.answered, "fallbacks": stats.fallbacks,
                    "errors": dict(stats.errors), "summary": stats.summary(),
                    "all_failed": stats.answered == 0 and stats.cache_hits == 0})
    return out
