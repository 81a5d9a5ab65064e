"""Training curves: each training stage's per-step metrics, read from what the framework itself logged, in one schema.

One row per logged step, written to `<run>/curves/<stage>.jsonl` (and `<stage>.meta.json`: engine, the files read,
what could not be collected and why):

    {"step": 120, "loss": .., "lr": .., "grad_norm": .., "token_acc": .., "reward": .., "reward_std": ..,
     "reward_components": {"acc": .., "format": ..}, "think_rate": .., "think_rate_by_source": {"genimage": ..},
     "paired_rate": .., "response_length": .., "kl": ..}

A metric the framework did not log for that step is null (never 0). Where each value comes from:

- ms-swift (SFT and GRPO) writes `logging.jsonl` next to its checkpoints whatever `--report_to` says (tensorboard,
  wandb, swanlab, none): loss, learning_rate, grad_norm, token_acc (SFT); reward, reward_std,
  completions/mean_length (tokens), kl (GRPO). The step is its `global_step/max_steps`.
- Which keys of a reward result are components (terms of its score) is what the reward declares: each plugin file
  (and the group-reward manager) names them in a module-level `COMPONENTS` tuple (`declared_components`); the
  other keys (bookkeeping such as hybrid_group_size, counts such as reasoning_words, think flags) are not plotted
  as components. A declared component that no scored sample carries (FakeVLM-R1's consistency when no critic
  endpoint is configured) is listed in the meta's `skipped_components`, and the report says it was skipped. A
  plugin that declares nothing has every numeric key but `score` taken as a component, and the meta says so.
- ms-swift logs only the ORM's total score, so GRPO's reward components and think-rate come from the reward
  adapter's per-batch trace (rewards/swift_orm.py, FAKEHR_REWARD_TRACE_DIR, which the pipeline sets): the mean of
  every numeric component per batch, and the share of completions the method's parser (answers.py) reads as think
  mode. ms-swift scores one batch per optimizer step here (steps_per_generation = 1), so batch k is step k; when the
  counts differ the components are left out and the meta says why.
- verl: its `file` logger (VERL_FILE_LOGGER_PATH, set by the pipeline) when on, else the `console` logger's
  `step:N - key:value - ...` lines in the stage log, else tensorboard event files (TENSORBOARD_DIR, set by the
  pipeline): actor/pg_loss, actor/lr, actor/grad_norm, critic/score/mean (reward), response_length/mean,
  actor/kl_loss. verl keeps reward components out of its training metrics; they and the think-rate come from its
  rollout dumps (trainer.rollout_data_dir: `<step>.jsonl`, one row per sample with `output`, `score` and every
  reward_extra_info key) when the recipe turns them on.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

FIELDS = ("step", "loss", "lr", "grad_norm", "token_acc", "reward", "reward_std", "reward_components", "think_rate",
          "think_rate_by_source", "paired_rate", "response_length", "kl")

SWIFT_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "token_acc": "token_acc",
              "reward": "reward", "reward_std": "reward_std", "completions/mean_length": "response_length",
              "kl": "kl"}
VERL_KEYS = {"actor/pg_loss": "loss", "actor/lr": "lr", "actor/grad_norm": "grad_norm",
             "critic/score/mean": "reward", "response_length/mean": "response_length", "actor/kl_loss": "kl"}
_CONSOLE = re.compile(r"^step:(\d+) - (.*)$")


class CurvesError(ValueError):
    """A training stage finished but its framework's metrics cannot be read."""


def _num(value: Any) -> Optional[float]:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _row(step: int) -> dict[str, Any]:
    row: dict[str, Any] = {k: None for k in FIELDS}
    row.update(step=step, reward_components={})
    return row


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The object rows of a log or curves file through the one jsonl reader (regular files only, bounded lines); a
    line that is not an object (a torn last line of a killed run, a framework's stray print) is passed over."""
    from ..jsonl import read_jsonl

    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    for row in read_jsonl(path, on_error="collect", tail="skip"):
        if row.error is None and isinstance(row.value, dict):
            yield row.value


# ------------------------------------------------------------------------------------------------ ms-swift
def swift_logging_file(checkpoint: str | Path) -> Path:
    """ms-swift writes logging.jsonl in the versioned output folder that holds its checkpoint-N folders."""
    path = Path(checkpoint).parent / "logging.jsonl"
    if not path.is_file():
        raise CurvesError(f"ms-swift wrote no {path.name} beside {checkpoint}")
    return path


def swift_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of ms-swift's logging.jsonl that describe a training step (not the closing summary, not eval rows)."""
    rows = []
    for data in _jsonl(path):
        progress = str(data.get("global_step/max_steps", ""))
        if "/" not in progress or "train_runtime" in data or not any(k in data for k in ("loss", "reward")):
            continue
        row = _row(int(progress.split("/")[0]))
        for key, field in SWIFT_KEYS.items():
            if key in data:
                row[field] = _num(data[key])
        rows.append(row)
    return rows


def trace_batches(trace_dir: Path) -> list[dict[str, Any]]:
    """The reward adapter's batches (`<pid>-<n>.json`), in scoring order."""
    files = []
    for path in Path(trace_dir).glob("*.json"):
        pid, _, n = path.stem.partition("-")
        if pid.isdigit() and n.isdigit():
            files.append((int(n), int(pid), path))
    return [json.loads(p.read_text()) for _, _, p in sorted(files)]


def declared_components(files: Iterable[str | Path]) -> Optional[list[str]]:
    """The reward components the reward's files declare (module-level `COMPONENTS`, in order, duplicates once);
    None when one of them declares none (then every numeric key but `score` is taken, see `batch_stats`).
    The files are loaded by the one plugin loader, as preflight and the frameworks load them."""
    from ..plugins import load_plugin_file

    names: list[str] = []
    for file in files:
        declared = getattr(load_plugin_file(file), "COMPONENTS", None)
        if not isinstance(declared, (tuple, list)) or not all(isinstance(n, str) for n in declared):
            return None
        names += [n for n in declared if n not in names]
    return names


def batch_stats(completions: list[Any], results: list[Any], answer_format: str,
                response_prefix: Optional[str], components: Optional[Iterable[str]] = None,
                sources: Optional[list[Any]] = None) -> dict[str, Any]:
    """Mean of each reward component (the declared ones; without a declaration every numeric key but `score`),
    think-rate by the method's parser, over one batch; with each completion's data source, the think-rate per
    source too (easy and hard images apart: what Fake-HR1's hybrid reward changes); for FakeVLM-R1 answers the
    share whose reasoning is fully paired (answers.pairing: what its dialectic reward changes)."""
    from ..answers import parse_answer

    wanted = None if components is None else set(components)
    sums: dict[str, list[float]] = {}
    for result in results:
        if isinstance(result, dict):
            for key, value in result.items():
                x = _num(value)
                if x is None or isinstance(value, bool) or key == "score" or (wanted is not None and key not in wanted):
                    continue
                sums.setdefault(key, []).append(x)
    parsed = [parse_answer(c if isinstance(c, str) else "", answer_format, response_prefix) for c in completions]
    modes = [p.mode for p in parsed]
    by_source: dict[str, list[bool]] = {}
    if sources is not None and len(sources) == len(modes):
        for source, mode in zip(sources, modes):
            by_source.setdefault(str(source), []).append(mode == "think")
    paired = [p.paired for p in parsed if p.paired is not None]
    return {"reward_components": {k: sum(v) / len(v) for k, v in sums.items()},
            "think_rate": (sum(m == "think" for m in modes) / len(modes)) if modes else None,
            "think_rate_by_source": {s: sum(v) / len(v) for s, v in sorted(by_source.items())} or None,
            "paired_rate": sum(paired) / len(paired) if paired else None}


# ------------------------------------------------------------------------------------------------ verl
def verl_file_rows(path: Path) -> list[dict[str, Any]]:
    """verl's FileLogger: one `{"step": N, "data": {metric: value}}` per line."""
    return [_verl_row(int(d["step"]), d.get("data") or {}) for d in _jsonl(path) if "step" in d]


def verl_console_rows(lines: Iterable[str]) -> list[dict[str, Any]]:
    """verl's console logger (LocalLogger): `step:N - key:value - key:value` (values pprint-formatted numbers)."""
    rows = []
    for line in lines:
        m = _CONSOLE.match(line.strip())
        if not m:
            continue
        data = {}
        for part in m.group(2).split(" - "):
            key, sep, value = part.rpartition(":")
            if sep:
                try:
                    data[key] = ast.literal_eval(value.strip())
                except (ValueError, SyntaxError):
                    continue
        rows.append(_verl_row(int(m.group(1)), data))
    return rows


def verl_tensorboard_rows(tb_dir: Path) -> list[dict[str, Any]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: dict[int, dict[str, float]] = {}
    for events in sorted(Path(tb_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            for event in acc.Scalars(tag):
                steps.setdefault(int(event.step), {})[tag] = event.value
    return [_verl_row(step, data) for step, data in sorted(steps.items())]


def _verl_row(step: int, data: dict[str, Any]) -> dict[str, Any]:
    row = _row(step)
    for key, field in VERL_KEYS.items():
        if key in data:
            row[field] = _num(data[key])
    return row


def verl_rollout_stats(rollout_dir: Path, answer_format: str, response_prefix: Optional[str],
                       components: Optional[Iterable[str]] = None) -> dict[int, dict]:
    """Per step, from verl's rollout dumps (`<step>.jsonl`, one sample a line: output, score, extra info keys)."""
    out = {}
    for path in Path(rollout_dir).glob("*.jsonl"):
        if not path.stem.isdigit():
            continue
        samples = list(_jsonl(path))
        stats = batch_stats([s.get("output") for s in samples],
                            [{k: v for k, v in s.items() if k not in ("input", "output", "gts", "step")}
                             for s in samples], answer_format, response_prefix, components,
                            [s.get("data_source") for s in samples] if all("data_source" in s for s in samples)
                            else None)
        out[int(path.stem)] = stats
    return out


# ------------------------------------------------------------------------------------------------ collection
def collect(stage: str, engine: str, *, checkpoint: Optional[str] = None, trace_dir: Optional[Path] = None,
            log_file: Optional[Path] = None, verl_file: Optional[Path] = None, tb_dir: Optional[Path] = None,
            rollout_dir: Optional[Path] = None, answer_format: str = "fake_hr1",
            response_prefix: Optional[str] = None,
            components: Optional[list[str]] = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, meta) for one training stage. No logged step is not an error (a 2-step check run with logging_steps
    10 has none): the meta says so and the report shows it; a missing ms-swift logging.jsonl is (CurvesError).
    `components`: what the reward declares (`declared_components`), None when it declares nothing."""
    meta: dict[str, Any] = {"stage": stage, "engine": engine, "sources": {}, "not_collected": {}}
    if engine == "swift":
        if checkpoint is None:
            raise CurvesError(f"{stage}: no ms-swift checkpoint to find logging.jsonl beside")
        logging_file = swift_logging_file(checkpoint)
        rows = swift_rows(logging_file)
        meta["sources"]["metrics"] = str(logging_file)
        if stage == "grpo":
            _add_trace(rows, meta, trace_dir, answer_format, response_prefix, components)
    elif engine == "verl":
        rows = []
        if verl_file is not None and Path(verl_file).is_file():
            rows, meta["sources"]["metrics"] = verl_file_rows(Path(verl_file)), str(verl_file)
        if not rows and log_file is not None and Path(log_file).is_file():
            with open(log_file, encoding="utf-8", errors="replace") as handle:
                rows, meta["sources"]["metrics"] = verl_console_rows(handle), str(log_file)
        if not rows and tb_dir is not None and Path(tb_dir).is_dir():
            rows, meta["sources"]["metrics"] = verl_tensorboard_rows(Path(tb_dir)), str(tb_dir)
        if not rows:
            meta["not_collected"]["metrics"] = ("verl logged no metrics that can be read: put console or file in "
                                                "trainer.logger (tensorboard works too)")
        if rollout_dir is not None and Path(rollout_dir).is_dir():
            stats = verl_rollout_stats(Path(rollout_dir), answer_format, response_prefix, components)
            for row in rows:
                row.update(stats.get(row["step"], {}))
            meta["sources"]["reward_components"] = str(rollout_dir)
            _note_components(rows, meta, components)
        else:
            meta["not_collected"]["reward_components"] = ("verl keeps reward components out of its training "
                                                          "metrics; set trainer.rollout_data_dir to collect them")
            meta["not_collected"]["think_rate"] = meta["not_collected"]["reward_components"]
    else:
        raise CurvesError(f"{stage}: no curve reader for engine {engine!r}")
    if not rows and "metrics" not in meta["not_collected"]:
        meta["not_collected"]["metrics"] = (f"{meta['sources'].get('metrics')} has no training step (fewer steps "
                                            f"than logging_steps?)")
    meta["steps"] = len(rows)
    return rows, meta


def _note_components(rows: list[dict[str, Any]], meta: dict[str, Any], components: Optional[list[str]]) -> None:
    """Which components were taken and why; a declared one that no scored sample carried is `skipped`."""
    if components is None:
        meta["components"] = ("the reward declares no COMPONENTS: every numeric key of its results but score is "
                              "plotted as a component (declare COMPONENTS = (...) in the plugin to choose)")
        return
    meta["components"] = list(components)
    seen = {c for r in rows for c in (r.get("reward_components") or {})}
    skipped = [c for c in components if c not in seen]
    if rows and skipped:
        meta["skipped_components"] = {c: "declared by the reward but absent from every scored sample (a component "
                                         "that needs a service this run did not configure, e.g. FakeVLM-R1's "
                                         "consistency without a critic endpoint)" for c in skipped}


def _add_trace(rows: list[dict[str, Any]], meta: dict[str, Any], trace_dir: Optional[Path], answer_format: str,
               response_prefix: Optional[str], components: Optional[list[str]] = None) -> None:
    if trace_dir is None or not Path(trace_dir).is_dir():
        meta["not_collected"]["reward_components"] = "no reward trace (FAKEHR_REWARD_TRACE_DIR) was written"
        return
    batches = trace_batches(Path(trace_dir))
    last_step = max((r["step"] for r in rows), default=0)
    if len(batches) != last_step:
        meta["not_collected"]["reward_components"] = (f"{len(batches)} scored batches for {last_step} steps: "
                                                      f"batches cannot be matched to steps")
        return
    by_step = {i + 1: batch_stats(b.get("completions") or [], b.get("results") or [], answer_format,
                                  response_prefix, components, b.get("data_source")) for i, b in enumerate(batches)}
    for row in rows:
        row.update(by_step.get(row["step"], {}))
    meta["sources"]["reward_components"] = str(trace_dir)
    _note_components(rows, meta, components)


def write(run_dir: Path, stage: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    from ..io import write_json_atomic, write_text_atomic

    out = Path(run_dir) / "curves"
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{stage}.meta.json", meta)
    return write_text_atomic(out / f"{stage}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def read(path: str | Path) -> list[dict[str, Any]]:
    return list(_jsonl(Path(path)))


def read_meta(path: str | Path) -> dict[str, Any]:
    """The meta written beside a curves file (`<stage>.meta.json` for `<stage>.jsonl`); {} when there is none."""
    meta = Path(path).with_suffix(".meta.json")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
