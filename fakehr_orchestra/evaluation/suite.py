"""A suite: every model answered and scored on every test set of `eval.sets`, reported as one matrix (models x
sets, with the unweighted mean over sets, as detection papers table them) and each set's per-generator /
per-category breakdown under it.

Layout under the suite folder: `sets/<set>.jsonl` (prepared once, sets.py), `<model>/<set>/predictions.jsonl`
(`<model>/<set>@<perturbation>/` for each of `eval.perturbations` other than none, evaluation/perturb.py)
(+ `.meta.json`, the `eval infer` runner: resumable per set) and `<model>/<set>/metrics.json` (`eval score`), then
`suite.json` and `suite.md`. A model is loaded once for all its sets, and only if some set still has images to
answer; each image of a set is decoded once for all the perturbations, applied to that decode in memory; a rerun
answers only what is missing and rescores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
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


def matrix(cells: dict[str, dict[str, dict[str, Any]]], columns: list[str], metrics: list[str],
           mean_over: list[str]) -> dict[str, Any]:
    """{metric: {model: {column: value, ..., "mean": unweighted mean over the `mean_over` columns (the sets under
    the first perturbation; null if any of them is undefined)}}}."""
    out: dict[str, Any] = {}
    for metric in metrics:
        out[metric] = {}
        for model, row in cells.items():
            values = {c: row[c].get(metric) for c in columns}
            out[metric][model] = {**values, "mean": _mean([values[c] for c in mean_over])}
    return out


@dataclass(frozen=True)
class Column:
    """One column of the matrix: a set under one perturbation ("none": the set's own name)."""

    set: str
    perturbation: str

    @property
    def name(self) -> str:
        return self.set if self.perturbation == "none" else f"{self.set} [{self.perturbation}]"

    @property
    def folder(self) -> str:
        from .perturb import slug

        return self.set if self.perturbation == "none" else f"{self.set}@{slug(self.perturbation)}"


class _SharedBackend:
    """One model load for all the sets and perturbations of a model, made only when some image is left to answer:
    the runs differ only in the perturbation, which the backend reads from its settings."""

    def __init__(self, factory: Callable[..., Any]):
        self.factory, self.backend, self.loads = factory, None, 0

    def get(self, settings: Any) -> Any:
        if self.backend is None:
            self.backend, self.loads = self.factory(settings), self.loads + 1
        elif hasattr(self.backend, "settings"):
            self.backend.settings = settings
        return self.backend


def _answer_set(model: _SharedBackend, settings: Any, items: list[Any], columns: list[Column], out: Path,
                data: str) -> dict[Column, Any]:
    """Answer what is left of one set under each of its perturbations (`columns`), one predictions file each
    (resumable on its own). The images left to answer under any perturbation go batch by batch: each is decoded
    once and every perturbation that still needs it is applied to that decode in memory; on a fresh run each file
    gets exactly the batches a separate `eval infer` run would. {column: InferSummary}."""
    from .infer.prompting import read_images
    from .infer.run import PredictionsFile, batches

    files = {col: PredictionsFile(replace(settings, perturbation=col.perturbation), items,
                                  out / col.folder / "predictions.jsonl", data=data) for col in columns}
    started = time.perf_counter()
    left = [item for item in items if any(item.key in f.pending_keys for f in files.values())]
    for batch in batches(left, settings.batch_size):
        decoded = read_images([item.file_path for item in batch])
        for predictions in files.values():
            rows = [i for i, item in enumerate(batch) if item.key in predictions.pending_keys]
            if rows:
                predictions.answer(model.get(predictions.settings), [batch[i] for i in rows],
                                   [decoded[i] for i in rows])
    for predictions in files.values():
        predictions.summary.seconds = time.perf_counter() - started
    return {col: f.summary for col, f in files.items()}


def run_suite(recipe: Any, models: dict[str, str], out_dir: str | Path, *, backend: Optional[str] = None,
              batch_size: Optional[int] = None, device: Optional[str] = None, protocol: Optional[str] = None,
              workers: Optional[int] = None, backend_factory: Optional[Callable[..., Any]] = None,
              progress: Optional[Callable[[str], None]] = None) -> SuiteRun:
    """Prepare every set, answer and score every (model, set), write the matrix. See the module docstring."""
    from .infer import from_recipe, make_backend
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
    perturbations = list(rm.eval.perturbations) or ["none"]
    columns = [Column(name, pert) for pert in perturbations for name in items_of]
    factory = backend_factory or make_backend
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    scored: dict[str, dict[str, dict[str, Any]]] = {}
    for model_name, model_dir in models.items():
        settings = from_recipe(recipe, str(Path(model_dir).resolve()), backend, batch_size, device)
        model = _SharedBackend(factory)
        cells[model_name], scored[model_name] = {}, {}
        for set_name, items in items_of.items():
            set_columns = [c for c in columns if c.set == set_name]
            summaries = _answer_set(model, settings, items, set_columns, out / model_name,
                                    str(set_files[set_name].resolve()))
            for col in set_columns:
                folder = out / model_name / col.folder
                run.answered[(model_name, col.name)] = summaries[col].written
                metrics = score_file(folder / "predictions.jsonl", protocol=protocol)
                write_json_atomic(folder / "metrics.json", metrics)
                scored[model_name][col.name] = metrics
                say(f"{model_name} on {col.name}: {summaries[col].written} answered now, "
                    f"{summaries[col].already_done} before; accuracy {fmt(metrics['overall']['accuracy'], 'pct')}")
        for col in columns:  # the recipe's order: perturbation-major, as the matrix columns
            cells[model_name][col.name] = cell(scored[model_name][col.name], protocol)
        run.loads[model_name] = model.loads
        model.backend = None  # released before the next model loads
    names = [c.name for c in columns]
    metric_names = [key for _, key, _ in MATRIX_METRICS] + ([f"{protocol}_accuracy"] if protocol else [])
    first = [c.name for c in columns if c.perturbation == perturbations[0]]
    result = {"set_order": names, "model_order": list(models), "perturbations": perturbations,
              "sets": {c.name: {"set": c.set, "perturbation": c.perturbation, "eval_set": str(set_files[c.set]),
                                "images": len(items_of[c.set])} for c in columns},
              "models": {m: str(Path(d).resolve()) for m, d in models.items()}, "protocol": protocol,
              "cells": cells, "matrix": matrix(cells, names, metric_names, first),
              "by_perturbation": {m: {p: _mean([cells[m][c.name]["accuracy"] for c in columns
                                                 if c.perturbation == p]) for p in perturbations}
                                  for m in models},
              "groups": {m: {n: scored[m][n].get("groups", {}) for n in names} for m in models}}
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
    perts = result.get("perturbations") or ["none"]
    lines += [f"The mean is unweighted over the sets (each set counts once, as papers table it), under "
              f"{perts[0]}; n/a where a set's value is undefined. Accuracy counts an unparseable answer as wrong; "
              f"strict accuracy also counts it as the wrong class.", ""]
    if len(perts) > 1:
        lines += ["## Accuracy per perturbation (mean over sets)", "", "| model | " + " | ".join(perts) + " |",
                  "|" + "---|" * (len(perts) + 1)]
        for m in models:
            lines.append(f"| {m} | " + " | ".join(fmt(result["by_perturbation"][m][p], "pct") for p in perts) + " |")
        lines += ["", "Perturbations are applied to each image in memory before the model's own resize "
                  "(none: the image as it is).", ""]
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
