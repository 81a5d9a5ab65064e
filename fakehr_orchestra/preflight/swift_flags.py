"""ms-swift flags against the INSTALLED ms-swift's argument dataclasses, without building them or loading a model.

transformers' HfArgumentParser over `SftArguments` / `RLHFArguments` gives the exact argparse parser `swift sft` /
`swift rlhf` use. `parse_known_args` puts an unknown flag in the leftovers (swift then stops with
`ValueError: remaining_argv`) and raises on a bad type or choice. Each flag is also parsed on its own so that every
bad value is reported, not only the first one argparse meets.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import importlib.util
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..engines.versions import legacy_replacement, parse_version
from .context import Context

COMMANDS = {"sft": "SftArguments", "rlhf": "RLHFArguments", "deploy": "DeployArguments"}  # deploy: the critic
CACHE_ENV = "FAKEHR_SWIFT_SCHEMA_CACHE"  # a directory, or 0 to always build the parser from ms-swift itself
SCHEMA_FORMAT = 1


class FlagError(Exception):
    pass


@lru_cache(maxsize=4)
def parser_for(command: str, version: str) -> Any:
    """The argparse parser of `swift <command>` for the installed ms-swift (4.x: swift.arguments; 3.x: swift.llm)."""
    from transformers import HfArgumentParser

    name = COMMANDS[command]
    if parse_version(version) >= (4,):
        import swift.arguments as mod
    else:
        import swift.llm as mod  # ms-swift 3.x kept the dataclasses in swift/llm/argument
    parser = HfArgumentParser([getattr(mod, name)])

    def error(message: str) -> None:
        raise FlagError(message)
    parser.error = error  # type: ignore[method-assign]  # argparse would print usage and exit
    return parser


# ------------------------------------------------------------------------------------------ schema cache
# Importing ms-swift's argument dataclasses takes seconds (they import transformers, torch and ms-swift's model
# registry). The flag table of the INSTALLED ms-swift is therefore extracted from its real parser once and cached,
# keyed by the ms-swift and transformers versions and the size/mtime of every file under swift/arguments/: any
# upgrade or edit rebuilds it. Flags whose argparse type is not a plain one (dict, Path, ...) use the live parser.

def _cache_dir() -> Path | None:
    setting = os.environ.get(CACHE_ENV, "")
    if setting == "0":
        return None
    return Path(setting or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "fakehr-orchestra")).expanduser()


def fingerprint(version: str) -> str | None:
    spec = importlib.util.find_spec("swift")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    digest = hashlib.sha256(f"{SCHEMA_FORMAT}|{version}|{metadata.version('transformers')}".encode())
    for path in sorted(root.glob("arguments/**/*.py")) + sorted(root.glob("llm/argument/**/*.py")):
        st = path.stat()
        digest.update(f"{path.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _type_name(action: argparse.Action) -> str:
    t = action.type
    if t is None:
        return "none"
    name = getattr(t, "__qualname__", "")
    if name in ("int", "float", "str", "string_to_bool"):
        return name
    if "make_choice_type_function" in name:
        return "choice"
    return "other:" + (name or repr(t))


def extract_table(parser: Any) -> list[dict[str, Any]]:
    """The parser's flags as data: option strings, nargs, choices, type, const, kind of action."""
    table, seen = [], set()
    for action in parser._actions:  # noqa: SLF001
        if id(action) in seen or not action.option_strings or isinstance(action, argparse._HelpAction):  # noqa: SLF001
            continue
        seen.add(id(action))
        table.append({"options": list(action.option_strings), "dest": action.dest, "nargs": action.nargs,
                      "choices": list(action.choices) if action.choices is not None else None,
                      "type": _type_name(action),
                      "const": action.const if isinstance(action.const, (bool, int, float, str, type(None))) else None,
                      "action": type(action).__name__})
    return table


def _string_to_bool(v: str) -> bool:
    """transformers.hf_argparser.string_to_bool, same words and message."""
    if v.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if v.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"Truthy value expected: got {v} but expected one of yes/no, true/false, "
                                     "t/f, y/n, 1/0 (case insensitive).")


def table_parser(table: list[dict[str, Any]]) -> argparse.ArgumentParser:
    """An argparse parser equivalent to ms-swift's for every flag of the table (types as transformers maps them)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for row in table:
        kind = row["action"]
        if kind in ("_StoreTrueAction", "_StoreFalseAction", "_StoreConstAction"):
            parser.add_argument(*row["options"], dest=row["dest"], action="store_const", const=row["const"])
            continue
        types = {"int": int, "float": float, "str": str, "string_to_bool": _string_to_bool}
        if row["type"] == "choice":
            table_of = {str(c): c for c in row["choices"]}
            conv: Any = lambda arg, t=table_of: t.get(arg, arg)  # noqa: E731 - transformers' make_choice_type_function
        else:
            conv = types.get(row["type"])
        kw: dict[str, Any] = {"dest": row["dest"], "nargs": row["nargs"], "choices": row["choices"]}
        if conv is not None:
            kw["type"] = conv
        if row["nargs"] == "?":
            kw["const"] = row["const"]
        parser.add_argument(*row["options"], **kw)

    def error(message: str) -> None:
        raise FlagError(message)
    parser.error = error  # type: ignore[method-assign]
    return parser


@lru_cache(maxsize=4)
def cached(command: str, version: str) -> tuple[argparse.ArgumentParser, frozenset[str]] | None:
    """(parser from the cached table, flags that need the live parser) or None when there is no cache yet."""
    import json
    folder, fp = _cache_dir(), fingerprint(version)
    if folder is None or fp is None:
        return None
    path = folder / f"swift-{command}-{fp}.json"
    if not path.exists():
        return None
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    live = frozenset(o for row in table if row["type"].startswith("other:") for o in row["options"])
    return table_parser(table), live


def build_cache(command: str, version: str) -> None:
    """Extract the table from ms-swift's real parser and store it (atomically) for the next runs."""
    from ..io import write_json_atomic
    folder, fp = _cache_dir(), fingerprint(version)
    if folder is None or fp is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / f"swift-{command}-{fp}.json", extract_table(parser_for(command, version)))
    cached.cache_clear()


def groups(argv: list[str]) -> list[tuple[str, list[str]]]:
    """['--a', '1', '--b', 'x', 'y'] -> [('--a', ['1']), ('--b', ['x', 'y'])]."""
    out: list[tuple[str, list[str]]] = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            out.append((token, []))
        elif out:
            out[-1][1].append(token)
    return out


def analyse(command: str, version: str, argv: list[str]) -> list[dict[str, Any]]:
    """One record per flag: 'ok', 'unknown' (with a did-you-mean), 'bad' (argparse's message) or 'rest'.

    Pure data (JSON-able) so it can run in a subprocess next to the verl checks (see `analyse_async`).
    """
    pairs = groups([PLAN_STANDIN(a) for a in argv])
    fast = cached(command, version)
    if fast is not None and not any(flag in fast[1] for flag, _ in pairs):
        parser = fast[0]
    else:
        parser = parser_for(command, version)
        if fast is None:
            build_cache(command, version)
    options = parser._option_string_actions  # noqa: SLF001 - argparse's own table of flags
    names = sorted({o[2:] for o in options if o.startswith("--") and "-" not in o[2:]})
    out: list[dict[str, Any]] = []
    for flag, values in pairs:
        rec: dict[str, Any] = {"flag": flag, "values": values, "status": "ok"}
        out.append(rec)
        if flag not in options:
            guess = difflib.get_close_matches(flag[2:], names, n=1, cutoff=0.6)
            rec.update(status="unknown", guess=guess[0] if guess else None)
            continue
        action = options[flag]
        try:
            _, rest = parser.parse_known_args([flag, *values])
        except FlagError as exc:
            rec.update(status="bad", message=str(exc), hint=_choices_hint(action))
            continue
        if rest:
            rec.update(status="rest", rest=rest, arity=_arity(action))
    return out


def analyse_async(requests: list[tuple[str, str, list[str]]]) -> Any:
    """Start `analyse` for several plans in a child process (importing ms-swift takes seconds: overlap it with
    the verl checks). Returns a callable that waits and gives the list of results."""
    import json
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(requests))
    proc.stdin.close()

    def wait() -> list[list[dict[str, Any]]]:
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise RuntimeError(f"ms-swift flag check failed in a child process: {err.strip()[-2000:]}")
        return json.loads(out.strip().splitlines()[-1])
    return wait


def check_swift_plan(ctx: Context, plan: Any, records: list[dict[str, Any]] | None = None) -> None:
    """Every flag of a `swift sft|rlhf` plan exists in the installed ms-swift and its value parses."""
    command = plan.entrypoint.split()[-1]
    stage = plan.stage
    version = ctx.report.versions.get("swift")
    if version is None:
        ctx.error("swift", f"{stage}", "ms-swift is not installed, so its flags cannot be checked",
                  "pip install ms-swift (the train extra)", stage)
        return
    section = "sft" if stage == "sft" else "grpo"
    for name, value in dict(getattr(ctx.model, section).env or {}).items():
        entry = legacy_replacement("swift", "env", name, version) if value is not None else None
        if entry is None:
            continue
        if entry.new is None:
            shown = "render leaves it out" if name not in plan.env else "it is in the plan (--no-translate)"
            ctx.warning("swift", f"{section}.env.{name}", f"${name} has no effect on ms-swift {version}: "
                        f"{entry.why}; {shown}", f"remove {section}.env.{name}", stage)
        elif name in plan.env:
            ctx.warning("swift", f"{section}.env.{name}", f"ms-swift {version} never reads ${name}: {entry.why}; "
                        "the default applies instead", f"set {entry.new} (render without --no-translate does this)",
                        stage)
    from ..numbers import option_problems

    for flag, problem in option_problems([(f, v[0]) for f, v in groups(plan.options) if len(v) == 1]):
        ctx.error("swift", plan.origin(flag, f"{section}.args.{flag[2:]}"), f"{flag}: {problem}", None, stage)
    if records is None:
        records = analyse(command, version, plan.options)
    stop = f"swift {command} would stop with ValueError: remaining_argv"
    for rec in records:
        name = rec["flag"][2:]
        key = plan.origin(rec["flag"], f"{section}.args.{name}")
        if rec["status"] == "unknown":
            entry = legacy_replacement("swift", "flag", name, version)
            if entry is not None:
                ctx.error("swift", key, f"--{name} is not a flag of ms-swift {version}: {entry.why} "
                          f"({stop}: ['--{name}', ...])",
                          f"write {entry.new} (render without --no-translate does this)", stage)
            else:
                ctx.error("swift", key, f"--{name} is not a flag of ms-swift {version} ({stop}: ['--{name}', ...])",
                          f"did you mean '{rec['guess']}'?" if rec.get("guess") else
                          f"see `swift {command} --help`", stage)
        elif rec["status"] == "bad":
            ctx.error("swift", key, f"ms-swift {version} rejects --{name} {' '.join(rec['values'])}: "
                      f"{rec['message']}", rec.get("hint"), stage)
        elif rec["status"] == "rest":
            ctx.error("swift", key, f"--{name} takes {rec['arity']}; {rec['rest']} would be left over ({stop})",
                      None, stage)


def PLAN_STANDIN(arg: str) -> str:  # noqa: N802 - reads like a constant transform
    """Launch-time refs (${NAME}) are not values argparse can judge; an int-typed flag gets a stand-in."""
    return "1" if arg.startswith("${") and arg.endswith("}") else arg


def _choices_hint(action: Any) -> str | None:
    if action.choices:
        return "one of " + ", ".join(str(c) for c in action.choices if c is not None)
    return None


def _arity(action: Any) -> str:
    return {None: "one value", "?": "at most one value"}.get(action.nargs, f"{action.nargs} value(s)")


if __name__ == "__main__":  # the child process of analyse_async: JSON requests on stdin, JSON results last line
    import json
    import sys
    import warnings
    warnings.filterwarnings("ignore")
    results = [analyse(c, v, a) for c, v, a in json.loads(sys.stdin.read())]
    sys.stdout.write("\n" + json.dumps(results) + "\n")
