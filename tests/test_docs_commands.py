"""Every cheap command in README.md and docs/*.md runs as written.

The commands are read from the fenced code blocks (backslash continuations joined, the trailing `# comment`
dropped) and run from the repository root with the venv's bin first on PATH. A command is cheap when its verb is
`render`, `validate`, `recipes` or `estimate` (pure rendering or arithmetic, no training), or when it carries
`--dry-run`. `validate` gets `--fast` added (it skips importing verl for its own `validate_config`; every other check
still runs). A command exits 0 unless its comment documents another status as `exit N` (e.g. `validate` of the seed
recipe exits 1 where its data is not on the machine; `estimate` exits 1 when a stage does not fit).

Skipped, and why:
- `make ...`, `python benchmarks/...`: they set up environments, train, or need a GPU (`make demo` and `make test`
  are what CI runs anyway);
- `run` / `submit` without `--dry-run`: they train or submit Slurm jobs;
- `fixtures tiny`: builds a model (seconds to minutes), done by the integration tests' own fixtures;
- `status RUN_DIR`, `eval ...`, `data ...`, `reward ...`: they read a run dir, model or data set the docs assume
  from an earlier step;
- lines with placeholders (`RECIPE`, `[-p PROFILE]`, ...): usage synopses, not commands.
A command that writes a file into the checkout (`recipes cp fake_hr1 my_recipe.yaml`) runs only when that file is
absent, and the file is removed afterwards.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, framework_env

pytestmark = pytest.mark.integration

CHEAP_VERBS = {"render", "validate", "recipes", "estimate"}
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{2,}\b|\[|\.\.\.")
DOCUMENTED_EXIT = re.compile(r"\bexit (\d+)\b")


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    argv: tuple[str, ...]
    expected: int


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """The lines inside fenced code blocks, continuations joined, as (first line number, text)."""
    lines: list[tuple[int, str]] = []
    inside = False
    pending: tuple[int, str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        if pending is not None:
            pending = (pending[0], pending[1] + " " + line.strip())
        else:
            pending = (number, line.strip())
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1].rstrip())
            continue
        lines.append(pending)
        pending = None
    return lines


def _split(text: str) -> tuple[list[str], str]:
    """argv and the trailing comment of one shell line (the comment is prose: apostrophes must not reach shlex)."""
    parts = re.split(r"(?:^|\s)#(?:\s|$)", text, maxsplit=1)
    command, comment = parts[0], parts[1] if len(parts) > 1 else ""
    return shlex.split(command), comment


def doc_commands() -> tuple[list[DocCommand], list[str], list[str]]:
    """The cheap `fakehr-orchestra` commands of README.md and docs/*.md, the ones skipped, the ones shlex refuses."""
    cheap: list[DocCommand] = []
    skipped: list[str] = []
    unparsable: list[str] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, text in _code_lines(path):
            where = f"{path.relative_to(ROOT)}:{number}"
            if not text.startswith("fakehr-orchestra "):
                continue
            try:
                argv, comment = _split(text)
            except ValueError as exc:  # unbalanced quotes: the line cannot run as written
                unparsable.append(f"{where}: {exc}: {text}")
                continue
            if PLACEHOLDER.search(" ".join(argv[1:])):
                skipped.append(f"{where}: {text}")
                continue
            if argv[1] not in CHEAP_VERBS and "--dry-run" not in argv:
                skipped.append(f"{where}: {text}")
                continue
            if argv[1] == "validate" and "--fast" not in argv:
                argv = [*argv, "--fast"]
            match = DOCUMENTED_EXIT.search(comment)
            cheap.append(DocCommand(where, tuple(argv), int(match.group(1)) if match else 0))
    return cheap, skipped, unparsable


COMMANDS, SKIPPED, UNPARSABLE = doc_commands()


def test_the_docs_show_each_kind_of_cheap_command() -> None:
    """If the extraction broke (or the docs lost their examples), this fails rather than passing on nothing."""
    verbs = {command.argv[1] for command in COMMANDS}
    assert {"render", "validate", "recipes", "estimate"} <= verbs, verbs
    assert any("--dry-run" in command.argv for command in COMMANDS)
    assert any(command.expected != 0 for command in COMMANDS)
    assert not UNPARSABLE, UNPARSABLE


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_doc_command_runs_as_written(command: DocCommand) -> None:
    created = [ROOT / word for word in command.argv[3:] if command.argv[1:3] == ("recipes", "cp")
               and word.endswith(".yaml")]
    if any(path.exists() for path in created):
        pytest.skip(f"{created[0]} exists in the checkout; not overwriting it")
    env = framework_env(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run(list(command.argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        for path in created:
            path.unlink(missing_ok=True)
    assert proc.returncode == command.expected, (
        f"{command.where}: `{shlex.join(command.argv)}` exited {proc.returncode}, the docs say {command.expected}\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    assert proc.stdout.strip(), f"{command.where}: `{shlex.join(command.argv)}` printed nothing"
