"""Text and JSON forms of an estimate: the verdict first, then the terms of the peak phase, time, changes that fit,
and every assumption the figures rest on."""

from __future__ import annotations

import json
from typing import Any

from .breakdown import ALLOCATOR_SLACK, CONTEXT_GIB, GIB, Phase, StageEstimate
from .models import ModelSpec
from .recipe_estimate import EstimateReport, StageReport


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def model_line(spec: ModelSpec) -> str:
    p = spec.params()
    t = spec.text
    moe = f", {t.experts} experts (top {t.experts_per_token})" if t.experts else ""
    return (f"{spec.name}: {p.total / 1e9:.2f} B parameters (vision {p.vision / 1e9:.2f} B, merger "
            f"{p.aligner / 1e9:.3f} B, LLM {p.llm / 1e9:.2f} B of which embeddings {p.embeddings / 1e9:.2f} B); "
            f"vocab {t.vocab:,}, hidden {t.hidden:,}, {t.layers} layers, {t.heads} heads / {t.kv_heads} kv heads"
            f"{moe} [{spec.source}]")


def verdict_line(est: StageEstimate) -> str:
    share = est.needed / est.gpu.memory_bytes
    head = f"{est.verdict}: {gib(est.needed)} of {est.gpu.memory_gib:g} GiB per GPU ({share:.0%})"
    peak = est.peak
    dom = peak.dominant()
    head += f"; peak in {peak.name}, dominated by {dom.name} ({gib(dom.bytes)})"
    for reason, _ in est.failures:
        head += f"; {reason}"
    return head


def _phase_lines(phase: Phase) -> list[str]:
    lines = [f"    {t.name:<42} {gib(t.bytes):>10}  {t.formula}" for t in phase.terms if t.bytes or t.formula]
    lines += [f"    {t.name:<42} {gib(t.bytes):>10}  {t.formula} (another process)" for t in phase.outside]
    slack = phase.allocated * ALLOCATOR_SLACK
    lines.append(f"    {'allocator slack + CUDA contexts':<42} {gib(slack + phase.contexts * CONTEXT_GIB * GIB):>10}  "
                 f"{ALLOCATOR_SLACK:.0%} of allocated + {phase.contexts} x {CONTEXT_GIB:g} GiB")
    return lines


def stage_text(sr: StageReport, verbose: bool) -> list[str]:
    if sr.estimate is None:
        return [f"[{sr.stage}] not estimated: {sr.skipped}"]
    est = sr.estimate
    lines = [f"[{sr.stage}] {verdict_line(est)}"]
    phases = est.phases if verbose else [est.peak]
    for ph in phases:
        lines.append(f"  {ph.name}: {gib(ph.needed)}")
        lines += _phase_lines(ph)
    if not verbose and len(est.phases) > 1:
        lines.append("  other phases: " + "; ".join(f"{p.name} {gib(p.needed)}" for p in est.phases
                                                     if p is not est.peak))
    f = est.facts
    if sr.stage == "sft":
        lines.append(f"  longest sample ({f['sample']}): {f['sequence_tokens']:,} tokens, "
                     f"{f['image_tokens']:,} of them "
                     f"visual, {f['label_tokens']:,} label tokens; batch {f['batch']} per GPU on {f['world']} GPUs; "
                     f"{f['zero']}; {f['tuner']}")
    else:
        lines.append(f"  rollout: {f['replicas']} vLLM replicas of TP {f['tp']}; "
                     f"KV cache {f['kv_cache_gib']:.1f} GiB = "
                     f"{f['kv_cache_tokens']:,} tokens per replica for up to {f['rollout_tokens_per_replica']:,} "
                     f"(prompt + response of the concurrent sequences); {f['image_tokens_per_prompt']:,} visual tokens "
                     "per prompt")
    tm = sr.time
    if tm is not None:
        rows = f"{tm.rows:,} rows ({tm.rows_source})" if tm.rows is not None else f"rows unknown ({tm.rows_source})"
        steps = (f"{tm.steps_per_epoch:,} steps/epoch, {tm.total_steps:,} steps" if tm.total_steps is not None
                 and tm.steps_per_epoch is not None else
                 f"{tm.total_steps:,} steps" if tm.total_steps is not None else "steps unknown")
        hours = f", at least {tm.hours:,.1f} h" if tm.hours is not None else ""
        unit = "samples" if sr.stage == "sft" else "prompts"
        lines.append(f"  time: {rows}; {tm.global_batch:,} {unit}/step; {steps}; <= {tm.tokens_per_step:,} tokens and "
                     f"{tm.flops_per_step:.2e} FLOPs per step; >= {tm.seconds_per_step:,.1f} s/step{hours}")
        lines += [f"    {n}" for n in tm.notes]
    if sr.advice:
        title = "cheapest changes that fit" if any(s.estimate.verdict == "fits" for s in sr.advice) else \
            "largest reductions found (still not enough)"
        if est.verdict == "tight":
            title = "to get out of the tight zone"
        lines.append(f"  {title}:")
        for s in sr.advice:
            lines.append(f"    - {s.text} -> {gib(s.estimate.needed)} ({s.estimate.verdict})")
    elif est.verdict == "does not fit":
        lines.append("  no change the estimator knows makes it fit")
    return lines


def to_text(report: EstimateReport, verbose: bool = False) -> str:
    g = report.gpu
    lines = [f"estimate {report.recipe} on {g.name} ({g.memory_gib:g} GiB per GPU{'; ' + g.note if g.note else ''})"]
    seen: set[str] = set()
    for sr in report.stages:
        if sr.model is not None and sr.model.name not in seen:
            seen.add(sr.model.name)
            lines.append("model " + model_line(sr.model))
    for sr in report.stages:
        lines += stage_text(sr, verbose)
    notes = [n for sr in report.stages for n in sr.assumptions] + report.notes
    if notes:
        lines.append("assumptions:")
        lines += [f"  - {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines)


def _phase_dict(ph: Phase) -> dict[str, Any]:
    return {"name": ph.name, "needed_gib": round(ph.needed / GIB, 3), "allocated_gib": round(ph.allocated / GIB, 3),
            "contexts": ph.contexts,
            "terms": [{"name": t.name, "gib": round(t.gib, 3), "formula": t.formula, "key": t.key,
                       "other_process": t in ph.outside} for t in ph.terms + ph.outside]}


def stage_dict(sr: StageReport) -> dict[str, Any]:
    if sr.estimate is None:
        return {"stage": sr.stage, "skipped": sr.skipped}
    est = sr.estimate
    out: dict[str, Any] = {
        "stage": sr.stage, "verdict": est.verdict, "fits": est.fits, "needed_gib": round(est.needed / GIB, 3),
        "gpu_gib": est.gpu.memory_gib, "peak_phase": est.peak.name, "dominant": est.peak.dominant().name,
        "failures": [r for r, _ in est.failures], "phases": [_phase_dict(p) for p in est.phases],
        "facts": est.facts, "advice": [s.to_dict() for s in sr.advice], "assumptions": sr.assumptions,
    }
    if sr.model is not None:
        p = sr.model.params()
        out["model"] = {"name": sr.model.name, "family": sr.model.family, "source": sr.model.source,
                        "params": {"total": p.total, "vision": p.vision, "aligner": p.aligner, "llm": p.llm,
                                   "embeddings": p.embeddings},
                        "vocab": sr.model.text.vocab, "hidden": sr.model.text.hidden, "layers": sr.model.text.layers,
                        "heads": sr.model.text.heads, "kv_heads": sr.model.text.kv_heads}
    if sr.time is not None:
        tm = sr.time
        out["time"] = {"rows": tm.rows, "rows_source": tm.rows_source, "global_batch": tm.global_batch,
                       "steps_per_epoch": tm.steps_per_epoch, "total_steps": tm.total_steps,
                       "tokens_per_step": tm.tokens_per_step, "flops_per_step": tm.flops_per_step,
                       "seconds_per_step_min": tm.seconds_per_step, "hours_min": tm.hours, "notes": tm.notes}
    return out


def to_json(report: EstimateReport) -> str:
    return json.dumps({"recipe": report.recipe, "gpu": {"name": report.gpu.name, "memory_gib": report.gpu.memory_gib},
                       "allocator_slack": ALLOCATOR_SLACK, "cuda_context_gib": CONTEXT_GIB,
                       "stages": [stage_dict(sr) for sr in report.stages], "notes": report.notes},
                      indent=2, default=str)
