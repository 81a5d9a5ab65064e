"""A real OpenAI-compatible chat endpoint on 127.0.0.1 for critic tests and the benchmark.

`behave(n, body) -> (status, reply_text, delay_s)` decides each answer; the server records requests and the
Authorization headers it saw. GET /v1/models lists `models` (as `swift deploy` lists its served model name).
Threads, so slow answers overlap like a real server's. Stops by itself on exit of the `with`
block; `stop()` takes it down mid-run.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Behaviour = Callable[[int, dict[str, Any]], tuple[int, str, float]]


def fixed(score: str = '{"score": 0.8}', delay_s: float = 0.0) -> Behaviour:
    return lambda n, body: (200, score, delay_s)


class CriticServer:
    def __init__(self, behave: Behaviour, models: tuple[str, ...] = ("judge",), port: int = 0) -> None:
        self.behave = behave
        self.models = models
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") != "/v1/models":
                    self.send_error(404)
                    return
                data = json.dumps({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "test"}
                                                              for m in server.models]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.auth.append(self.headers.get("Authorization"))
                status, text, delay = server.behave(n, body)
                if delay:
                    time.sleep(delay)
                if status == 200:
                    payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})
                else:
                    payload = text
                data = payload.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "CriticServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join(timeout=5)
        self.httpd.server_close()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
