"""PNG plots from metrics dicts (matplotlib, headless Agg backend). Each run gets its colour; several runs share axes
so a comparison reads at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import atomic_open


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig: Any, path: Path) -> Path:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def confusion(metrics: dict[str, Any], name: str, path: Path) -> Path:
    plt = _pyplot()
    conf = metrics["overall"]["confusion"]
    matrix = conf["matrix"]
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(conf["cols_pred"])), conf["cols_pred"])
    ax.set_yticks(range(len(conf["rows_true"])), conf["rows_true"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    ax.set_title(f"{name}: confusion (n={metrics['overall']['n']})")
    return _save(fig, path)


def group_bars(runs: list[tuple[str, dict[str, Any]]], key: str, metric: str, path: Path, title: str) -> Path | None:
    """Grouped bars of `metric` per value of group `key` (e.g. accuracy per category), one bar per run."""
    plt = _pyplot()
    values: list[str] = []
    for _, m in runs:
        for v in m.get("groups", {}).get(key, {}).get("values", {}):
            if v not in values:
                values.append(v)
    if not values:
        return None
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(values) * len(runs) + 1.5), 3.4))
    for r, (name, m) in enumerate(runs):
        table = m.get("groups", {}).get(key, {}).get("values", {})
        ys = [(table.get(v) or {}).get(metric) for v in values]
        xs = [i + (r - (len(runs) - 1) / 2) * width for i in range(len(values))]
        ax.bar(xs, [y if y is not None else 0 for y in ys], width, label=name)
    ax.set_xticks(range(len(values)), values, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title)
    if len(runs) > 1:
        ax.legend()
    return _save(fig, path)


def length_histogram(runs: list[tuple[str, dict[str, Any]]], path: Path) -> Path:
    """Response-length histogram per run, think and no-think stacked apart (Fake-HR1's efficiency claim)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.2), squeeze=False)
    for ax, (name, m) in zip(axes[0], runs):
        hist = m["response_tokens_histogram"]
        edges = hist["edges"]
        lefts, widths = edges[:-1], [b - a for a, b in zip(edges[:-1], edges[1:])]
        bottom = [0] * len(lefts)
        for mode, counts in hist["counts"].items():
            ax.bar(lefts, counts, widths, bottom=bottom, align="edge", label=mode)
            bottom = [b + c for b, c in zip(bottom, counts)]
        ax.set_xlabel("response tokens")
        ax.set_ylabel("images")
        ax.set_title(name)
        ax.legend()
    return _save(fig, path)
