"""Rendered plans of every shipped recipe and profile, compared byte for byte with tests/goldens/.

A golden holds, for one recipe and one profile (or none), what the CLI prints for it: `run --dry-run` of the whole
pipeline and of each stage alone (argv, env and the artifact wiring), and `render` of every rendered stage in both
formats (the JSON form carries cwd, launcher and versions too). A refactor must leave every one unchanged; a change
meant to alter a plan regenerates them on purpose and the diff shows what it changed:

    FAKEHR_UPDATE_GOLDENS=1 python -m pytest -q tests/test_render_goldens.py

The CLI runs in this process (click's runner), with everything a plan may pick up from the machine fixed: the run
dir, the working directory and HOME are temporary folders written as placeholders, the checkout as <REPO>, the
`${env:...}` variables the recipes read set to fixed values, the framework versions and the GPU probe pinned.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakehr_orchestra.cli import cli
from fakehr_orchestra.recipe import load_recipe
from fakehr_orchestra.recipe.load import profile_path
from fakehr_orchestra.resources import FOLDERS, profile_files, recipe_files, shipped_dir

GOLDENS = Path(__file__).resolve().parent / "goldens"
UPDATE = os.environ.get("FAKEHR_UPDATE_GOLDENS", "") == "1"
REPO = Path(__file__).resolve().parents[1]

PIPELINE = ("data", "sft", "grpo", "merge", "eval")  # what `run --stages X` takes, written out: the goldens fix it
RENDERED = ("sft", "grpo", "critic")  # what `render --stage X` takes
VERSIONS = {"swift": "4.6.0", "verl": "0.9.1"}  # the constraints' pins; rendering must not follow the machine
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Case:
    recipe: str  # a shipped recipe's name (what `run fake_hr1` takes)
    profile: str | None  # a profile name as `--profile` takes it, or None

    @property
    def golden(self) -> Path:
        return GOLDENS / f"{self.recipe}.{self.profile or 'none'}.txt"


def cases() -> list[Case]:
    """Every shipped recipe with no profile and with each profile that applies to it: NAME.yaml applies to every
    recipe, NAME.METHOD.yaml to the recipes of that method (both are `--profile NAME`)."""
    out = []
    for recipe in recipe_files():
        method = load_recipe(recipe).model.method
        names = set()
        for profile in profile_files():
            name, _, only_for = profile.stem.partition(".")
            if not only_for or only_for == method:
                names.add(name)
        out += [Case(recipe.stem, None)] + [Case(recipe.stem, name) for name in sorted(names)]
    return out


def env_names() -> list[str]:
    """The variables the shipped recipes and profiles read with ${env:NAME}."""
    files = list(recipe_files()) + list(profile_files()) + sorted(shipped_dir("recipes").glob("_*.yaml"))
    return sorted({name for f in files for name in ENV_REF.findall(f.read_text())})


CASES = cases()


@pytest.fixture
def fixed_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A working directory, HOME and run dir of their own; versions, GPU probe and recipe env fixed."""
    from fakehr_orchestra.engines import versions
    from fakehr_orchestra.pipeline import stages

    places = {"RUN_DIR": tmp_path / "run", "CWD": tmp_path / "cwd", "HOME": tmp_path / "home"}
    for name in ("CWD", "HOME"):
        places[name].mkdir()
    monkeypatch.chdir(places["CWD"])
    monkeypatch.setenv("HOME", str(places["HOME"]))
    for name in env_names():
        monkeypatch.setenv(name, f"golden-{name}")
    monkeypatch.setattr(versions, "installed_version", lambda framework: VERSIONS.get(framework))
    monkeypatch.setattr(stages, "has_cuda_gpu", lambda: False)
    return places


def invocations(case: Case) -> list[list[str]]:
    profile = ["--profile", case.profile] if case.profile else []
    runs = [["run", case.recipe, *profile, "--dry-run", "--run-dir", "{RUN_DIR}"]]
    runs += [["run", case.recipe, *profile, "--dry-run", "--run-dir", "{RUN_DIR}", "--stages", s] for s in PIPELINE]
    renders = [["render", case.recipe, *profile, "--stage", s, "--format", fmt]
               for s in RENDERED for fmt in ("shell", "json")]
    return runs + renders


def placeholders(places: dict[str, Path]) -> list[tuple[str, str]]:
    """(real path, placeholder), the longest real path first so none is replaced inside another."""
    pairs = {str(path): f"<{name}>" for name, path in places.items()}
    pairs.update({str(shipped_dir(folder)): f"<REPO>/{folder}" for folder in FOLDERS})
    pairs[str(REPO)] = "<REPO>"
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


def render_case(case: Case, places: dict[str, Path]) -> str:
    runner = CliRunner()
    used = profile_path(REPO / "recipes" / f"{case.recipe}.yaml", case.profile,
                        load_recipe(REPO / "recipes" / f"{case.recipe}.yaml").model.method) if case.profile else None
    parts = [f"# recipe {case.recipe}, profile {case.profile or '(none)'}"
             + (f" ({used.relative_to(REPO).as_posix()})" if used else "") + "\n"]
    for argv in invocations(case):
        real = [a.replace("{RUN_DIR}", str(places["RUN_DIR"])) for a in argv]
        result = runner.invoke(cli, real, prog_name="fakehr-orchestra", catch_exceptions=False)
        shown = " ".join(a.replace("{RUN_DIR}", "<RUN_DIR>") for a in argv)
        parts.append(f"\n### fakehr-orchestra {shown}\n# exit {result.exit_code}\n")
        parts.append(f"--- stdout\n{result.stdout}")
        if result.stderr:
            parts.append(f"--- stderr\n{result.stderr}")
    text = "".join(parts)
    for real, placeholder in placeholders(places):
        text = text.replace(real, placeholder)
    return text


def test_cases_cover_every_recipe_and_profile() -> None:
    assert {c.recipe for c in CASES} == {p.stem for p in recipe_files()}
    assert {c.profile for c in CASES} - {None} == {p.stem.partition(".")[0] for p in profile_files()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.recipe}-{c.profile or 'none'}")
def test_rendered_plans_match_golden(case: Case, fixed_machine: dict[str, Path]) -> None:
    text = render_case(case, fixed_machine)
    if UPDATE:
        GOLDENS.mkdir(exist_ok=True)
        case.golden.write_text(text)
    assert case.golden.exists(), f"no golden {case.golden}; make it with FAKEHR_UPDATE_GOLDENS=1"
    assert text == case.golden.read_text(), (
        f"{case.golden.name}: the rendered plans changed; if that is intended, regenerate with "
        f"FAKEHR_UPDATE_GOLDENS=1 and review the diff")


def test_no_stale_goldens() -> None:
    if UPDATE:
        for stale in set(GOLDENS.glob("*.txt")) - {c.golden for c in CASES}:
            stale.unlink()
    assert sorted(GOLDENS.glob("*.txt")) == sorted(c.golden for c in CASES)
