"""Logical consistency in evaluation: the critic scores each reasoning answer of an evaluated model.

FakeVLM-R1 reports the consistency an external critic gives the reasoning beside accuracy. `eval consistency`
asks the recipe's critic exactly as the GRPO reward does (rewards/critic.py's client: same template, same
timeout / retries / concurrency / fallback bounds) and writes one score per answer; `eval score --consistency`
folds them into the metrics (mean with a bootstrap CI, overall and per group).

  - only answers with reasoning (a non-empty think block) are scored; the others are counted apart
    (`no_reasoning`), as are rows whose image could not be read at inference (`image_errors`);
  - a reply without a score (or no reply) is the client's fallback, counted (`fallback`) and left out of the
    mean: the mean is over the scores the critic gave;
  - with no critic configured (critic.mode off) the file says so, and the report says the metric was not computed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from .reader import GROUP_KEYS, EvalDataError

NOT_CONFIGURED = "no critic configured (critic.mode is off)"


def not_computed(reason: str) -> dict[str, Any]:
    return {"computed": False, "reason": reason}


def critic_client(model: Any, url: Optional[str] = None) -> tuple[Any, dict[str, Any]]:
    """(the reward's critic client for the recipe's critic section, what was asked: url, model, template)."""
    from ..critic.probe import critic_module
    from ..engines.critic import CLIENT_KWARGS, endpoint, question

    critic = model.critic
    base_url = url or endpoint(model)
    module = critic_module()
    fields = {field: getattr(critic, field) for field, _ in CLIENT_KWARGS}
    config = module.CriticConfig(
        base_url=str(base_url), model=fields["served_model_name"], api_key_env=fields["api_key_env"],
        timeout_s=float(fields["timeout_s"]), concurrency=int(fields["concurrency"]), retries=int(fields["retries"]),
        fallback_score=float(fields["fallback_score"]), max_tokens=fields["max_tokens"], template=fields["template"],
        question=question(model), report_every_s=0.0)
    asked = {"url": module.redact_url(str(base_url)), "model": config.model, "template": config.template}
    return module.CriticClient(config), asked


async def _score_all(client: Any, jobs: list[tuple[int, str, str, str, Any]]) -> list[Any]:
    try:  # the client's semaphore bounds what is in flight; gather keeps the order
        return await asyncio.gather(*(client.score(reasoning, answer, image, response=response)
                                      for _, reasoning, answer, response, image in jobs))
    finally:
        await client.aclose()


def score_rows(rows: Iterable[dict[str, Any]], client: Any, answer_format: str,
               response_prefix: Optional[str] = None) -> dict[str, Any]:
    """Per answer: the critic's score (None where it fell back), or why it was not asked."""
    from ..answers import parse_answer
    from .responses import row_key

    out: list[dict[str, Any]] = []
    jobs: list[tuple[int, str, str, str, Any]] = []
    for number, row in enumerate(rows, 1):
        key = row_key(row)
        if key is None:
            raise EvalDataError([f"row {number}: names no image (key / file_path); consistency scores are joined "
                                 f"on it"])
        entry: dict[str, Any] = {"key": key, **{k: str(row[k]) for k in GROUP_KEYS if row.get(k) not in (None, "")}}
        response = row.get("response")
        if row.get("error") is not None:
            entry["status"] = "image_error"
        elif not isinstance(response, str):
            entry["status"] = "no_reasoning"
        else:
            parsed = parse_answer(response, answer_format, response_prefix)
            if not parsed.reasoning:
                entry["status"] = "no_reasoning"
            else:
                jobs.append((len(out), parsed.reasoning, parsed.label or "(no valid answer)", response,
                             row.get("file_path") or row.get("image")))
        out.append(entry)
    results = asyncio.run(_score_all(client, jobs)) if jobs else []
    for (index, *_), result in zip(jobs, results):
        out[index].update(status="fallback" if result.fallback else "scored",
                          score=None if result.fallback else float(result.score), failures=int(result.failures))
    return {"computed": True, "rows": out, "critic_calls": client.stats.summary()}


def _ci(values: np.ndarray, samples: int, confidence: float, seed: int) -> Optional[list[float]]:
    """Percentile bootstrap CI of the mean (resampling the scored answers)."""
    if samples <= 0 or len(values) == 0:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def _summary(entries: list[dict[str, Any]], samples: int, confidence: float, seed: int) -> dict[str, Any]:
    scores = np.asarray([e["score"] for e in entries if e.get("status") == "scored"], dtype=np.float64)
    counts = {s: sum(1 for e in entries if e.get("status") == s)
              for s in ("scored", "fallback", "no_reasoning", "image_error")}
    return {"mean": float(scores.mean()) if len(scores) else None, "ci": _ci(scores, samples, confidence, seed),
            **counts}


def summarize(data: dict[str, Any], keys: set[str], samples: int, confidence: float, seed: int) -> dict[str, Any]:
    """The metrics' `consistency` block from an `eval consistency` file, checked against the scored rows' keys."""
    if not data.get("computed"):
        return not_computed(str(data.get("reason") or NOT_CONFIGURED))
    entries = data.get("rows")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "key" in e for e in entries):
        raise EvalDataError(["the consistency file has no 'rows' list of {key, status, ...}; write it with "
                             "`eval consistency`"])
    theirs = {str(e["key"]) for e in entries}
    if theirs != keys:
        raise EvalDataError([f"the consistency scores are for other images ({len(theirs - keys)} not in the "
                             f"predictions, {len(keys - theirs)} missing): run `eval consistency` on these "
                             f"predictions"])
    block: dict[str, Any] = {"computed": True, "critic": data.get("critic"), **_summary(entries, samples, confidence,
                                                                                         seed), "groups": {}}
    for g in GROUP_KEYS:
        values = sorted({e[g] for e in entries if g in e})
        if values:
            block["groups"][g] = {v: _summary([e for e in entries if e.get(g) == v], samples, confidence, seed)
                                  for v in values}
    return block


def attach(metrics: dict[str, Any], block: dict[str, Any]) -> None:
    """Put the consistency block into a metrics dict: overall, and each group value (for the report's tables)."""
    metrics["consistency"] = block
    if not block.get("computed"):
        return
    metrics["overall"]["consistency"] = block["mean"]
    metrics["overall"]["consistency_ci"] = block["ci"]
    metrics["overall"]["consistency_scored"] = block["scored"]
    metrics["overall"]["consistency_not_scored"] = block["fallback"] + block["no_reasoning"] + block["image_error"]
    for g, values in block["groups"].items():
        table = metrics.get("groups", {}).get(g, {}).get("values", {})
        for v, stats in values.items():
            if v in table:
                table[v]["consistency"] = stats["mean"]


def read(path: str | Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise EvalDataError([f"{path}: cannot read consistency scores ({type(exc).__name__}); write them with "
                             f"`eval consistency`"]) from None
    if not isinstance(data, dict) or "computed" not in data:
        raise EvalDataError([f"{path}: not a file from `eval consistency` (no 'computed')"])
    return data
