"""What the engine renderers share: version resolution and the env of a stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .plan import plan_value
from .versions import Framework, TargetVersions, translate


@dataclass
class RenderContext:
    """Target versions plus the bookkeeping a renderer fills in (applied translations, launch-time refs)."""

    versions: TargetVersions
    written_for: dict[str, str]
    translate: bool = True
    applied: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # rendered flag / key / env:NAME -> recipe key

    def target(self, framework: Framework) -> str:
        """With translation off, render the names exactly as the recipe was written (for preflight demos)."""
        return getattr(self.versions, framework) if self.translate else self.written_for[framework]

    def rename(self, framework: Framework, kind: str, name: str) -> Optional[str]:
        """The name the target version reads; None when it reads nothing of the kind (the renderer leaves it out)."""
        if not self.translate:
            return name
        new, entry, forward = translate(framework, kind, name, self.target(framework))
        if entry is not None:
            note = entry.describe(forward)
            if note not in self.applied:
                self.applied.append(note)
        return new

    def value(self, value: Any) -> str:
        return plan_value(value, self.refs)


def stage_env(ctx: RenderContext, framework: Framework, env: dict[str, Any], section: str) -> dict[str, str]:
    """`section.env` as plan env (names translated for the target version); `null` leaves a variable out."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if value is None:
            continue
        rendered = ctx.rename(framework, "env", name)
        if rendered is None:
            continue
        out[rendered] = ctx.value(value)
        ctx.origins[f"env:{rendered}"] = f"{section}.env.{name}"
    return out
