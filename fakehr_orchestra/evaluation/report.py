"""The report: one JSON, one Markdown page and PNG plots for one run or several side by side (e.g. SFT vs GRPO).

Reads only metrics JSON files (from `eval score`), so a report can be rebuilt or compared later without the
predictions. Undefined metrics show as "n/a", never as 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..io import write_json_atomic, write_text_atomic
from . import plots

OVERALL_ROWS = [
    ("images", "n", "int"), ("accuracy", "accuracy", "pct"), ("accuracy CI", "accuracy_ci", "ci"),
    ("real recall (TNR)", "real_recall", "pct"), ("fake recall (TPR)", "fake_recall", "pct"),
    ("precision (fake)", "precision", "pct"), ("F1 (fake)", "f1", "pct"), ("macro-F1", "macro_f1", "pct"),
    ("false-positive rate on real", "fpr_real", "pct"), ("AUC", "auc", "num"),
    ("AP (average precision, fake)", "ap", "num"), ("AUC / AP rows", "auc_n", "int"),
    ("unparseable (counted wrong)", "unparseable", "int"), ("image errors (counted wrong)", "errors", "int"),
    ("hit max_new_tokens", "truncated", "int"), ("well-formed answers", "well_formed_rate", "pct"),
    ("logical consistency (critic, mean)", "consistency", "num"), ("consistency CI", "consistency_ci", "numci"),
    ("consistency: answers scored", "consistency_scored", "int"),
    ("consistency: not scored", "consistency_not_scored", "int"),
]
GROUP_COLUMNS = [("n", "int"), ("accuracy", "pct"), ("real_recall", "pct"), ("fake_recall", "pct"),
                 ("unparseable", "int"), ("think_rate", "pct"), ("mean_response_tokens", "num"),
                 ("paired_share", "pct"), ("consistency", "num")]


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{100 * value:.2f}%"
    if kind == "ci":
        return f"[{100 * value[0]:.2f}, {100 * value[1]:.2f}]%"
    if kind == "numci":
        return f"[{value[0]:.4f}, {value[1]:.4f}]"
    if kind == "int":
        return f"{int(value):,}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def eval_set_mismatch(runs: list[tuple[str, dict[str, Any]]]) -> Optional[str]:
    """Why the runs were not scored on the same images (row counts, or which images), or None when they were.
    Side by side, runs over different eval sets compare nothing: `eval report` refuses them unless told."""
    if len(runs) < 2:
        return None
    counts = {name: m["overall"].get("n") for name, m in runs}
    if len(set(counts.values())) > 1:
        return "different numbers of images: " + ", ".join(f"{n} {c}" for n, c in counts.items())
    digests = {name: (m.get("run") or {}).get("keys_sha1") for name, m in runs}
    known = {d for d in digests.values() if d}
    if len(known) > 1:
        groups: dict[str, list[str]] = {}
        for name, digest in digests.items():
            groups.setdefault(digest or "?", []).append(name)
        return "the same number of images but not the same images: " + " vs ".join(
            "+".join(names) for names in groups.values())
    return None


def markdown(runs: list[tuple[str, dict[str, Any]]], images: dict[str, str]) -> str:
    names = [n for n, _ in runs]
    lines = ["# Evaluation report", ""]
    mismatch = eval_set_mismatch(runs)
    if mismatch:
        lines += [f"> **WARNING: these runs were scored on different eval sets ({mismatch}); their metrics are not "
                  "comparable.**", ""]
    for name, m in runs:
        run = m.get("run") or {}
        settings = run.get("settings") or {}
        state = "complete" if run.get("complete", True) else \
            f"INCOMPLETE: {run.get('rows')} of {run.get('expected_rows')} images"
        lines.append(f"- **{name}**: `{run.get('predictions', '?')}` ({state}); model `{settings.get('model', '?')}`,"
                     f" backend {settings.get('backend', '?')}, recipe {settings.get('recipe_name', '?')}")
    lines += ["", "## Overall", ""]
    rows = [[label] + [fmt(m["overall"].get(key), kind) for _, m in runs] for label, key, kind in OVERALL_ROWS]
    lines += _table(["metric"] + names, rows)
    b = runs[0][1].get("bootstrap", {})
    lines += [f"Confidence intervals: {b.get('confidence', 0) * 100:g}% percentile bootstrap, "
              f"{b.get('samples')} resamples. Unparseable answers and unreadable images are wrong predictions, "
              f"never dropped. AUC uses the rows with P(fake) (answers that parse).", ""]
    lines += protocol_lines(runs)
    lines += consistency_lines(runs)

    lines += ["## Reasoning mode (think / no-think)", ""]
    rows = [["think rate"] + [fmt(m.get("think_rate"), "pct") for _, m in runs],
            ["mean response tokens"] + [fmt(m.get("mean_response_tokens"), "num") for _, m in runs]]
    if any(m.get("paired_share") is not None for _, m in runs):  # FakeVLM-R1's answers
        rows.append(["fully paired reasoning ([Why fake] each answered by [If real])"]
                    + [fmt(m.get("paired_share"), "pct") for _, m in runs])
    for mode in ("think", "no_think", "unknown"):
        for label, key, kind in (("share", "rate", "pct"), ("mean tokens", "mean_response_tokens", "num"),
                                 ("accuracy", "accuracy", "pct")):
            rows.append([f"{mode}: {label}"] + [fmt(m["modes"][mode].get(key), kind) for _, m in runs])
    lines += _table(["metric"] + names, rows)

    keys: list[str] = []
    for _, m in runs:
        keys += [k for k in m.get("groups", {}) if k not in keys]
    for key in keys:
        lines += [f"## Per {key}", ""]
        values: list[str] = []
        for _, m in runs:
            values += [v for v in m["groups"].get(key, {}).get("values", {}) if v not in values]
        # several runs: each metric's columns side by side (accuracy sft | accuracy grpo | ...)
        columns = GROUP_COLUMNS if len(runs) == 1 else [c for c in GROUP_COLUMNS if c[0] != "unparseable"]
        if not any(m.get("paired_share") is not None for _, m in runs):
            columns = [c for c in columns if c[0] != "paired_share"]
        header = [key] + [c if len(runs) == 1 else f"{c} {n}" for c, _ in columns for n in names]
        rows = []
        for v in values:
            row = [v]
            for c, kind in columns:
                for _, m in runs:
                    stats = m["groups"].get(key, {}).get("values", {}).get(v, {})
                    row.append(fmt(stats.get(c), kind))
            rows.append(row)
        mean_row = ["**mean**"]
        for c, kind in columns:
            for _, m in runs:
                mean = m["groups"].get(key, {}).get("mean", {})
                mean_row.append(fmt(mean.get(c), kind) if c in mean else "")
        rows.append(mean_row)
        lines += _table(header, rows)
        cis = [f"{n}: {fmt(m['groups'].get(key, {}).get('mean_accuracy_ci'), 'ci')}" for n, m in runs]
        lines += [f"Mean accuracy over {key} values, bootstrap CI: " + "; ".join(cis), ""]

    if images:
        lines += ["## Plots", ""]
        lines += [f"![{title}]({file})" for title, file in images.items()]
        lines.append("")
    return "\n".join(lines)


PROTOCOL_ROWS = [("accuracy", "accuracy", "pct"), ("real recall (TNR)", "real_recall", "pct"),
                 ("fake recall (TPR)", "fake_recall", "pct"), ("F1 (fake)", "f1", "pct")]


def protocol_lines(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Strict figures beside those of a published parsing protocol (`eval score --protocol`), each named, so a
    run can be set beside a paper's table without mistaking one counting for the other."""
    protocols: list[str] = []
    for _, m in runs:
        for value in m["overall"].values():
            p = value.get("protocol") if isinstance(value, dict) else None
            if p and p not in protocols:
                protocols.append(p)
    if not protocols:
        return []
    lines = ["## Strict and paper-protocol figures", ""]
    rows = []
    for label, key, kind in PROTOCOL_ROWS:
        rows.append([f"{label}: strict (unparseable = wrong class)"] +
                    [fmt(m["overall"]["strict"].get(key), kind) for _, m in runs])
        for p in protocols:
            rows.append([f"{label}: {p} parsing (paper-comparable)"] +
                        [fmt((m["overall"].get(p) or {}).get(key), kind) for _, m in runs])
    for p in protocols:
        rows.append([f"{p}: answers decided by a coin flip"] +
                    [fmt((m["overall"].get(p) or {}).get("guessed"), "int") for _, m in runs])
    lines += _table(["metric"] + [n for n, _ in runs], rows)
    for p in protocols:
        counting = next((m["overall"][p]["counting"] for _, m in runs if m["overall"].get(p)), "")
        lines += [f"{p}: {counting}. Use it only to compare with published tables; the strict figures are this "
                  f"project's.", ""]
    return lines


def consistency_lines(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """What the consistency rows mean, per run: which critic scored them, what was not scored, or why the metric
    was not computed."""
    out = []
    for name, m in runs:
        block = m.get("consistency")
        if not block:
            out.append(f"- {name}: logical consistency not computed (no critic scores were given to `eval score`)")
        elif not block.get("computed"):
            out.append(f"- {name}: logical consistency not computed: {block.get('reason')}")
        else:
            critic = block.get("critic") or {}
            out.append(f"- {name}: logical consistency from critic `{critic.get('model')}` (template "
                       f"{critic.get('template')}) at {critic.get('url')}: mean of {block['scored']} scored answers; "
                       f"not scored: {block['fallback']} without a score from the critic (fallback), "
                       f"{block['no_reasoning']} without reasoning, {block['image_error']} image errors")
    return ["Logical consistency (0..1, the critic's score of each answer's reasoning; bootstrap CI over answers):",
            ""] + out + [""]


def read_curves(specs: list[str]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """`[RUN/]STAGE=PATH` (PATH: a <run>/curves/<stage>.jsonl) -> (run name, stage, rows)."""
    from ..pipeline.curves import read

    return [(run, stage, read(path)) for run, stage, path in curve_specs(specs)]


def skipped_components(specs: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    """(run, stage) -> {component: why} for reward components the reward declares but no sample carried (the
    curves' meta file, pipeline/curves.py)."""
    from ..pipeline.curves import read_meta

    out = {}
    for run, stage, path in curve_specs(specs):
        skipped = read_meta(path).get("skipped_components")
        if isinstance(skipped, dict) and skipped:
            out[(run, stage)] = {str(k): str(v) for k, v in skipped.items()}
    return out


def curve_specs(specs: list[str]) -> list[tuple[str, str, str]]:
    """`[RUN/]STAGE=PATH` -> (run name, stage, path), each path checked to exist."""
    out = []
    for spec in specs:
        # run names and paths may hold '=' themselves (a sweep point's 'learning_rate=1e-4'): the label ends at
        # the first '=' whose right-hand side is an existing file, else at the first '='
        cuts = [i for i, c in enumerate(spec) if c == "="]
        if not cuts or cuts[0] == 0:
            raise ValueError(f"--curves {spec!r}: write it as STAGE=PATH or RUN/STAGE=PATH, e.g. sft=run/curves/sft.jsonl")
        cut = next((i for i in cuts if Path(spec[i + 1:]).is_file()), cuts[0])
        label, path = spec[:cut], spec[cut + 1:]
        run, _, stage = label.rpartition("/")
        if not Path(path).is_file():
            raise ValueError(f"--curves {spec}: {path} not found (the pipeline writes <run>/curves/<stage>.jsonl)")
        out.append((run or "run", stage, path))
    return out


def _mean_of(points: list[tuple[int, float]]) -> float:
    return sum(v for _, v in points) / len(points)


def curves_markdown(curves: list[tuple[str, str, list[dict[str, Any]]]],
                    skipped: Optional[dict[tuple[str, str], dict[str, str]]] = None) -> list[str]:
    """First and last logged value of each curve, so the page says what the plot shows; a reward component the
    reward declares but no sample carried is a row that says it was skipped, and why."""
    rows = []
    for run, stage, data in curves:
        for key in ("loss", "token_acc", "reward", "think_rate", "paired_rate", "response_length"):
            points = [r for r in data if r.get(key) is not None]
            if points:
                rows.append([run, stage, key, f"{len(points)}", f"{points[0][key]:.4g} (step {points[0]['step']})",
                             f"{points[-1][key]:.4g} (step {points[-1]['step']})"])
        for source in sorted({s for r in data for s in (r.get("think_rate_by_source") or {})}):
            points = [(r["step"], r["think_rate_by_source"][source]) for r in data
                      if source in (r.get("think_rate_by_source") or {})]
            rows.append([run, stage, f"think_rate {source}", f"{len(points)}",
                         f"{_mean_of(points[:8]):.4g} (mean of steps {points[0][0]}-{points[:8][-1][0]})",
                         f"{_mean_of(points[-8:]):.4g} (mean of steps {points[-8:][0][0]}-{points[-1][0]})"])
        comps = sorted({c for r in data for c in (r.get("reward_components") or {})})
        for comp in comps:
            points = [r for r in data if (r.get("reward_components") or {}).get(comp) is not None]
            rows.append([run, stage, f"reward: {comp}", f"{len(points)}",
                         f"{points[0]['reward_components'][comp]:.4g} (step {points[0]['step']})",
                         f"{points[-1]['reward_components'][comp]:.4g} (step {points[-1]['step']})"])
        for comp, why in (skipped or {}).get((run, stage), {}).items():
            rows.append([run, stage, f"reward: {comp}", "0", "skipped", why])
    return ["## Training curves", ""] + _table(["run", "stage", "metric", "points", "first", "last"], rows)


def build_report(metrics_files: list[str | Path], names: Optional[list[str]], out_dir: str | Path,
                 curves: Optional[list[str]] = None, allow_different_eval_sets: bool = False) -> dict[str, Path]:
    """Write report.json, report.md and the PNGs into out_dir; return what was written. `curves`: training
    curves as `[RUN/]STAGE=PATH` (pipeline/curves.py files), plotted on one page. Runs scored on different
    eval sets are refused (ValueError) unless allowed, and then the report says so at the top."""
    import json

    from ..bounded import read_file

    if names is not None and len(names) != len(metrics_files):
        raise ValueError(f"--names has {len(names)} names for {len(metrics_files)} metrics files")
    names = names or [Path(f).stem for f in metrics_files]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must differ: {', '.join(names)} (pass --names)")
    runs = []
    for name, f in zip(names, metrics_files):
        try:
            data = json.loads(read_file(str(f), MAX_METRICS_BYTES).decode("utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ValueError(f"{f}: cannot read metrics ({exc}); write it with `eval score`") from None
        if not isinstance(data, dict) or not isinstance(data.get("overall"), dict):
            raise ValueError(f"{f}: not a metrics file from `eval score` (no 'overall')")
        missing = missing_parts(data)
        if missing:
            raise ValueError(f"{f}: a metrics file without {', '.join(missing)} (from another version of "
                             "`eval score`, or edited): score the predictions again with this version")
        runs.append((name, data))
    mismatch = eval_set_mismatch(runs)
    if mismatch and not allow_different_eval_sets:
        raise ValueError(f"the runs were scored on different eval sets ({mismatch}): side by side their metrics "
                         f"are not comparable; score every run on the same eval set, or pass "
                         f"--allow-different-eval-sets to report them anyway (with a warning)")
    training = read_curves(list(curves or []))
    skipped = skipped_components(list(curves or []))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    written: dict[str, Path] = {}
    if training:
        p = plots.training_curves(training, out / "training_curves.png")
        if p:
            images["training curves"] = p.name
    for (name, m), stem in zip(runs, unique_stems(names)):
        p = plots.confusion(m, name, out / f"confusion_{stem}.png")
        images[f"confusion matrix: {name}"] = p.name
    for key in ("category", "generator", "source"):
        p = plots.group_bars(runs, key, "accuracy", out / f"accuracy_by_{key}.png", f"accuracy by {key}")
        if p:
            images[f"accuracy by {key}"] = p.name
    p = plots.group_bars(runs, "category", "think_rate", out / "think_rate_by_category.png", "think rate by category")
    if p:
        images["think rate by category"] = p.name
    p = plots.length_histogram(runs, out / "response_length.png")
    images["response length"] = p.name
    written["json"] = write_json_atomic(out / "report.json", {
        "runs": {n: m for n, m in runs}, "images": images,
        "curves": [{"run": r, "stage": st, "steps": len(rows), "skipped_components": skipped.get((r, st), {})}
                   for r, st, rows in training]})
    text = markdown(runs, images)
    if training:
        text += "\n" + "\n".join(curves_markdown(training, skipped))
    written["markdown"] = write_text_atomic(out / "report.md", text)
    for title, file in images.items():
        written[title] = out / file
    return written


MAX_METRICS_BYTES = 256 * 2**20  # a metrics file is kilobytes to a few megabytes


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def unique_stems(names: list[str]) -> list[str]:
    """A file-name-safe stem per run name, distinct even where two names differ only in unsafe characters
    ('a/b' and 'a_b': the second gets '_2'), so no run's file overwrites another's."""
    stems: list[str] = []
    for name in names:
        stem, n = _safe(name), 1
        while stem in stems:
            n += 1
            stem = f"{_safe(name)}_{n}"
        stems.append(stem)
    return stems


# What the report reads from each run's metrics (path -> type): checked up front, so a metrics file of another
# shape is one message naming what is missing, never a KeyError halfway through the report.
REQUIRED = {("overall", "confusion", "matrix"): list, ("overall", "confusion", "cols_pred"): list,
            ("overall", "confusion", "rows_true"): list, ("modes", "think"): dict, ("modes", "no_think"): dict,
            ("modes", "unknown"): dict, ("response_tokens_histogram", "edges"): list,
            ("response_tokens_histogram", "counts"): dict}


def missing_parts(data: dict[str, Any]) -> list[str]:
    out = []
    for path, kind in REQUIRED.items():
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, kind):
            out.append(".".join(path))
    matrix = data.get("overall", {}).get("confusion", {}).get("matrix") if not out else None
    if matrix is not None and not (matrix and all(isinstance(r, list) and r and all(
            isinstance(v, int) and not isinstance(v, bool) for v in r) for r in matrix)):
        out.append("overall.confusion.matrix as rows of counts")
    if "groups" in data and not isinstance(data["groups"], dict):
        out.append("groups as an object")
    return out
