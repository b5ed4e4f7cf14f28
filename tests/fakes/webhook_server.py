"""A fake Slack-style incoming webhook: records every POSTed JSON body.

Any ``POST`` path other than ``/__control`` is a webhook delivery (Slack puts
its secret in the path). It answers ``200 ok`` unless told otherwise: extra
latency (+ jitter), a share of 5xx, a share of 429 with ``Retry-After``, or a
fixed ``status``.

Use from tests::

    with start_fake_webhook() as hook:
        hook.configure(latency=2.0)
        ... post to hook.url + "/services/T000/B000/secret" ...
        hook.stats()["requests"]

or on its own: ``python -m tests.fakes.webhook_server --port 8790``, driven with
``POST /__control`` (JSON of options, ``{"reset": true}``) and ``GET /__stats``.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

from tests.fakes import QuietHTTPServer, ServedFake, reply


@dataclass
class Options:
    latency: float = 0.0
    jitter: float = 0.0
    error_rate_5xx: float = 0.0
    error_rate_429: float = 0.0
    retry_after: float = 1.0
    status: int = 200
    seed: int = 0


class FakeWebhook(ServedFake):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.options = Options()
        self._lock = threading.Lock()
        self._random = random.Random(0)
        self._requests: list[dict[str, Any]] = []
        self._serve(QuietHTTPServer((host, port), _handler_for(self)))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def configure(self, **options: Any) -> None:
        with self._lock:
            if options.pop("reset", False):
                self.options = Options()
                self._requests.clear()
            known = {f.name for f in fields(Options)}
            unknown = set(options) - known
            if unknown:
                raise ValueError(f"unknown options: {sorted(unknown)}")
            for name, value in options.items():
                setattr(self.options, name, value)
            self._random = random.Random(self.options.seed)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"options": asdict(self.options), "calls": len(self._requests), "requests": list(self._requests)}

    def _decide(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float, dict[str, str]]:
        with self._lock:
            try:
                parsed: Any = json.loads(body or b"null")
            except ValueError:
                parsed = None
            self._requests.append(
                {"at": time.monotonic(), "path": path, "json": parsed, "body": body.decode("utf-8", "replace"),
                 "headers": headers}
            )
            opts = self.options
            delay = opts.latency + (self._random.uniform(0, opts.jitter) if opts.jitter else 0.0)
            roll = self._random.random()
            if roll < opts.error_rate_429:
                return 429, delay, {"Retry-After": f"{opts.retry_after:g}"}
            if roll < opts.error_rate_429 + opts.error_rate_5xx:
                return 503, delay, {}
            return opts.status, delay, {}


def _handler_for(fake: FakeWebhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                  content_type: str = "text/plain") -> None:
            reply(self, status, body, content_type, headers)

        def do_GET(self) -> None:
            if self.path == "/__stats":
                self._send(200, json.dumps(fake.stats()).encode(), content_type="application/json")
            else:
                self._send(404, b"not found")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/__control":
                try:
                    fake.configure(**json.loads(body or b"{}"))
                except (ValueError, TypeError) as exc:
                    self._send(400, str(exc).encode())
                    return
                self._send(200, b"ok")
                return
            status, delay, headers = fake._decide(self.path, body, dict(self.headers.items()))
            if delay:
                time.sleep(delay)
            try:
                self._send(status, b"ok" if status < 300 else b"error", headers)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@contextmanager
def start_fake_webhook(**options: Any) -> Iterator[FakeWebhook]:
    fake = FakeWebhook()
    try:
        if options:
            fake.configure(**options)
        yield fake
    finally:
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    fake = FakeWebhook(args.host, args.port)
    print(f"fake webhook on {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.close()


if __name__ == "__main__":
    main()
