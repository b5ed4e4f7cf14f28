"""A fake feed publisher: many host names on one 127.0.0.1 server, with HTTP caching and faults.

Feeds are served by (host, path); hosts are told apart by the ``Host``
header, and the real :class:`~knowledge_pipeline.extract.fetch.Fetcher`
reaches them through :meth:`FakeFeedServer.resolver` (every name served here
resolves to 127.0.0.1)::

    with FakeFeedServer(latency=0.2) as server:
        url = server.feed("news.test", "/rss", rss_document("news.test", 20))
        server.moved("old.test", "/feed", url)                # 301
        server.gone("dead.test", "/feed")                     # 410
        server.busy("slow.test", retry_after=3600)            # every request: 429 + Retry-After
        server.slow("slow.test", 5.0)                         # each answer after 5 s
        server.down("down.test")                              # resolves, refuses connections
        server.missing("nxdomain.test")                       # the name does not exist
        fetcher = Fetcher(settings, gateway, resolver=server.resolver)

It speaks HTTP caching like a real publisher: every feed has an ``ETag`` (a
hash of its body) and a ``Last-Modified``; ``If-None-Match`` (first) or
``If-Modified-Since`` that still match get a 304 with no body.
``stats()`` counts requests and answers per host and status, the bytes
written (status line, headers and body), and the most requests any host
had in flight at once.

Run on its own (``python -m tests.fakes.feed_server``) it serves one feed for
manual poking.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import socket
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from tests.fakes import QuietHTTPServer, ServedFake, serve_until_interrupted
from tests.prose import sentences

_STATUS_TEXT = {200: "OK", 301: "Moved Permanently", 302: "Found", 304: "Not Modified", 308: "Permanent Redirect",
                404: "Not Found", 410: "Gone", 429: "Too Many Requests", 503: "Service Unavailable"}


@dataclass
class FeedRoute:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None
    conditional: bool = True


@dataclass
class _Host:
    delay: float = 0.0
    busy_status: int | None = None
    retry_after: str | None = None
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)


def rss_document(host: str, entries: int = 20, *, version: int = 0, words: int = 60,
                 newest: datetime | None = None, full_text: bool = False) -> bytes:
    """An RSS 2.0 feed of ``host`` with ``entries`` items, ~100 + 7 x ``words`` bytes each.

    ``version`` shifts the entries: version 1 has one new entry on top. With
    ``full_text`` each item also carries its article (``content:encoded``), so
    enriching it needs no page fetch.
    """
    newest = newest or datetime(2026, 11, 28, tzinfo=timezone.utc)
    text = " ".join(["Lorem ipsum dolor sit amet consectetur adipiscing elit"] * (words // 8 + 1)).split()[:words]
    items = []
    for i in range(entries):
        when = newest + timedelta(hours=6 * (version - i))
        number = version + entries - i
        items.append(
            f"<item><title>{escape(host)} story {number}</title>"
            f"<link>https://{escape(host)}/posts/{number}</link><guid>https://{escape(host)}/posts/{number}</guid>"
            f"<pubDate>{email.utils.format_datetime(when)}</pubDate>"
            f"<description>{' '.join(text)}</description>"
            + (f"<content:encoded>{escape(_article(host, number))}</content:encoded>" if full_text else "")
            + "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>{escape(host)} news</title><link>https://{escape(host)}/</link><description>news</description>"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode("utf-8")


def _article(host: str, number: int) -> str:
    """Each story its own text: since issue 15 one story's near-copy is skipped as a duplicate."""
    sentence = (f"Story {number} from {host} explains how a research team measured inference costs, "
                "which vendors they compared and what the numbers mean for buyers this year. ")
    return "<p>" + sentence + sentences(zlib.crc32(f"{host}/{number}".encode()), 6) + "</p>"


class _Server(QuietHTTPServer):
    # hundreds of feeds connect at once: a backlog of 5 would drop SYNs (1 s retransmit)
    request_queue_size = 1024


class FakeFeedServer(ServedFake):
    def __init__(self, *, latency: float = 0.0, port: int = 0) -> None:
        self.latency = latency
        self.routes: dict[tuple[str, str], FeedRoute] = {}
        self.hosts: dict[str, _Host] = {}
        self.log: list[dict[str, Any]] = []
        self.bytes_sent = 0
        self.body_bytes_sent = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._down: set[str] = set()
        self._missing: set[str] = set()
        self._lock = threading.Lock()
        self._serve(_Server(("127.0.0.1", port), _handler_for(self)), "fake-feeds")
        self.port = self._server.server_address[1]

    # ---------------------------------------------------------------- publishing
    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def feed(self, host: str, path: str, body: bytes | str, *, conditional: bool = True,
             content_type: str = "application/rss+xml; charset=utf-8") -> str:
        """Publish (or replace) a feed; its ETag and Last-Modified change with its body."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self._lock:
            self._host(host)
            self.routes[(host, path)] = FeedRoute(
                body=data,
                content_type=content_type,
                etag='"' + hashlib.sha256(data).hexdigest()[:16] + '"',
                last_modified=email.utils.formatdate(time.time(), usegmt=True),
                conditional=conditional,
            )
        return self.url(host, path)

    def page(self, host: str, path: str, html: str) -> str:
        return self.feed(host, path, html, content_type="text/html; charset=utf-8", conditional=False)

    def moved(self, host: str, path: str, location: str, status: int = 301) -> str:
        with self._lock:
            self._host(host)
            self.routes[(host, path)] = FeedRoute(status=status, location=location)
        return self.url(host, path)

    def gone(self, host: str, path: str, status: int = 410) -> str:
        with self._lock:
            self._host(host)
            self.routes[(host, path)] = FeedRoute(status=status, body=b"gone", content_type="text/plain")
        return self.url(host, path)

    def busy(self, host: str, retry_after: float | str | None, status: int = 429) -> None:
        """Every request to ``host`` gets ``status`` with this Retry-After (None: serve normally again)."""
        with self._lock:
            entry = self._host(host)
            entry.busy_status = status if retry_after is not None else None
            entry.retry_after = None if retry_after is None else str(retry_after)

    def slow(self, host: str, delay: float) -> None:
        with self._lock:
            self._host(host).delay = delay

    def down(self, host: str) -> None:
        """The name resolves, but nothing listens there (connection refused)."""
        self._down.add(host)

    def missing(self, host: str) -> None:
        """The name does not exist (NXDOMAIN)."""
        self._missing.add(host)

    async def resolver(self, host: str, port: int) -> list[str]:
        if host in self._missing:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return ["127.0.0.2" if host in self._down else "127.0.0.1"]

    # ---------------------------------------------------------------- inspecting
    def stats(self) -> dict[str, Any]:
        with self._lock:
            statuses: Counter = Counter()
            for entry in self.hosts.values():
                statuses.update(entry.statuses)
            return {
                "requests": sum(h.requests for h in self.hosts.values()),
                "statuses": dict(statuses),
                "bytes": self.bytes_sent,
                "body_bytes": self.body_bytes_sent,
                "max_in_flight_per_host": max((h.max_in_flight for h in self.hosts.values()), default=0),
                "max_in_flight": self.max_in_flight,
                "hosts": {name: {"requests": h.requests, "max_in_flight": h.max_in_flight,
                                 "statuses": dict(h.statuses)} for name, h in self.hosts.items()},
            }

    def requests_to(self, host: str, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.log if r["host"] == host and (path is None or r["path"] == path)]

    def reset_stats(self) -> None:
        with self._lock:
            self.log.clear()
            self.bytes_sent = self.body_bytes_sent = self.max_in_flight = 0
            for entry in self.hosts.values():
                entry.requests = entry.max_in_flight = 0
                entry.statuses.clear()

    # ---------------------------------------------------------------- internals
    def _host(self, name: str) -> _Host:
        return self.hosts.setdefault(name, _Host())

    def _begin(self, host: str, entry: dict[str, Any]) -> _Host:
        with self._lock:
            state = self._host(host)
            state.requests += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.log.append(entry)
            return state

    def _end(self, host: str, status: int, wire: int, body: int) -> None:
        with self._lock:
            state = self._host(host)
            state.in_flight -= 1
            self.in_flight -= 1
            state.statuses[status] += 1
            self.bytes_sent += wire
            self.body_bytes_sent += body

    def answer(self, host: str, path: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            state = self._host(host)
            delay = self.latency + state.delay
            busy, retry_after = state.busy_status, state.retry_after
            route = self.routes.get((host, path))
        if delay:
            time.sleep(delay)
        if busy is not None:
            return busy, {"Retry-After": retry_after or "0", "Content-Type": "text/plain"}, b"slow down"
        if route is None:
            return 404, {"Content-Type": "text/html"}, b"<html><body><h1>Not found</h1></body></html>"
        if route.location is not None:
            return route.status, {"Location": route.location}, b""
        if route.status != 200:
            return route.status, {"Content-Type": route.content_type}, route.body
        cache = {"ETag": route.etag or "", "Last-Modified": route.last_modified or ""} if route.conditional else {}
        if route.conditional and _not_modified(route, headers):
            return 304, cache, b""
        return 200, {"Content-Type": route.content_type, **cache}, route.body


def _not_modified(route: FeedRoute, headers: Any) -> bool:
    match = headers.get("If-None-Match")
    if match is not None:
        return match.strip() == "*" or route.etag in [tag.strip() for tag in match.split(",")]
    since = headers.get("If-Modified-Since")
    if since is None or route.last_modified is None:
        return False
    try:
        return email.utils.parsedate_to_datetime(route.last_modified) <= email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


def _handler_for(server: FakeFeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
            pass

        def do_GET(self) -> None:  # noqa: N802
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
            path = urlsplit(self.path).path + (f"?{urlsplit(self.path).query}" if urlsplit(self.path).query else "")
            server._begin(host, {"host": host, "path": path, "time": time.monotonic(),
                                 "if_none_match": self.headers.get("If-None-Match"),
                                 "if_modified_since": self.headers.get("If-Modified-Since")})
            status, headers, payload = 500, {}, b"internal error"
            try:
                status, headers, payload = server.answer(host, path, self.headers)
            finally:
                # no longer in flight once the answer is ready: the client may ask again as soon as it is sent
                server._end(host, status, self._size(status, headers, payload), len(payload))
                self._send(status, headers, payload)

        def _raw(self, status: int, headers: dict[str, str], body: bytes) -> bytes:
            lines = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Status')}",
                     f"Date: {email.utils.formatdate(usegmt=True)}", "Server: fake-feeds"]
            lines += [f"{key}: {value}" for key, value in headers.items()]
            if status != 304:
                lines.append(f"Content-Length: {len(body)}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

        def _size(self, status: int, headers: dict[str, str], body: bytes) -> int:
            return len(self._raw(status, headers, body))

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.wfile.write(self._raw(status, headers, body))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    server = FakeFeedServer(port=args.port)
    url = server.feed("127.0.0.1", "/rss", rss_document("example.test"))
    print(f"fake feed server: {url} (ETag, Last-Modified, 304)", flush=True)
    serve_until_interrupted(server.close)


if __name__ == "__main__":
    main()
