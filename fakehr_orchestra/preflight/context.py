"""What every checker gets: the recipe (for key paths and file:line), the report to add to, and the launch env."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..refs import PLAN_REF, RECIPE_ENV_REF  # noqa: F401 - PLAN_REF re-exported for the checkers
from .report import Finding, Level, Report


@dataclass
class Context:
    recipe: Any
    report: Report
    environ: Mapping[str, str] = field(default_factory=dict)  # launch env, when validate runs at launch
    remote_data: bool = False  # data paths name files on the cluster: a missing one is a warning

    @property
    def model(self) -> Any:
        return self.recipe.model

    def add(self, level: Level, check: str, key: str, message: str, fix: str | None = None,
            stage: str | None = None) -> None:
        file, line = self.recipe.where(key) if key else (str(self.recipe.path), None)
        self.report.add(Finding(level, check, key, message, fix, file, line, stage))

    def error(self, check: str, key: str, message: str, fix: str | None = None, stage: str | None = None) -> None:
        self.add("error", check, key, message, fix, stage)

    def warning(self, check: str, key: str, message: str, fix: str | None = None, stage: str | None = None) -> None:
        self.add("warning", check, key, message, fix, stage)

    def launch_refs(self, value: Any) -> list[str]:
        """Names of `${env:NAME}` refs in a recipe value that the launch env (if given) does not supply."""
        text = value if isinstance(value, str) else ""
        return [n for n in RECIPE_ENV_REF.findall(text) if n not in self.environ]

    def resolve(self, value: Any) -> Any:
        """A recipe value with the launch env filled in where known; ints come back as ints."""
        if not isinstance(value, str) or "${env:" not in value:
            return value
        text = RECIPE_ENV_REF.sub(lambda m: self.environ.get(m.group(1), m.group(0)), value)
        return int(text) if text.isdigit() else text


def as_int(value: Any) -> int | None:
    """An int recipe value, or None when it is unknown before launch (a ${env:..} ref) or unset."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
