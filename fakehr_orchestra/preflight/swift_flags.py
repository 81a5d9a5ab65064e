"""ms-swift flags against the INSTALLED ms-swift's argument dataclasses, without building them or loading a model.

transformers' HfArgumentParser over `SftArguments` / `RLHFArguments` gives the exact argparse parser `swift sft` /
`swift rlhf` use. `parse_known_args` puts an unknown flag in the leftovers (swift then stops with
`ValueError: remaining_argv`) and raises on a bad type or choice. Each flag is also parsed on its own so that every
bad value is reported, not only the first one argparse meets.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Any

from ..engines.versions import legacy_replacement, parse_version
from .context import Context

COMMANDS = {"sft": "SftArguments", "rlhf": "RLHFArguments"}


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


def groups(argv: list[str]) -> list[tuple[str, list[str]]]:
    """['--a', '1', '--b', 'x', 'y'] -> [('--a', ['1']), ('--b', ['x', 'y'])]."""
    out: list[tuple[str, list[str]]] = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            out.append((token, []))
        elif out:
            out[-1][1].append(token)
    return out


def keymap(ctx: Context, command: str) -> dict[str, str]:
    """Flag name as rendered -> recipe key (both ms-swift 3.x and 4.x spellings of a renamed flag)."""
    from .verl_config import TRANSLATIONS
    m = ctx.model
    if command == "sft":
        out = {"model": "sft.model", "dataset": "sft.dataset", "output_dir": "sft.output_dir"}
        args, section = m.sft.args, "sft.args"
    else:
        out = {"model": "grpo.model", "dataset": "grpo.train_files", "output_dir": "grpo.output_dir",
               "rlhf_type": "grpo.engine", "external_plugins": "grpo.engine", "reward_funcs": "grpo.reward.swift_orm"}
        args, section = m.grpo.swift_args, "grpo.swift_args"
    for name in args:
        out[name] = f"{section}.{name}"
        for e in TRANSLATIONS:
            if e.framework == "swift" and e.kind == "flag" and name in (e.old, e.new):
                out[e.new if name == e.old else e.old] = f"{section}.{name}"
    return out


def analyse(command: str, version: str, argv: list[str]) -> list[dict[str, Any]]:
    """One record per flag: 'ok', 'unknown' (with a did-you-mean), 'bad' (argparse's message) or 'rest'.

    Pure data (JSON-able) so it can run in a subprocess next to the verl checks (see `analyse_async`).
    """
    parser = parser_for(command, version)
    options = parser._option_string_actions  # noqa: SLF001 - argparse's own table of flags
    names = sorted({o[2:] for o in options if o.startswith("--") and "-" not in o[2:]})
    out: list[dict[str, Any]] = []
    for flag, values in groups([PLAN_STANDIN(a) for a in argv]):
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
    command = plan.argv[1]
    stage = plan.stage
    version = ctx.report.versions.get("swift")
    if version is None:
        ctx.error("swift", f"{stage}", "ms-swift is not installed, so its flags cannot be checked",
                  "pip install ms-swift (the train extra)", stage)
        return
    if records is None:
        records = analyse(command, version, plan.argv[2:])
    keys = keymap(ctx, command)
    stop = f"swift {command} would stop with ValueError: remaining_argv"
    for rec in records:
        name = rec["flag"][2:]
        key = keys.get(name, f"{stage}.args.{name}")
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
