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


# Training curves (pipeline/curves.py rows): one page, SFT and GRPO panels, every run in its own colour.
CURVE_PANELS = (  # (stage, title, field or reward_components, y label)
    ("sft", "SFT loss", "loss", "loss"),
    ("sft", "SFT token accuracy", "token_acc", "token accuracy"),
    ("sft", "SFT learning rate", "lr", "lr"),
    ("grpo", "GRPO reward (total: solid, components: dashed)", "reward", "reward"),
    ("grpo", "GRPO think-rate per source (dots: each step's batch; line: mean of the last 8)", "think_rate_by_source",
     "share of think answers"),
    ("grpo", "GRPO fully paired reasoning (dots: each step; line: mean of the last 8)", "paired_rate",
     "share fully paired"),
    ("grpo", "GRPO mean response length", "response_length", "tokens"),
    ("grpo", "GRPO loss", "loss", "loss"),
    ("grpo", "GRPO learning rate", "lr", "lr"),
)


ROLLING = 8  # steps in the rolling mean drawn over per-step shares (one step's batch is a few samples: noisy)


def _rolling(xs: list[int], ys: list[float]) -> list[float]:
    return [sum(ys[max(0, i - ROLLING + 1):i + 1]) / len(ys[max(0, i - ROLLING + 1):i + 1]) for i in range(len(xs))]


def _series(rows: list[dict[str, Any]], key: str, component: str | None = None) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in rows:
        if key == "think_rate_by_source" and component is None:  # any source: does the panel have data
            value = next(iter((row.get(key) or {}).values()), None)
        elif key == "think_rate_by_source":
            value = (row.get(key) or {}).get(component)
        else:
            value = (row.get("reward_components") or {}).get(component) if component else row.get(key)
        if value is not None:
            xs.append(row["step"])
            ys.append(value)
    return xs, ys


def training_curves(curves: list[tuple[str, str, list[dict[str, Any]]]], path: Path) -> Path | None:
    """curves: (run name, stage, rows). Panels with no data in any run are left out; None when nothing to plot."""
    plt = _pyplot()
    panels = [p for p in CURVE_PANELS
              if any(stage == p[0] and _series(rows, p[2])[0] for _, stage, rows in curves)]
    if not panels:
        return None
    cols = 2
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(11, 3.0 * nrows), squeeze=False)
    runs = list(dict.fromkeys(name for name, _, _ in curves))
    colour = {name: f"C{i % 10}" for i, name in enumerate(runs)}
    for ax, (stage, title, key, ylabel) in zip(axes.flat, panels):
        for name, st, rows in curves:
            if st != stage:
                continue
            if key == "think_rate_by_source":
                sources = sorted({s for r in rows for s in (r.get(key) or {})})
                for j, source in enumerate(sources):
                    sx, sy = _series(rows, key, source)
                    ax.plot(sx, sy, color=colour[name], linestyle="none", marker=("o", "^", "s")[j % 3], alpha=0.3,
                            markersize=3)
                    ax.plot(sx, _rolling(sx, sy), color=colour[name], linestyle=("-", "--", ":")[j % 3],
                            label=f"{name} {source}")
                continue
            xs, ys = _series(rows, key)
            if key == "paired_rate" and xs:
                ax.plot(xs, ys, color=colour[name], linestyle="none", marker="o", alpha=0.3, markersize=3)
                ax.plot(xs, _rolling(xs, ys), color=colour[name], label=name)
                continue
            if xs:
                ax.plot(xs, ys, color=colour[name], label=f"{name} {key}" if key == "reward" else name,
                        marker="." if len(xs) < 30 else None)
            if key == "reward":
                names = sorted({c for r in rows for c in (r.get("reward_components") or {})})
                for j, comp in enumerate(names):
                    cx, cy = _series(rows, key, comp)
                    ax.plot(cx, cy, color=colour[name], linestyle=("--", ":", "-.")[j % 3], alpha=0.55 + 0.1 * (j % 3),
                            label=f"{name} {comp}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if key in ("think_rate", "think_rate_by_source", "paired_rate", "token_acc"):
            ax.set_ylim(-0.05, 1.05)
        if key == "loss" and stage == "sft":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
