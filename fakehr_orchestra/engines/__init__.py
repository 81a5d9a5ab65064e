"""Renderers: pure functions from a resolved recipe to a Plan, for the framework versions targeted."""

from __future__ import annotations

from typing import Any, Callable

from .common import RenderContext
from .plan import Plan
from .versions import TargetVersions

SERVICES = ("critic",)  # servers a stage needs (rendered like a stage; the pipeline starts and stops them)
# The ORM adapter that lets ms-swift's GRPO call the same reward plugin verl uses (our code, not a recipe choice);
# ms-swift imports it by file path, so the plan names the real file of this installation (resources.py).
SWIFT_ORM_ADAPTER = "rewards/swift_orm.py"


class RenderError(ValueError):
    """The recipe is valid YAML but cannot be rendered for this stage (e.g. the stage is missing)."""


def _render_sft(model: Any, ctx: RenderContext, nodes: int | None) -> Plan:
    from .swift import render_sft
    return render_sft(model, ctx)


def _render_grpo(model: Any, ctx: RenderContext, nodes: int | None) -> Plan:
    if model.grpo.engine == "swift":
        from ..resources import shipped_file
        from .swift import render_swift_grpo
        return render_swift_grpo(model, ctx, str(shipped_file(SWIFT_ORM_ADAPTER)))
    from .verl import render_grpo
    return render_grpo(model, ctx, nodes=nodes)


# The recipe sections a framework trains from, by the pipeline stage that runs them (pipeline/stages.py lists the
# stages; this package sits below it, so it keeps only its own renderers, and a test holds the two in step).
RENDERERS: dict[str, Callable[[Any, RenderContext, int | None], Plan]] = {"sft": _render_sft, "grpo": _render_grpo}


def render(recipe: Any, stage: str, versions: dict[str, str] | None = None, translate: bool = True,
           nodes: int | None = None) -> Plan:
    """Render one stage. `versions` overrides the installed ones (e.g. {'swift': '3.12'}); `nodes` sets the node
    count where the framework reads it (a Slurm allocation: verl's trainer.nnodes; ms-swift takes NNODES from the
    environment, see engines.torchrun.with_nodes)."""
    model = recipe.model
    written = {"swift": model.written_for.swift, "verl": model.written_for.verl}
    ctx = RenderContext(TargetVersions.resolve(versions or {}, written), written, translate=translate)
    if stage == "critic":
        from .critic import render_server
        try:
            return render_server(model, ctx)
        except ValueError as exc:
            raise RenderError(str(exc)) from None
    if stage not in RENDERERS:
        raise RenderError(f"unknown stage '{stage}'; render knows {', '.join((*RENDERERS, *SERVICES))}")
    if getattr(model, stage) is None:
        raise RenderError(f"the recipe {recipe.path} has no '{stage}' section")
    try:
        return RENDERERS[stage](model, ctx, nodes)
    except ValueError as exc:
        raise RenderError(str(exc)) from None


__all__ = ["Plan", "RENDERERS", "RenderError", "SERVICES", "render"]
