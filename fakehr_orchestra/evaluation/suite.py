"""A suite: every model answered and scored on every test set of `eval.sets`, reported as one matrix (models x
sets, with the unweighted mean over sets, as detection papers table them) and each set's per-generator /
per-category breakdown under it.

Layout under the suite folder: `sets/<set>.jsonl` (prepared once, sets.py), `<model>/<set>/predictions.jsonl`
(+ `.meta.json`, the `eval infer` runner: resumable per set) and `<model>/<set>/metrics.json` (`eval score`), then
`suite.json` and `suite.md`. A model is loaded once for all its sets, and only if some set still has images to
answer; a rerun answers only what is missing and rescores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..io import write_json_atomic, write_text_atomic
from .report import fmt

MATRIX_METRICS = (("accuracy", "accuracy", "pct"), ("strict accuracy", "strict_accuracy", "pct"),
                  ("AP", "ap", "num"), ("AUC", "auc", "num"))


@dataclass
class SuiteRun:
    """What a suite did: per (model, set) how many images were answered now, and the files written."""

    answered: dict[tuple[str, str], int] = field(default_factory=dict)
    loads: dict[str, int] = field(default_factory=dict)  # model loads per model (0 when nothing was left)
    files: dict[str, Path] = field(default_factory=dict)


def cell(metrics: dict[str, Any], protocol: Optional[str]) -> dict[str, Any]:
    """The matrix entry of one model on one set."""
    o = metrics["overall"]
    out = {"n": o["n"], "accuracy": o["accuracy"], "strict_accuracy": o["strict"]["accuracy"],
           "real_recall": o["real_recall"], "fake_recall": o["fake_recall"], "ap": o.get("ap"), "auc": o.get("auc"),
           "unparseable": o["unparseable"]}
    if protocol:
        out[f"{protocol}_accuracy"] = (o.get(protocol) or {}).get("accuracy")
    return out


def _mean(values: list[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if len(known) == len(values) and known else None


def matrix(cells: dict[str, dict[str, dict[str, Any]]], sets: list[str], metrics: list[str]) -> dict[str, Any]:
    """{metric: {model: {set: value, ..., "mean": unweighted mean over sets (null if any set's is undefined)}}}."""
    out: dict[str, Any] = {}
    for metric in metrics:
        out[metric] = {}
        for model, row in cells.items():
            values = [row[s].get(metric) for s in sets]
            out[metric][model] = {**dict(zip(sets, values)), "mean": _mean(values)}
    return out


def run_suite(recipe: Any, models: dict[str, str], out_dir: str | Path, *, backend: Optional[str] = None,
              batch_size: Optional[int] = None, device: Optional[str] = None, protocol: Optional[str] = None,
              workers: Optional[int] = None, backend_factory: Optional[Callable[..., Any]] = None,
              progress: Optional[Callable[[str], None]] = None) -> SuiteRun:
    """Prepare every set, answer and score every (model, set), write the matrix. See the module docstring."""
    from .infer import from_recipe, make_backend, run_inference
    from .metrics import score_file
    from .reader import read_eval_set
    from .sets import prepare_set

    rm = recipe.model
    if not rm.eval.sets:
        raise ValueError("no eval.sets in the recipe: a suite names its test sets there (each a source: kind, path, "
                         "label_convention)")
    out = Path(out_dir)
    say = progress or (lambda _: None)
    run = SuiteRun()
    set_files: dict[str, Path] = {}
    items_of: dict[str, list[Any]] = {}
    for section in rm.eval.sets:
        path, fresh = prepare_set(section, rm.data, Path(rm.workdir), out / "sets", workers)
        set_files[section.name] = path
        items_of[section.name] = read_eval_set(path, "text")
        say(f"set {section.name}: {len(items_of[section.name])} images ({'read' if fresh else 'reused'})")
    factory = backend_factory or make_backend
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    scored: dict[str, dict[str, dict[str, Any]]] = {}
    for model_name, model_dir in models.items():
        settings = from_recipe(recipe, str(Path(model_dir).resolve()), backend, batch_size, device)
        loaded: list[Any] = []

        def shared(s: Any, _loaded: list[Any] = loaded) -> Any:  # one model load for all the sets
            if not _loaded:
                _loaded.append(factory(s))
            return _loaded[0]
        cells[model_name], scored[model_name] = {}, {}
        for name, items in items_of.items():
            pred = out / model_name / name / "predictions.jsonl"
            summary = run_inference(settings, items, pred, data=str(set_files[name].resolve()),
                                    backend_factory=shared)
            run.answered[(model_name, name)] = summary.written
            metrics = score_file(pred, protocol=protocol)
            write_json_atomic(out / model_name / name / "metrics.json", metrics)
            cells[model_name][name] = cell(metrics, protocol)
            scored[model_name][name] = metrics
            say(f"{model_name} on {name}: {summary.written} answered now, {summary.already_done} before; "
                f"accuracy {fmt(metrics['overall']['accuracy'], 'pct')}")
        run.loads[model_name] = len(loaded)
        loaded.clear()
    sets = list(items_of)
    metric_names = [key for _, key, _ in MATRIX_METRICS] + ([f"{protocol}_accuracy"] if protocol else [])
    result = {"set_order": sets, "model_order": list(models),
              "sets": {n: {"eval_set": str(set_files[n]), "images": len(items_of[n])} for n in sets},
              "models": {m: str(Path(d).resolve()) for m, d in models.items()}, "protocol": protocol,
              "cells": cells, "matrix": matrix(cells, sets, metric_names),
              "groups": {m: {s: scored[m][s].get("groups", {}) for s in sets} for m in models}}
    run.files["json"] = write_json_atomic(out / "suite.json", result)
    run.files["markdown"] = write_text_atomic(out / "suite.md", suite_markdown(result))
    return run


def suite_markdown(result: dict[str, Any]) -> str:
    sets, models = result["set_order"], result["model_order"]  # the recipe's order (JSON keys are sorted)
    protocol = result.get("protocol")
    rows = list(MATRIX_METRICS) + ([(f"accuracy, {protocol} parsing (paper-comparable)", f"{protocol}_accuracy",
                                     "pct")] if protocol else [])
    lines = ["# Evaluation suite", "", "Sets: " + ", ".join(f"{s} ({result['sets'][s]['images']:,} images)"
                                                           for s in sets), ""]
    for title, key, kind in rows:
        lines += [f"## {title}", "", "| model | " + " | ".join(sets) + " | mean |",
                  "|" + "---|" * (len(sets) + 2)]
        for m in models:
            row = result["matrix"][key][m]
            lines.append(f"| {m} | " + " | ".join(fmt(row[s], kind) for s in sets) + f" | {fmt(row['mean'], kind)} |")
        lines.append("")
    lines += ["The mean is unweighted over sets (each set counts once, as papers table it); n/a where a set's value "
              "is undefined. Accuracy counts an unparseable answer as wrong; strict accuracy also counts it as the "
              "wrong class.", ""]
    for s in sets:
        for key in ("generator", "category"):
            groups = {m: result["groups"][m][s].get(key) for m in models if result["groups"][m][s].get(key)}
            if not groups:
                continue
            values: list[str] = []
            for g in groups.values():
                values += [v for v in g["values"] if v not in values]
            lines += [f"## {s}: accuracy per {key}", "", "| model | " + " | ".join(values) + " | mean |",
                      "|" + "---|" * (len(values) + 2)]
            for m, g in groups.items():
                lines.append(f"| {m} | " + " | ".join(fmt(g["values"].get(v, {}).get("accuracy"), "pct")
                                                     for v in values) +
                             f" | {fmt(g['mean'].get('accuracy'), 'pct')} |")
            lines.append("")
    return "\n".join(lines)
