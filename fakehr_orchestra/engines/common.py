"""What the engine renderers share: version resolution and the env of a stage."""

from __future__ import annotations

import json
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


def flags(ctx: RenderContext, args: dict[str, tuple[Any, str]]) -> list[str]:
    """`--name value` for each flag; `args` maps the flag as the recipe spells it to (value, recipe key)."""
    argv: list[str] = []
    for name, (value, key) in args.items():
        renamed = ctx.rename("swift", "flag", name)
        if value is None or renamed is None:  # null leaves a flag out; so does a flag the target no longer reads
            continue
        flag = "--" + renamed
        ctx.origins[flag] = key
        argv.append(flag)
        argv.extend(option_values(ctx, value))
    return argv


def option_values(ctx: RenderContext, value: Any) -> list[str]:
    """An option's value(s) as argv items: a list gives one item each, a mapping one compact JSON item."""
    if isinstance(value, (list, tuple)):
        return [ctx.value(v) for v in value]
    if isinstance(value, dict):
        return [json.dumps(value, separators=(",", ":"))]
    return [ctx.value(value)]
