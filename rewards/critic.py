"""Async client for a critic model behind an OpenAI-compatible chat endpoint (FakeVLM-R1's consistency reward).

The critic (e.g. a vLLM server hosting SophiaVL-R1, or any VLM judge) is asked whether the reasoning supports the
answer and returns a 0..1 score. A reward must keep working when the critic is slow, wrong or gone, so:
  - concurrency limit (a semaphore per event loop), per-request timeout, bounded retries with short backoff;
  - a cache keyed by (image, response): GRPO samples repeat, and a retried step should not pay twice;
  - a fallback score when the critic cannot be reached or answers garbage, and a circuit breaker: after
    `breaker_threshold` consecutive requests that got no reply (connection errors, timeouts, HTTP 429/5xx) the
    critic is skipped (fallback at once) for `breaker_cooldown_s`. A reply, even one without a score, proves the
    critic is up and resets the count: a judge that answers fast but badly is counted, not switched off;
  - failures are counted and returned with each result, so the reward logs them; the client also prints a summary
    line (answered / fallback / failed requests by kind / replies) to stderr after its first scored call, then at
    most every `report_every_s`, and once more at exit, so a training log always shows what the critic did;
  - the API key is read from the env var named in the config and never logged (not in repr, not in errors).

The request body and the score parsing come from the configured template (`fakehr_orchestra/critic/templates.py`:
`json_score`, ours, or `sophiavl_r1`, SophiaVL-R1's own prompt and extraction); a reply without a score is a failure
whatever the template. `parse_score` is json_score's parser (a JSON object with "score", else `score: x`, else
`x/10` or `x%`, else a lone number; clamped to [0, 1]).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import hashlib
import json
import logging
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fakehr_orchestra.critic import templates as _templates
from fakehr_orchestra.secrets import env_name_problem, has_url_credentials, redact_url

log = logging.getLogger("fakehr.critic")

SYSTEM = _templates.JSON_SCORE_SYSTEM
REPLIED = ("unparseable_score", "bad_reply")  # failures where the critic did answer (they do not trip the breaker)
parse_score = _templates.parse_json_score


@dataclass(frozen=True)
class CriticConfig:
    base_url: str  # e.g. http://127.0.0.1:8000/v1 ; /chat/completions is appended
    model: str = "critic"
    api_key_env: str | None = None
    timeout_s: float = 30.0
    concurrency: int = 16
    retries: int = 2
    fallback_score: float = 0.5
    cache_size: int = 50_000
    breaker_threshold: int = 8
    breaker_cooldown_s: float = 30.0
    max_tokens: int | None = 64  # None: not sent (the server's limit applies), as SophiaVL-R1 asks
    report_every_s: float = 60.0  # summary line cadence (<= 0: only the first one and the one at exit)
    template: str = _templates.DEFAULT  # how the judge is asked and its reply read (critic/templates.py)
    question: str = ""  # the question the policy answered (templates that show it to the judge)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"critic_base_url must start with http:// or https://, got {redact_url(self.base_url)!r}")
        if has_url_credentials(self.base_url):
            raise ValueError(f"critic_base_url {redact_url(self.base_url)!r} carries credentials (user:password@): "
                             "pass the key through the variable named by critic_api_key_env instead")
        if self.api_key_env is not None:
            problem = env_name_problem(self.api_key_env, "critic_api_key_env")
            if problem:
                raise ValueError(problem)
        if self.timeout_s <= 0 or self.concurrency < 1 or self.retries < 0:
            raise ValueError("critic: timeout_s > 0, concurrency >= 1 and retries >= 0 are required")
        if not 0.0 <= self.fallback_score <= 1.0:
            raise ValueError(f"critic_fallback_score must be in [0, 1], got {self.fallback_score}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"critic_max_tokens must be >= 1 or null, got {self.max_tokens}")
        _templates.get(self.template)  # an unknown name raises, naming the known ones


@dataclass
class CriticResult:
    score: float  # in [0, 1]
    failures: int  # failed requests for this sample (0 when served from cache)
    fallback: bool  # True when `score` is the fallback score
    cached: bool = False


@dataclass
class _LoopState:
    loop: asyncio.AbstractEventLoop
    semaphore: asyncio.Semaphore
    session: Any = None


@dataclass
class CriticStats:
    """Per scored call: answered (a score from the critic) or fallback, or a cache hit. Per HTTP request: a reply
    (a chat completion came back, whether or not it held a score) or a failure, counted by kind."""

    calls: int = 0
    answered: int = 0
    fallbacks: int = 0
    cache_hits: int = 0
    requests: int = 0
    replies: int = 0
    failures: int = 0
    skipped_by_breaker: int = 0
    last_error: str = ""
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items(), key=lambda kv: -kv[1]))
        return (f"calls {self.calls}: answered {self.answered}, fallback {self.fallbacks}, cached {self.cache_hits}"
                f" | requests {self.requests}: replies {self.replies}, failed {self.failures}"
                + (f" ({kinds})" if kinds else "")
                + (f" | skipped by the breaker {self.skipped_by_breaker}" if self.skipped_by_breaker else ""))


def image_ref(image: Any) -> tuple[str, str | None]:
    """(cache key, url for the request) for an image given as a path, URL, bytes or verl/swift dict; ('', None)
    when there is none or it cannot be read (the critic then judges the text alone)."""
    if isinstance(image, (list, tuple)):
        image = image[0] if image else None
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("image") or image.get("path") or image.get("url")
    if isinstance(image, str) and image.startswith(("http://", "https://", "data:")):
        return image, image
    data: bytes | None = None
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    elif isinstance(image, str) and image:
        data = read_image(image)
    if not data:
        return "", None
    digest = hashlib.sha1(data).hexdigest()
    return digest, "data:image/png;base64," + base64.b64encode(data).decode("ascii")


MAX_IMAGE_BYTES = 64 * 2**20  # as data.max_image_mb's default: a bigger "image" is not one the critic should get
MAX_REPLY_BYTES = 4 * 2**20  # a chat completion holding {"score": x}; far more is not an answer


def read_image(path: str) -> bytes | None:
    """The bytes of an image file, or None when it cannot be read as one: through the one bounded reader (regular
    files only, never more than MAX_IMAGE_BYTES; /dev/zero or a FIFO is refused at once, not read or waited for)."""
    from fakehr_orchestra.bounded import BoundedReadError, read_file

    try:
        return read_file(path, MAX_IMAGE_BYTES)
    except (BoundedReadError, OSError):
        return None


async def read_reply(response: Any) -> Any:
    """The JSON of a reply, read through the one bounded reader (at most MAX_REPLY_BYTES; the session's timeout
    bounds the time); ValueError for a body that is too big or not JSON."""
    from fakehr_orchestra.bounded import BoundedReadError, read_aiohttp_body

    try:
        raw = await read_aiohttp_body(response, MAX_REPLY_BYTES)
    except BoundedReadError as exc:
        raise ValueError(str(exc)) from None
    return json.loads(raw.decode("utf-8", errors="replace"))


class CriticClient:
    """One per configuration per process; safe to use from several event loops (one session and semaphore each)."""

    def __init__(self, config: CriticConfig) -> None:
        self.config = config
        self.template = _templates.get(config.template)
        self._png: OrderedDict[str, str | None] = OrderedDict()
        self.stats = CriticStats()
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._loops: dict[int, _LoopState] = {}
        self._consecutive_failures = 0
        self._auth_warned = False
        self._open_until = 0.0
        self._reported_at: float | None = None
        self._reported: tuple[int, int, int] | None = None

    def __repr__(self) -> str:  # the key is never part of it
        return f"CriticClient(base_url={redact_url(self.config.base_url)!r}, model={self.config.model!r})"

    # ------------------------------------------------------------------ plumbing
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(id(loop))
        if state is None or state.loop is not loop:
            for stale in [k for k, v in self._loops.items() if v.loop.is_closed()]:
                del self._loops[stale]  # their sessions died with their loops
            state = _LoopState(loop, asyncio.Semaphore(self.config.concurrency))
            self._loops[id(loop)] = state
        return state

    async def _session(self, state: _LoopState) -> Any:
        import aiohttp

        if state.session is None or state.session.closed:
            state.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                connector=aiohttp.TCPConnector(limit=self.config.concurrency))
        return state.session

    async def aclose(self) -> None:
        """Close the session of the running loop: before that loop ends (ms-swift runs each reward batch in its own
        `asyncio.run`), in tests and the CLI. verl's reward workers keep one loop, and their session, to the end."""
        state = self._loops.pop(id(asyncio.get_running_loop()), None)
        if state and state.session is not None:
            await state.session.close()

    def report(self, final: bool = False) -> None:
        """One summary line on stderr (the training log), unless nothing happened since the last one."""
        now = (self.stats.calls, self.stats.cache_hits, self.stats.requests)
        if now == self._reported or not any(now):
            return
        self._reported, self._reported_at = now, time.monotonic()
        print(f"[fakehr critic] {redact_url(self.config.base_url)} model {self.config.model} (pid {os.getpid()})"
              f"{' at exit' if final else ''}: {self.stats.summary()}", file=sys.stderr, flush=True)

    def _maybe_report(self) -> None:
        if self._reported_at is None:
            atexit.register(self.report, True)
            self.report()
        elif 0 < self.config.report_every_s <= time.monotonic() - self._reported_at:
            self.report()

    def _fail(self, kind: str) -> None:
        self.stats.failures += 1
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
        self.stats.last_error = kind
        if kind in ("http_401", "http_403") and not self._auth_warned:
            self._auth_warned = True
            name = self.config.api_key_env
            state = "not set" if name and not os.environ.get(name) else "set"
            log.warning("critic %s refused the request (HTTP %s): the key from %s (%s) is missing or wrong; every "
                        "consistency score falls back to %s", redact_url(self.config.base_url), kind[5:],
                        name or "no critic_api_key_env", state, self.config.fallback_score)
        if kind in REPLIED or (kind.startswith("http_4") and kind != "http_429"):
            self._consecutive_failures = 0  # it answered: up, if unhelpful
            return
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.config.breaker_threshold:
            if self._open_until <= time.monotonic():
                log.warning("critic %s failed %d times in a row (%s); using the fallback score for %.0f s",
                            redact_url(self.config.base_url), self._consecutive_failures, kind, self.config.breaker_cooldown_s)
            self._open_until = time.monotonic() + self.config.breaker_cooldown_s

    def payload(self, reasoning: str, answer: str, image_url: str | None,
                response: str | None = None) -> dict[str, Any]:
        """The template's request body; `response` is the whole reply of the policy (default: the reasoning)."""
        return self.template.body(self.config.model, question=self.config.question,
                                  response=reasoning if response is None else response, reasoning=reasoning,
                                  answer=answer, image_url=image_url, max_tokens=self.config.max_tokens)

    def template_image(self, key_image: str, image_url: str | None) -> str | None:
        """The image URL as the template sends it: a data URL re-encoded as PNG for templates that ask (cached
        per image; bytes that do not decode as an image go as they are, and the judge says what it sees)."""
        if not self.template.png_image or not image_url or not image_url.startswith("data:"):
            return image_url
        if key_image in self._png:
            self._png.move_to_end(key_image)
            return self._png[key_image] or image_url
        try:
            data = base64.b64decode(image_url.split(",", 1)[1])
            png: str | None = "data:image/png;base64," + base64.b64encode(_templates.to_png(data)).decode("ascii")
        except Exception:  # noqa: BLE001 - any decoder error: send what we have
            png = None
        self._png[key_image] = png
        if len(self._png) > 256:
            self._png.popitem(last=False)
        return png or image_url

    # ------------------------------------------------------------------ the one call
    async def score(self, reasoning: str, answer: str, image: Any = None,
                    response: str | None = None) -> CriticResult:
        """Never raises (except cancellation): the worst case is the fallback score with failures counted.
        `response`: the policy's whole reply, for templates that judge it whole (sophiavl_r1)."""
        key_image, image_url = image_ref(image)
        key = (key_image, f"{reasoning}\x00{answer}\x00{response or ''}")
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            self._maybe_report()
            return CriticResult(cached, 0, False, cached=True)
        result = await self._score(key, reasoning, answer, self.template_image(key_image, image_url), response)
        self.stats.calls += 1
        if result.fallback:
            self.stats.fallbacks += 1
        else:
            self.stats.answered += 1
        self._maybe_report()
        return result

    async def _score(self, key: tuple[str, str], reasoning: str, answer: str, image_url: str | None,
                     response: str | None = None) -> CriticResult:
        failures = 0
        state = self._state()
        body = self.payload(reasoning, answer, image_url, response)
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        for attempt in range(self.config.retries + 1):
            if attempt:
                await asyncio.sleep(min(1.0, 0.05 * 2 ** (attempt - 1)))
            kind, value, retry = await self._request(state, url, body)
            if kind == "breaker_open":
                self.stats.skipped_by_breaker += 1
                break
            if value is not None:
                self._consecutive_failures = 0
                self._cache[key] = value
                if len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)
                return CriticResult(value, failures, False)
            failures += 1
            self._fail(kind)
            if not retry:
                break
        return CriticResult(self.config.fallback_score, failures, True)

    async def _request(self, state: _LoopState, url: str, body: dict[str, Any]) -> tuple[str, float | None, bool]:
        """(error kind, score or None, worth retrying)."""
        import aiohttp

        try:
            async with state.semaphore:
                if self._open_until > time.monotonic():  # checked once a slot is free: queued calls skip too
                    return "breaker_open", None, False
                self.stats.requests += 1
                session = await self._session(state)
                async with session.post(url, json=body, headers=self._headers()) as response:
                    if response.status == 429 or response.status >= 500:
                        return f"http_{response.status}", None, True
                    if response.status >= 400:
                        return f"http_{response.status}", None, False
                    reply = await read_reply(response)
        except asyncio.TimeoutError:
            return "timeout", None, True
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return type(exc).__name__, None, True
        try:
            text = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return "bad_reply", None, True
        self.stats.replies += 1
        value = self.template.parse(text)
        return ("unparseable_score", None, True) if value is None else ("", value, False)
