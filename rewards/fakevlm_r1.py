"""FakeVLM-R1 (critical thinking) reward: a verl `compute_score` plugin (async), loaded by file path.

Answer format: `<think>` holding, per artifact clue, a forgery hypothesis `[Why fake] ...` immediately followed by
an authenticity counter-proof `[If real] ...`, then `<answer>Fake|Real</answer>`; parsed by the one strict parser
`fakehr_orchestra.answers.parse_answer(..., "fakevlm_r1")`.

Components, each in [0, 1]:
  correct      1 when the one <answer> tag after the reasoning holds exactly real/fake (any case) = ground truth
  format       1 for exactly one think block, then exactly one <answer>real|fake</answer>, nothing else
  dialectic    pairs / (pairs + orphans): a pair is a non-empty [Why fake] segment immediately followed by a
               non-empty [If real] segment; every other marker segment (a [Why fake] with no [If real] after it,
               an [If real] with no [Why fake] before it, an empty one) is an orphan; 0 when there is no pair.
               So it is 1 exactly when every [Why fake] is paired, there is at least one pair and none is empty.
  length       reasoning length in words vs the band [length_min_words, length_max_words]: 1 inside;
               below: words / min; above: max(0, 1 - (words - max) / max) (0 at twice the max); continuous.
  consistency  the critic's 0..1 score (rewards/critic.py); only when `critic_base_url` is set.

    score = sum(w_k * c_k) / sum(w_k)     over the active components              range [0, 1]

Defaults: w_correct 1.0, w_format 0.5, w_dialectic 0.5, w_consistency 0.5, w_length 0.25, length band 40..400
words, critic fallback 0.5, timeout 30 s, concurrency 16, retries 2, 64 reply tokens; the pipeline fills the
critic_* kwargs from the recipe's `critic:` section (engines/critic.py): `critic_template` names how the judge is
asked (fakehr_orchestra/critic/templates.py: json_score, or sophiavl_r1 which shows the judge `critic_question`
and the whole response), `critic_max_tokens: null` sends no limit. With no critic endpoint the consistency
component is dropped and the others renormalised (the denominator above loses w_consistency); its logged keys
are then absent for the whole run (verl needs the same keys on every sample).

Logged: score, acc, format, dialectic, length, pairs, reasoning_words, parse_failure, and with a critic:
consistency, critic_failures (failed requests for this sample), critic_fallback (1 when the fallback was used).

The critic API key is read from the env var named by `critic_api_key_env` (default CRITIC_API_KEY), never from the
recipe. The image for the critic comes from extra_info['image'] / ['images'] (path, URL, bytes or {'bytes'|'image'})
or the `images` kwarg (ms-swift); without one the critic judges the text alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from fakehr_orchestra.answers import pairing, parse_answer
from fakehr_orchestra.plugins import load_plugin_file


def _load(name: str) -> Any:
    """A sibling file of this folder, by path (this file is loaded by path too, so this folder is not a package)."""
    return load_plugin_file(Path(__file__).resolve().with_name(f"{name}.py"))


_shared = _load("_shared")
_critic = _load("critic")
_trust = _load("trust_grpo")

DEFAULTS: dict[str, Any] = {
    "w_correct": 1.0, "w_format": 0.5, "w_dialectic": 0.5, "w_consistency": 0.5, "w_length": 0.25,
    "length_min_words": 40, "length_max_words": 400,
    "critic_base_url": None, "critic_model": "critic", "critic_api_key_env": "CRITIC_API_KEY",
    "critic_timeout_s": 30.0, "critic_concurrency": 16, "critic_retries": 2, "critic_fallback_score": 0.5,
    "critic_max_tokens": 64, "critic_template": "json_score", "critic_question": "",
}
# the keys that are terms of `score` (the training curves plot these as reward components; pairs, reasoning_words,
# parse_failure and the critic_* counts are bookkeeping); consistency only when a critic endpoint is configured
COMPONENTS = ("acc", "format", "dialectic", "length", "consistency")
_CLIENTS: dict[Any, Any] = {}


def dialectic(reasoning: str) -> tuple[float, int]:
    """(dialectic component, number of pairs) for the think block's content: the one pairing parser
    (`fakehr_orchestra.answers.pairing`), which the eval's paired-reasoning metric uses too."""
    return pairing(reasoning)


def length_score(words: int, low: float, high: float) -> float:
    if words < low:
        return words / low if low > 0 else 1.0
    if words > high:
        return max(0.0, 1.0 - (words - high) / high) if high > 0 else 0.0
    return 1.0


def _max_tokens(kwargs: Mapping[str, Any]) -> int | None:
    """critic_max_tokens; null (None) sends none, as SophiaVL-R1 does (the server's limit applies)."""
    if "critic_max_tokens" in kwargs and kwargs["critic_max_tokens"] is None:
        return None
    return int(_shared.weight(kwargs, "critic_max_tokens", DEFAULTS["critic_max_tokens"]))


def critic_client(kwargs: Mapping[str, Any]) -> Any | None:
    """The process-wide client for this configuration, or None when no endpoint is configured."""
    base_url = kwargs.get("critic_base_url", DEFAULTS["critic_base_url"])
    if not base_url:
        return None
    config = _critic.CriticConfig(
        base_url=str(base_url),
        model=str(kwargs.get("critic_model") or DEFAULTS["critic_model"]),
        api_key_env=kwargs.get("critic_api_key_env", DEFAULTS["critic_api_key_env"]) or None,
        timeout_s=_shared.weight(kwargs, "critic_timeout_s", DEFAULTS["critic_timeout_s"]),
        concurrency=int(_shared.weight(kwargs, "critic_concurrency", DEFAULTS["critic_concurrency"])),
        retries=int(_shared.weight(kwargs, "critic_retries", DEFAULTS["critic_retries"])),
        fallback_score=_shared.weight(kwargs, "critic_fallback_score", DEFAULTS["critic_fallback_score"]),
        max_tokens=_max_tokens(kwargs),
        template=str(kwargs.get("critic_template") or DEFAULTS["critic_template"]),
        question=str(kwargs.get("critic_question") or DEFAULTS["critic_question"]),
    )
    client = _CLIENTS.get(config)
    if client is None:
        client = _CLIENTS[config] = _critic.CriticClient(config)
    return client


def critic_stats() -> list[tuple[str, Any]]:
    """(critic URL with credentials redacted, its CriticStats) for every critic this process called: what
    `fakehr-orchestra reward score` reports (HTTP status codes included) and judges (all calls failed: exit 1)."""
    return [(_critic.redact_url(c.config.base_url), c.stats) for c in _CLIENTS.values()]


def _image(extra_info: Any, kwargs: Mapping[str, Any]) -> Any:
    if isinstance(extra_info, Mapping):
        for key in ("image", "images", "image_path", "file_path"):
            if extra_info.get(key):
                return extra_info[key]
    return kwargs.get("images") or kwargs.get("image")


def rule_components(solution_str: Any, truth: str, kwargs: Mapping[str, Any]) -> tuple[dict[str, float], Any]:
    """Everything but the critic (sync, cheap), and the parse for the critic's prompt."""
    text = solution_str if isinstance(solution_str, str) else ""
    parsed = parse_answer(text, "fakevlm_r1", _shared.response_prefix(kwargs))
    words = len(parsed.reasoning.split())
    dia, pairs = dialectic(parsed.reasoning)
    low = _shared.weight(kwargs, "length_min_words", DEFAULTS["length_min_words"])
    high = max(low, _shared.weight(kwargs, "length_max_words", DEFAULTS["length_max_words"]))
    return {
        "acc": 1.0 if parsed.label is not None and parsed.label == truth else 0.0,
        "format": 1.0 if parsed.well_formed else 0.0,
        "dialectic": dia,
        "length": _shared.finite(length_score(words, low, high)),
        "pairs": float(pairs),
        "reasoning_words": float(words),
        "parse_failure": 1.0 if parsed.label is None else 0.0,
    }, parsed


def combine(parts: Mapping[str, float], kwargs: Mapping[str, Any], with_critic: bool) -> float:
    names = [("acc", "w_correct"), ("format", "w_format"), ("dialectic", "w_dialectic"), ("length", "w_length")]
    if with_critic:
        names.append(("consistency", "w_consistency"))
    total = weights = 0.0
    for component, key in names:
        w = _shared.weight(kwargs, key, DEFAULTS[key])
        total += w * parts[component]
        weights += w
    return _shared.finite(total / weights) if weights > 0 else 0.0


def score_rules(solution_str: Any, truth: str, **kwargs: Any) -> dict[str, float]:
    """The reward without the critic (as if no endpoint were configured); sync, for benchmarks and tools."""
    parts, _ = rule_components(solution_str, truth, kwargs)
    return {"score": combine(parts, kwargs, with_critic=False), **parts}


TRUST_PER_SAMPLE = ("reward kwarg trust_grpo (SophiaVL-R1's Trust-GRPO) gates the critic per group of rollouts, which a "
                    "per-sample compute_score never sees: it works with grpo.engine: swift (the adapter scores whole "
                    "prompt groups with compute_score_group); with verl, set trust_grpo: false")


def preflight(kwargs: Mapping[str, Any]) -> list[str]:
    """What `fakehr-orchestra validate` should warn about in this plugin's recipe kwargs."""
    notes = []
    if kwargs.get("trust_grpo"):
        notes.append(TRUST_PER_SAMPLE.replace("reward kwarg trust_grpo", "trust_grpo is on") + "; the score is then "
                     "SophiaVL-R1's acc + exp(-step/T) * weight * consistency")
    if not kwargs.get("critic_base_url") and float(kwargs.get("w_consistency", DEFAULTS["w_consistency"]) or 0) > 0:
        notes.append("no critic endpoint (critic.mode is off): the logical-consistency component is dropped and "
                     "the other weights renormalised; set the recipe's critic: section (mode: server to have the "
                     "pipeline start a judge such as SophiaVL-R1 with swift deploy, or mode: external with its url) "
                     "to train with it")
    return notes


async def aclose() -> None:
    """Close the critic sessions of the running event loop (the ms-swift adapter calls this at the end of each
    batch: ms-swift runs every batch in its own `asyncio.run`, and a session must not outlive its loop)."""
    for client in list(_CLIENTS.values()):
        await client.aclose()


async def compute_score(data_source: Any = None, solution_str: Any = "", ground_truth: Any = None,
                        extra_info: Any = None, **kwargs: Any) -> dict[str, float]:
    """verl's reward contract (async: verl awaits it, so critic calls of a batch overlap)."""
    if kwargs.get("trust_grpo"):
        raise ValueError(TRUST_PER_SAMPLE)
    truth = _shared.ground_truth_label(ground_truth, extra_info, kwargs)
    parts, parsed = rule_components(solution_str, truth, kwargs)
    client = critic_client(kwargs)
    if client is None:
        return {"score": combine(parts, kwargs, with_critic=False), **parts}
    answer = parsed.label or "(no valid answer)"
    response = solution_str if isinstance(solution_str, str) else ""
    result = await client.score(parsed.reasoning, answer, _image(extra_info, kwargs), response=response)
    parts["consistency"] = _shared.finite(result.score)
    parts["critic_failures"] = float(result.failures)
    parts["critic_fallback"] = 1.0 if result.fallback else 0.0
    return {"score": combine(parts, kwargs, with_critic=True), **parts}


async def compute_score_group(calls: Sequence[Mapping[str, Any]], step: float = 0.0) -> list[dict[str, float]]:
    """SophiaVL-R1's Trust-GRPO (rewards/trust_grpo.py) over one group of rollouts of one prompt, when the reward
    kwarg `trust_grpo` is true: the critic is asked only in groups whose answers are neither all right nor all
    wrong, and the score is `acc + weight * consistency`. Each call holds compute_score's arguments."""
    first = dict(calls[0])
    kwargs = {k: v for k, v in first.items() if k not in ("data_source", "solution_str", "ground_truth", "extra_info")}
    client = critic_client(kwargs)
    if client is None:
        raise ValueError("reward kwarg trust_grpo needs a critic (set the recipe's critic: section), or set "
                         "trust_grpo: false")
    t, base = _trust.params(kwargs)
    members = []
    for call in calls:
        truth = _shared.ground_truth_label(call.get("ground_truth"), call.get("extra_info"), kwargs)
        members.append((call, *rule_components(call.get("solution_str"), truth, kwargs)))

    async def ask(i: int) -> float:
        call, parts, parsed = members[i]
        response = call.get("solution_str") if isinstance(call.get("solution_str"), str) else ""
        result = await client.score(parsed.reasoning, parsed.label or "(no valid answer)",
                                    _image(call.get("extra_info"), kwargs), response=response)
        parts.update(consistency=_shared.finite(result.score), critic_failures=float(result.failures),
                     critic_fallback=1.0 if result.fallback else 0.0)
        return parts["consistency"]

    gated = await _trust.score_group([m[1]["acc"] for m in members], ask, step, t, base)
    # SophiaVL-R1's score: acc (0..1) + weight (<= trust_grpo_weight) x consistency (0..1), not clamped to 1
    return [{**parts, **g, "score": _shared.finite(g["trust_score"], 0.0, 1.0 + base)}
            for (_, parts, _), g in zip(members, gated)]
