"""Findings of a preflight, collected (never raised) so every problem in a recipe is reported at once.

A Finding names the recipe key it is about, where that key was written (file:line, from `Recipe.where`), what is
wrong and how to fix it. `error` means the run would fail or silently train the wrong thing; `warning` means it is
worth a look (or could only be checked partly before launch).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str  # which checker produced it: swift, verl, cluster, batch, image, data, reward, output, prompt
    key: str  # recipe key path, e.g. grpo.overrides.trainer.nnodes
    message: str
    fix: str | None = None
    file: str | None = None
    line: int | None = None
    stage: str | None = None

    @property
    def where(self) -> str:
        if self.file is None:
            return "<recipe>"
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def render(self) -> str:
        stage = f"[{self.stage}] " if self.stage else ""
        text = f"{self.where}: {stage}{self.key or '<root>'}: {self.message}"
        if self.fix:
            text += f"\n      fix: {self.fix}"
        return text


@dataclass
class Report:
    """What `validate` found, plus what it checked against (versions, stages) so a reader can trust a clean one."""

    recipe: str
    stages: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # one line per check that ran (for the text output)
    rehearsal: list[Any] = field(default_factory=list)  # rehearsal.StepResult per step reached, when rehearsed

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, finding: Finding) -> None:
        if finding not in self.findings:  # two checks reaching the same conclusion say it once
            self.findings.append(finding)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe, "stages": self.stages, "versions": self.versions, "ok": self.ok,
            "errors": [asdict(f) for f in self.errors], "warnings": [asdict(f) for f in self.warnings],
            "checked": self.checked, "rehearsal": [r.to_dict() for r in self.rehearsal],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_text(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        lines = [f"validate {self.recipe} (stages: {', '.join(self.stages)}; against installed {versions})"]
        if self.rehearsal:
            lines.append("rehearsal (the frameworks' own start-up code, on this machine):")
            lines.extend("  " + r.line() for r in self.rehearsal)
        for title, items in (("errors", self.errors), ("warnings", self.warnings)):
            if items:
                lines.append(f"{len(items)} {title[:-1] if len(items) == 1 else title}:")
                lines.extend("  - " + f.render() for f in items)
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"{verdict}: {n_err} error{'s' if n_err != 1 else ''}, "
                     f"{n_warn} warning{'s' if n_warn != 1 else ''}")
        return "\n".join(lines)
