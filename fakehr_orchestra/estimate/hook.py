"""`validate`'s memory check: when the recipe declares its GPU (cluster.gpu), each stage that does not fit, or is
tight, becomes a warning located at the key that dominates it, with the cheapest change that fits as the fix."""

from __future__ import annotations

from typing import Any

from .gpus import GIB, lookup
from .models import ModelError
from .recipe_estimate import estimate_recipe
from .settings import Options, as_int


def check_memory(ctx: Any, stages: tuple[str, ...]) -> None:
    name = ctx.model.cluster.gpu
    if not name:
        return
    gpu = lookup(name)
    if gpu is None:  # the schema already refuses unknown names
        return
    cl = ctx.model.cluster
    opts = Options(nodes=as_int(ctx.resolve(cl.nodes)), gpus_per_node=as_int(ctx.resolve(cl.gpus_per_node)))
    try:
        report = estimate_recipe(ctx.recipe, gpu, opts, stages)
    except ModelError as exc:
        ctx.warning("memory", "cluster.gpu", f"no memory estimate: {exc}")
        return
    for sr in report.stages:
        est = sr.estimate
        if est is None:
            if sr.skipped and "has no" not in sr.skipped:
                ctx.warning("memory", sr.stage, f"no memory estimate: {sr.skipped}", None, sr.stage)
            continue
        figure = f"{est.needed / GIB:.1f} of {gpu.memory_gib:g} GiB per {gpu.name}"
        if est.verdict == "fits":
            ctx.report.checked.append(f"{sr.stage}: memory estimate {figure}: fits (fakehr-orchestra estimate)")
            continue
        dom = est.peak.dominant()
        key = est.failures[0][1] if est.failures else dom.key
        why = "; ".join(r for r, _ in est.failures) or f"peak in {est.peak.name}, dominated by {dom.name} " \
            f"({dom.bytes / GIB:.1f} GiB)"
        fix = None
        if sr.advice:
            s = sr.advice[0]
            fix = f"{s.text} -> {s.estimate.needed / GIB:.1f} GiB ({s.estimate.verdict}); " \
                  "`fakehr-orchestra estimate` lists the alternatives"
        assumed = f" (assuming: {'; '.join(sr.assumptions)})" if sr.assumptions else ""
        ctx.warning("memory", key or "cluster.gpu", f"estimated {figure}: {est.verdict}; {why}{assumed}", fix,
                    sr.stage)
