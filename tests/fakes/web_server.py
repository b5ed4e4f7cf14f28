"""A fake web server for fetch and extraction tests (articles, PDFs, redirects, faults).

Routes are registered from the test::

    with FakeWebServer() as web:
        web.page("/article", ARTICLE_HTML)
        web.redirect("/old", "/article")
        web.route("/flaky", body=b"ok", fail_first=2)          # 503 twice, then 200
        web.stream("/huge", huge_html_chunks(50 * 2**20))      # produced while sent
        url = web.url + "/article"

Faults for every request: ``configure(latency=, jitter=, error_rate=,
rate_limit_rate=, retry_after=)``. ``stats()`` returns the request log with
monotonic timestamps. Another process can drive it through ``POST /__control``
(JSON of the same settings) and read ``GET /__stats``.

Run on its own: ``python -m tests.fakes.web_server --port 8765`` serves the
example article and PDFs.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from tests.fakes import QuietHTTPServer, ServedFake, reply, serve_until_interrupted

Body = bytes | str | Callable[[], Iterable[bytes]]


@dataclass
class Route:
    status: int = 200
    body: Body = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fail_first: int = 0
    fail_status: int = 503
    chunk_delay: float = 0.0
    hits: int = 0


@dataclass
class Faults:
    latency: float = 0.0
    jitter: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0


class FakeWebServer(ServedFake):
    """ThreadingHTTPServer on 127.0.0.1 (ephemeral port) with programmable routes."""

    def __init__(self, port: int = 0, seed: int = 1234) -> None:
        self.routes: dict[str, Route] = {}
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._serve(QuietHTTPServer(("127.0.0.1", port), _handler_for(self)), "fake-web")
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- routes
    def route(self, path: str, **options: Any) -> Route:
        route = Route(**options)
        with self._lock:
            self.routes[path] = route
        return route

    def page(self, path: str, html: str | bytes, **options: Any) -> Route:
        return self.route(path, body=html, **options)

    def pdf(self, path: str, data: bytes, content_type: str = "application/pdf", **options: Any) -> Route:
        return self.route(path, body=data, content_type=content_type, **options)

    def redirect(self, path: str, location: str, status: int = 302) -> Route:
        return self.route(path, status=status, headers={"Location": location}, body=b"")

    def stream(self, path: str, chunks: Callable[[], Iterable[bytes]], **options: Any) -> Route:
        """A body produced while it is sent (chunked), for pages too large to hold in memory."""
        return self.route(path, body=chunks, **options)

    # ----------------------------------------------------------------- faults
    def configure(self, **faults: Any) -> None:
        with self._lock:
            for key, value in faults.items():
                if not hasattr(self.faults, key):
                    raise ValueError(f"unknown fault {key}")
                setattr(self.faults, key, float(value))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": list(self.requests), "count": len(self.requests)}

    def paths(self) -> list[str]:
        return [r["path"] for r in self.stats()["requests"]]

    # --------------------------------------------------------------- internal
    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def _draw(self) -> tuple[float, str | None]:
        with self._lock:
            f = self.faults
            delay = f.latency + (self._random.uniform(0, f.jitter) if f.jitter else 0.0)
            roll = self._random.random()
            if roll < f.rate_limit_rate:
                return delay, "429"
            if roll < f.rate_limit_rate + f.error_rate:
                return delay, "5xx"
            return delay, None


def _handler_for(server: FakeWebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay per reply

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            server._record(
                {
                    "method": "GET",
                    "path": path,
                    "time": time.monotonic(),
                    "user_agent": self.headers.get("User-Agent"),
                    "host": self.headers.get("Host"),
                    "headers": dict(self.headers.items()),
                }
            )
            if path == "/__stats":
                self._send(200, json.dumps(server.stats()).encode(), "application/json")
                return
            delay, fault = server._draw()
            if delay:
                time.sleep(delay)
            if fault == "429":
                self._send(429, b"slow down", "text/plain", {"Retry-After": f"{server.faults.retry_after:g}"})
                return
            if fault == "5xx":
                self._send(503, b"unavailable", "text/plain")
                return
            with server._lock:
                route = server.routes.get(path)
                if route is not None:
                    route.hits += 1
            if route is None:
                self._send(404, b"<html><body><h1>Not found</h1></body></html>", "text/html")
                return
            if route.delay:
                time.sleep(route.delay)
            if route.hits <= route.fail_first:
                headers = {"Retry-After": "0"} if route.fail_status == 429 else {}
                self._send(route.fail_status, b"temporary failure", "text/plain", headers)
                return
            if callable(route.body):
                self._send_chunked(route)
            else:
                body = route.body.encode("utf-8") if isinstance(route.body, str) else route.body
                self._send(route.status, body, route.content_type, route.headers)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b"{}"
            if urlsplit(self.path).path != "/__control":
                self._send(404, b"not found", "text/plain")
                return
            try:
                server.configure(**json.loads(payload or b"{}"))
            except (ValueError, TypeError) as exc:
                self._send(400, str(exc).encode(), "text/plain")
                return
            self._send(200, b'{"ok": true}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            reply(self, status, body, content_type, headers)

        def _send_chunked(self, route: Route) -> None:
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Transfer-Encoding", "chunked")
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for chunk in route.body():  # type: ignore[operator]
                    if not chunk:
                        continue
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    if route.chunk_delay:
                        time.sleep(route.chunk_delay)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


def _serve_examples(server: FakeWebServer) -> None:
    root = Path(__file__).resolve().parents[2]
    from tests.data.generate import ARTICLE_HTML, NO_TEXT_HTML

    server.page("/article", ARTICLE_HTML)
    server.page("/empty", NO_TEXT_HTML)
    server.redirect("/loop", "/loop")
    for pdf in sorted((root / "examples" / "pdfs").glob("*.pdf")):
        server.pdf(f"/pdfs/{pdf.name}", pdf.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = FakeWebServer(args.port)
    _serve_examples(server)
    print(f"fake web server on {server.url} (routes: {', '.join(sorted(server.routes))})", flush=True)
    serve_until_interrupted(server.close)


if __name__ == "__main__":
    main()
