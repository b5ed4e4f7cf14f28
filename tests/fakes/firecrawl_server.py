"""A fake Firecrawl scrape API (``POST /v1/scrape``) on 127.0.0.1, after Firecrawl's documented shapes.

Request: ``Authorization: Bearer <key>``, JSON ``{"url", "formats": [...], "onlyMainContent"}``
(``formats`` among markdown, html, rawHtml, links, screenshot...). Success:
``{"success": true, "data": {"markdown", "html", "metadata": {"title", "description",
"language", "sourceURL", "url", "statusCode"}}}`` with only the requested formats.
Errors: ``{"success": false, "error": "..."}`` with 400 (bad body), 401 (bad key),
402 (no credits), 429 (rate limit, ``Retry-After``) or 500.

    with FakeFirecrawl(api_key="fc-test") as firecrawl:
        firecrawl.page("http://site/app", markdown="# Title\n\nRendered text ...")
        firecrawl.fail_next(1, status=402)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes import QuietHTTPServer, ServedFake, reply

FORMATS = {"markdown", "html", "rawHtml", "links", "screenshot", "screenshot@fullPage", "summary", "images", "json"}
_ERRORS = {
    401: "Unauthorized: Invalid token",
    402: "Payment Required: Failed to scrape URL. Insufficient credits to perform this request.",
    429: "Rate limit exceeded. Consumed (req/min): 11, Remaining (req/min): 0. Upgrade your plan at "
         "https://firecrawl.dev/pricing for increased rate limits or please retry after 7s, resets at 2026-11-30",
    500: "An unexpected error occurred. Please contact help@firecrawl.com for help.",
}


class FakeFirecrawl(ServedFake):
    def __init__(self, api_key: str = "fc-test-key") -> None:
        self.api_key = api_key
        self.pages: dict[str, dict[str, str]] = {}
        self.requests: list[dict[str, Any]] = []
        self._faults: list[int] = []
        self._lock = threading.Lock()
        self._serve(QuietHTTPServer(("127.0.0.1", 0), _handler_for(self)))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def page(self, url: str, *, markdown: str = "", html: str = "", title: str = "") -> None:
        self.pages[url] = {"markdown": markdown, "html": html, "title": title}

    def fail_next(self, count: int, *, status: int) -> None:
        with self._lock:
            self._faults += [status] * count

    def scrape(self, authorization: str | None, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        if authorization != f"Bearer {self.api_key}":
            return 401, {"success": False, "error": _ERRORS[401]}, {}
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            headers = {"Retry-After": "7"} if fault == 429 else {}
            return fault, {"success": False, "error": _ERRORS.get(fault, "error")}, headers
        formats = body.get("formats", ["markdown"]) if isinstance(body, dict) else None
        if (not isinstance(body, dict) or not isinstance(body.get("url"), str) or not isinstance(formats, list)
                or not all(isinstance(f, str) and f in FORMATS for f in formats)):
            return 400, {"success": False, "error": "Bad Request",
                         "details": [{"code": "invalid_type", "path": ["url"], "message": "Required"}]}, {}
        url = body["url"]
        page = self.pages.get(url)
        status = 200 if page else 404
        page = page or {"markdown": "", "html": "", "title": "Not Found"}
        data: dict[str, Any] = {f: page[f] for f in ("markdown", "html") if f in formats}
        data["metadata"] = {"title": page["title"], "description": "", "language": "en", "sourceURL": url,
                            "url": url, "statusCode": status}
        return 200, {"success": True, "data": data}, {}


def _handler_for(fake: FakeFirecrawl) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            with fake._lock:
                fake.requests.append({"path": self.path, "body": body, "headers": dict(self.headers.items())})
            if self.path != "/v1/scrape":
                status, payload, headers = 404, {"success": False, "error": "Not Found"}, {}
            else:
                status, payload, headers = fake.scrape(self.headers.get("Authorization"), body)
            reply(self, status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    return Handler
