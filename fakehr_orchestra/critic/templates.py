"""Critic prompts as data: how a judge is asked (the request body) and how its reply is read (the score).

A judge model answers well only in the format it was trained on, so the prompt and the score extraction are a
named template chosen in the recipe (`critic.template`), and the same template serves the GRPO reward
(rewards/critic.py), the readiness probe and evaluation's consistency scores.

  json_score   our own one-line question; the reply is `{"score": <0..1>}` (lenient reading, see `parse_json_score`)
  sophiavl_r1  SophiaVL-R1's thinking reward model's own evaluator prompt and extraction, restated from its public
               code (github.com/kxfan2002/SophiaVL-R1, `verl/workers/reward/custom.py`: `get_process_reward`,
               `extract_score` and its extractors; served as in `scripts/train_scripts/thinking_reward_model.sh`:
               vLLM's OpenAI server, `--served-model-name thinking-reward-model`). Its body: a system message
               "You are a helpful assistant.", one user message holding the prompt text THEN the image (a base64 PNG
               data URL), `temperature` 0.0 and no `max_tokens`. The question gets a leading "<image> " when an
               image is sent and the question has no "<image>"; "$" is removed from the response first (as its
               reward manager does before asking). Its reply is read by, in this order: `\\box{x}` / `\\boxes{x}`,
               `<answer>x</answer>`, the first bare 0..1 number (`\\b[01](\\.\\d)?\\b`), a number after `</think>`,
               then its three wrong-step counts; clamped to [0, 1]. Where SophiaVL-R1 scores a reply without a score
               0, we return None (the caller's fallback, counted), like every other unreadable reply.

Pure functions, no I/O; importing this module is cheap (the CLI imports it).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

# ----------------------------------------------------------------------------- json_score (ours)
JSON_SCORE_SYSTEM = (
    "You are a strict judge of forensic reasoning about whether an image is real or AI-generated. "
    "Judge only the logical consistency: do the [Why fake] hypotheses and [If real] counter-proofs describe "
    "the image, and does the final answer follow from them? Reply with JSON only: {\"score\": <0..1>}.")
_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_SCORE_KEY = re.compile(r"score\W{0,3}\s*[:=]\s*" + _NUMBER, re.IGNORECASE)
_OUT_OF_TEN = re.compile(_NUMBER + r"\s*/\s*10\b")
_PERCENT = re.compile(_NUMBER + r"\s*%")
_LONE = re.compile(r"^\s*" + _NUMBER + r"\s*\.?\s*$")
_JSON = re.compile(r"\{[^{}]{0,2000}\}")
MAX_REPLY_CHARS = 20000
MAX_REASONING_CHARS = 16000


def _clamp(value: Optional[float]) -> Optional[float]:
    if value is None or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, value))


def parse_json_score(text: Any) -> Optional[float]:
    """A JSON object with "score", else `score: x`, else `x/10` or `x%`, else a lone number; clamped to [0, 1];
    None when there is none (or it is NaN/inf)."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text[:MAX_REPLY_CHARS]
    value: Optional[float] = None
    for blob in _JSON.findall(text):
        try:
            obj = json.loads(blob)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("score"), bool):
            return None  # {"score": true} is not a score (bool is an int in Python: it read as 1.0)
        if isinstance(obj, dict) and isinstance(obj.get("score"), (int, float, str)):
            try:
                value = float(obj["score"])
                break
            except ValueError:
                continue
    if value is None:
        for pattern, scale in ((_SCORE_KEY, 1.0), (_OUT_OF_TEN, 10.0), (_PERCENT, 100.0), (_LONE, 1.0)):
            m = pattern.search(text)
            if m:
                value = float(m.group(1)) / scale
                if pattern is _SCORE_KEY and _OUT_OF_TEN.match(text[m.start(1):]):
                    value /= 10.0
                break
    return _clamp(value)


def json_score_body(model: str, question: str, response: str, reasoning: str, answer: str,
                    image_url: Optional[str], max_tokens: Optional[int]) -> dict[str, Any]:
    """Image first, then the reasoning and the final answer; the system message asks for JSON."""
    text = (f"Reasoning:\n{reasoning[:MAX_REASONING_CHARS]}\n\nFinal answer: {answer[:200]}\n\n"
            "How logically consistent is this reasoning with the image and the answer? "
            "Reply with JSON only: {\"score\": <a number from 0 to 1>}.")
    content: list[dict[str, Any]] = []
    if image_url:
        content.append({"type": "image_url", "image_url": {"url": image_url}})
    content.append({"type": "text", "text": text})
    body: dict[str, Any] = {"model": model, "temperature": 0.0}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    body["messages"] = [{"role": "system", "content": JSON_SCORE_SYSTEM}, {"role": "user", "content": content}]
    return body


# ----------------------------------------------------------------------------- sophiavl_r1 (restated)
SOPHIAVL_SYSTEM = "You are a helpful assistant."
# The evaluator prompt of SophiaVL-R1's `get_process_reward` (verl/workers/reward/custom.py), character for
# character: the "\n" escapes are newlines, the literal lines after the first keep their four-space indent, and the
# text ends with a newline and four spaces (it is an indented triple-quoted f-string in their code).
SOPHIAVL_PROMPT = (
    "You are an expert reasoning evaluator. I will give you a multimodal question and an answer. Your goal is to "
    "judge a reward process and give a score between 0 and 1. You should focus on whether the reasoning process is "
    "good rather than whether the final answer is correct.### Evaluation Criteria:\n- **Logical Soundness**: Does "
    "each step follow logically from the previous one?\n- **Correct Reasoning**: Are the methods and steps used "
    "appropriate and valid? Are the facts and lemmas correctly stated and applied?\n- **Error Identification**: Are "
    "there any logical fallacies, unsupported assumptions, or incorrect steps?\n- **Language Consistency**: Is the "
    "reasoning process conducted in a single, consistent language without mixing different languages?\n- "
    "**Redundancy**: Is the reasoning concise, without unnecessary repetition or extraneous steps?\nProvide a single "
    "score from **{0, 0.1, 0.2, ..., 1.0}** based on the reasoning quality, where:\n - **0**: Completely flawed "
    "reasoning\n- **1**: Perfectly sound reasoning\n- Intermediate values (e.g., 0.3, 0.7) should reflect partial "
    "correctness or minor errors.\nBe strict, reward the good process and punish the bad one. You should only "
    "output the score without any explanation.\n"
    "    Question: {question}\n"
    "    Reasoning process: {reasoning}\n"
    "    Your response format: <answer>your_score</answer>\n"
    "    ")


def sophiavl_prompt(question: str, response: str, with_image: bool) -> str:
    """The user text SophiaVL-R1 sends for this question and response."""
    if with_image and "<image>" not in question:
        question = f"<image> {question}"
    response = response.replace("$$", "").replace("$", "")
    # str.replace, not str.format: the prompt's own "{0, 0.1, ...}" braces are text
    return SOPHIAVL_PROMPT.replace("{question}", question, 1).replace("{reasoning}", response, 1)


def sophiavl_body(model: str, question: str, response: str, reasoning: str, answer: str,
                  image_url: Optional[str], max_tokens: Optional[int]) -> dict[str, Any]:
    """System "You are a helpful assistant.", then the prompt text and (after it) the image; temperature 0."""
    content: list[dict[str, Any]] = [{"type": "text", "text": sophiavl_prompt(question, response, bool(image_url))}]
    if image_url:
        content.append({"type": "image_url", "image_url": {"url": image_url}})
    body: dict[str, Any] = {"model": model,
                            "messages": [{"role": "system", "content": SOPHIAVL_SYSTEM},
                                         {"role": "user", "content": content}],
                            "temperature": 0.0}
    if max_tokens is not None:  # SophiaVL-R1 sends none (the server's limit applies)
        body["max_tokens"] = max_tokens
    return body


def _number(text: str) -> float:
    return float(int(text)) if text.isdigit() else float(text)


def _first(pattern: str, convert: Callable[[str], float]) -> Callable[[str], Optional[float]]:
    compiled = re.compile(pattern)

    def extract(text: str) -> Optional[float]:
        m = compiled.search(text)
        if not m:
            return None
        try:
            return convert(m.group(1))
        except ValueError:  # "1.2.3" after </think>: no number (SophiaVL-R1 would raise and retry the request)
            return None
    return extract


def _after_think(text: str) -> Optional[float]:
    for pattern in (r"</think>\s*<answer>\s*([\d.]+)\s*</answer>", r"</think>\s*([\d.]+)"):
        m = re.search(pattern, text)
        if m:
            try:
                return _number(m.group(1))
            except ValueError:
                return None
    return None


# SophiaVL-R1's `extract_score` order: box, xml answer, plain number, after-think, total / zero / any wrong steps
SOPHIAVL_EXTRACTORS: tuple[tuple[str, Callable[[str], Optional[float]]], ...] = (
    ("box", _first(r"\\box(?:es)?\{([01](?:\.\d)?)\}", float)),
    ("xml_answer", _first(r"<answer>\s*([01](?:\.\d)?)\s*</answer>", float)),
    ("plain_number", _first(r"\b([01](?:\.\d)?)\b", float)),
    ("after_think", _after_think),
    ("total_wrong_steps", _first(r"Total Wrong Steps\*\*:\s*(\d+)", lambda s: float(int(s)))),
    ("zero_wrong_steps", _first(r"\*\*(\d+)\s+wrong steps\*\*", lambda s: float(int(s)))),
    ("wrong_steps", _first(r"\*\*.*?\bWrong Steps\*\*:\s*(\d+)", lambda s: float(int(s)))),
)


def parse_sophiavl_score(text: Any) -> Optional[float]:
    """SophiaVL-R1's extraction, in its order, clamped to [0, 1]; None (not its 0) when nothing matches."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text[:MAX_REPLY_CHARS]
    for _name, extract in SOPHIAVL_EXTRACTORS:
        value = extract(text)
        if value is not None:
            return _clamp(value)
    return None


# ----------------------------------------------------------------------------- the registry
BodyBuilder = Callable[[str, str, str, str, str, Optional[str], Optional[int]], dict[str, Any]]


@dataclass(frozen=True)
class CriticTemplate:
    name: str
    build: BodyBuilder  # (model, question, response, reasoning, answer, image_url, max_tokens) -> request body
    parse: Callable[[Any], Optional[float]]
    png_image: bool  # the image is re-encoded as PNG before it is sent (what the judge saw in training)
    source: str

    def body(self, model: str, *, question: str = "", response: str = "", reasoning: str = "", answer: str = "",
             image_url: Optional[str] = None, max_tokens: Optional[int] = None) -> dict[str, Any]:
        return self.build(model, question, response, reasoning, answer, image_url, max_tokens)


TEMPLATES: dict[str, CriticTemplate] = {
    "json_score": CriticTemplate("json_score", json_score_body, parse_json_score, False,
                                 "fakehr-orchestra's own: judge the [Why fake]/[If real] reasoning, reply JSON"),
    "sophiavl_r1": CriticTemplate("sophiavl_r1", sophiavl_body, parse_sophiavl_score, True,
                                  "SophiaVL-R1 (kxfan2002/SophiaVL-R1, verl/workers/reward/custom.py)"),
}
DEFAULT = "json_score"


def get(name: Optional[str]) -> CriticTemplate:
    """The template by name (None: the default); an unknown name raises with the known ones."""
    template = TEMPLATES.get(name or DEFAULT)
    if template is None:
        raise ValueError(f"unknown critic template {name!r}; known: {', '.join(sorted(TEMPLATES))}")
    return template


def to_png(data: bytes) -> bytes:
    """The image re-encoded as PNG (as SophiaVL-R1's `pil_to_base64` does); PNG bytes are re-encoded too, so
    the request equals theirs byte for byte. Raises on bytes that are not an image."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return buffer.getvalue()
