"""Is the critic ready? `/v1/models` lists the served model, and one judged request WITH AN IMAGE is answered.

The judged request is the reward's own (rewards/critic.py builds it: same system prompt, same message layout, the
image as a data URL), so "ready" means "the reward's requests will be answered", not merely "a port is open". A
reply without a score still counts as ready (a tiny or badly prompted judge answers junk: the reward then counts
failures and uses the fallback, visibly); the result says whether the reply held a score.

Standard library only (urllib): the probe runs in the orchestrator and in Slurm scripts, and must start fast.
"""

from __future__ import annotations

import json
import os
import struct
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from ..bounded import read_urllib_body
from ..secrets import redact_url

REASONING = ("[Why fake] the window frames bend where straight lines are expected\n"
             "[If real] a wide-angle lens bends straight lines near the edges of the frame in the same way")
ANSWER = "Real"
QUESTION = "<image>Is this image real or fake?"


@dataclass
class ProbeResult:
    ok: bool
    message: str
    url: str
    model: str
    models: list[str] = field(default_factory=list)
    reply: Optional[str] = None  # the judged request's reply (first 200 characters)
    score: Optional[float] = None  # parsed from the reply, None when it held none
    seconds: float = 0.0  # from the first attempt to the answer (or the give-up)
    request_seconds: Optional[float] = None  # the judged request alone

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def critic_module() -> Any:
    """rewards/critic.py, loaded by path like the reward plugins load it (shared when already loaded)."""
    from ..plugins import load_plugin_file
    from ..resources import shipped_file
    return load_plugin_file(shipped_file("rewards/critic.py"))


def tiny_png(size: int = 64) -> bytes:
    """A small gradient PNG (no image library needed): the image the judged request carries."""
    rows = b"".join(b"\x00" + bytes(v for x in range(size) for v in (x * 4 % 256, y * 4 % 256, 128))
                    for y in range(size))  # filter byte 0, then RGB

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _headers(api_key_env: Optional[str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


MAX_REPLY_BYTES = 8 * 2**20  # a models list or a short judged reply; anything near this is not a critic's answer


def _get_json(url: str, headers: dict[str, str], timeout: float, body: Optional[dict[str, Any]] = None) -> Any:
    """One request, done within `timeout` seconds in all (urllib's own timeout is per socket read: a server that
    drips bytes, in its headers or its body, would keep it going forever), its body at most MAX_REPLY_BYTES."""
    import threading

    deadline = time.monotonic() + timeout
    outcome: dict[str, Any] = {}

    def fetch() -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
                raw = read_urllib_body(response, MAX_REPLY_BYTES, deadline, f"the reply of {url}")
            outcome["value"] = json.loads(raw.decode("utf-8", errors="replace") or "null")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=fetch, name="critic-probe", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()) + 0.5)
    if worker.is_alive():  # the daemon thread ends with its socket's next timeout, or with the process
        raise TimeoutError(f"no complete reply within {timeout:g} s (the server is too slow, or drips its reply)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def list_models(url: str, api_key_env: Optional[str] = None, timeout_s: float = 10.0) -> list[str]:
    reply = _get_json(url.rstrip("/") + "/models", _headers(api_key_env), timeout_s)
    data = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(data, list):
        raise ValueError(f"GET {url.rstrip('/')}/models did not return an OpenAI model list: {str(reply)[:200]}")
    return [str(m.get("id")) for m in data if isinstance(m, dict)]


def judged_request(url: str, model: str, api_key_env: Optional[str] = None, timeout_s: float = 30.0,
                   max_tokens: Optional[int] = 64, template: str = "json_score") -> tuple[str, Optional[float]]:
    """(reply text, parsed score or None) for one request shaped exactly like the reward's (same template), with
    an image."""
    import base64

    critic = critic_module()
    client = critic.CriticClient(critic.CriticConfig(base_url=url, model=model, max_tokens=max_tokens,
                                                     template=template, question=QUESTION))
    image = "data:image/png;base64," + base64.b64encode(tiny_png()).decode("ascii")
    response = f"<think>\n{REASONING}\n</think>\n<answer>{ANSWER}</answer>"
    reply = _get_json(url.rstrip("/") + "/chat/completions", _headers(api_key_env), timeout_s,
                      client.payload(REASONING, ANSWER, image, response))
    try:
        text = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"the reply is not a chat completion: {str(reply)[:300]}") from None
    if not isinstance(text, str):
        raise ValueError(f"the reply's message content is not text: {str(text)[:200]}")
    return text, client.template.parse(text)


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        try:
            body = exc.read(300).decode("utf-8", errors="replace") if exc.fp else ""
        except OSError:
            body = ""
        return f"HTTP {exc.code}: {body}".strip()
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


def probe_once(url: str, model: str, api_key_env: Optional[str] = None, timeout_s: float = 30.0,
               max_tokens: Optional[int] = 64, template: str = "json_score") -> ProbeResult:
    """One check, no waiting (validate on an external critic)."""
    return wait_ready(url, model, timeout_s, api_key_env, once=True, max_tokens=max_tokens, template=template)


def wait_ready(url: str, model: str, timeout_s: float, api_key_env: Optional[str] = None,
               alive: Optional[Callable[[], Optional[str]]] = None, poll_s: float = 1.0, once: bool = False,
               max_tokens: Optional[int] = 64, template: str = "json_score") -> ProbeResult:
    """Poll until ready or `timeout_s`; never hangs (every request has a timeout within the deadline).

    `alive()` returns None while the server process runs, else why it is gone (then waiting stops at once).
    A server that answers but does not list `model` is someone else's (or misnamed): that fails at once too.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    result = ProbeResult(False, "", url, model)
    last = "no answer yet"
    while True:
        if alive is not None:
            gone = alive()
            if gone:
                result.message = f"the critic server exited before it answered ({gone})"
                break
        remaining = deadline - time.monotonic()
        try:
            result.models = list_models(url, api_key_env, max(1.0, min(10.0, remaining)))
        except (OSError, ValueError) as exc:  # not up yet (connection refused, timeout, 503...)
            last = _why(exc)
        else:
            if model not in result.models:
                result.message = (f"{url} serves {result.models}, not {model!r}: another server holds the port, "
                                  "or critic.served_model_name differs from the server's --served_model_name")
                break
            request_started = time.monotonic()
            try:
                text, score = judged_request(url, model, api_key_env, max(5.0, deadline - request_started),
                                             max_tokens, template)
            except (OSError, ValueError) as exc:
                last = f"{model} is listed, but a judged request with an image failed: {_why(exc)}"
                if once:
                    result.message = last
                    break
            else:
                result.request_seconds = round(time.monotonic() - request_started, 2)
                result.ok, result.reply, result.score = True, text[:200], score
                result.message = (f"ready: {url} lists {model!r} and answered a judged request with an image in "
                                  f"{result.request_seconds} s; " + (f"its reply holds the score {score:g}"
                                                                    if score is not None else
                                                                    "its reply holds no score (the reward will count "
                                                                    "failures and use the fallback score)"))
                break
        if once or time.monotonic() + poll_s > deadline:
            result.message = result.message or (f"not answering: {last}" if once else
                                                 f"not ready after {timeout_s:g} s: {last}")
            break
        time.sleep(poll_s)
    result.seconds = round(time.monotonic() - started, 1)
    result.url, result.message = redact_url(result.url), redact_url(result.message)  # printed and logged
    return result
