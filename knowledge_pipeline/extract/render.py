"""Rendering through Firecrawl for pages whose own HTML yields too little text (JavaScript sites).

Used only with ``FIRECRAWL_API_KEY``: ``POST {FIRECRAWL_BASE_URL}/v1/scrape``
with ``{"url", "formats": ["markdown", "html"], "onlyMainContent": true}`` and
``Authorization: Bearer <key>``; the answer is ``{"success": true, "data":
{"markdown", "html", "metadata": {...}}}`` or ``{"success": false, "error"}``.
Calls go through the gateway as service ``firecrawl``. Site cookies and
headers of ``WEBSITE_AUTH_CONFIGS`` are never sent to Firecrawl.
"""

from __future__ import annotations

import json
import re

import httpx

from .. import USER_AGENT
from ..config import Settings
from ..errors import ServiceError
from ..services import ServiceGateway, retry_after_seconds
from .decoding import ContentCodingError, read_capped
from .html import html_to_text

# A page whose extraction gives fewer characters than this is rendered by Firecrawl when configured.
RENDER_MIN_CHARS = 500
_MAX_RESPONSE = 32 * 1024 * 1024
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")


class Firecrawl:
    """A Firecrawl scrape client; ``close()`` it."""

    def __init__(self, settings: Settings, gateway: ServiceGateway) -> None:
        self.settings = settings
        self.gateway = gateway
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(max(settings.api_timeout, 30.0)),
            headers={"User-Agent": USER_AGENT, "Authorization": f"Bearer {settings.firecrawl_api_key}"},
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def scrape(self, url: str) -> str:
        """The rendered page's main text (markdown without images and link targets)."""
        endpoint = self.settings.firecrawl_base_url.rstrip("/") + "/v1/scrape"
        payload = {"url": url, "formats": ["markdown", "html"], "onlyMainContent": True}

        async def attempt() -> dict:
            async with self._client.stream("POST", endpoint, json=payload) as response:
                try:
                    body = await read_capped(response, _MAX_RESPONSE)
                except ContentCodingError as exc:
                    raise ServiceError("firecrawl", exc.at("the Firecrawl answer"), code="content_coding") from None
            if body.bomb:
                raise ServiceError("firecrawl", body.bomb_reason("the Firecrawl answer", _MAX_RESPONSE),
                                   code="decompression_bomb")
            if body.truncated:
                raise ServiceError("firecrawl", "Firecrawl answer larger than 32 MB", code="too_large")
            data = _json(bytes(body.data))
            if response.status_code >= 400 or not data.get("success", False):
                raise _error(response, data)
            return data

        data = await self.gateway.call("firecrawl", "scrape", attempt, classify=_classify,
                                       fields=lambda d: {"host": httpx.URL(url).host})
        page = data.get("data") if isinstance(data.get("data"), dict) else {}
        markdown = page.get("markdown") if isinstance(page.get("markdown"), str) else ""
        if markdown.strip():
            return markdown_to_text(markdown)
        html = page.get("html") if isinstance(page.get("html"), str) else ""
        return html_to_text(html, url) if html.strip() else ""


def markdown_to_text(markdown: str) -> str:
    """Markdown as reading text: images dropped, links reduced to their words."""
    return _LINK.sub(r"\1", _IMAGE.sub("", markdown)).strip()


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(response: httpx.Response, data: dict) -> ServiceError:
    status = response.status_code
    detail = " ".join(str(data.get("error") or f"HTTP {status}").split())[:200]
    retryable = status in (408, 429) or status >= 500
    hint = {401: " (check FIRECRAWL_API_KEY)", 402: " (Firecrawl credits exhausted)"}.get(status, "")
    return ServiceError("firecrawl", f"Firecrawl scrape failed: {detail}{hint}", status_code=status or None,
                        code=f"http_{status}", retryable=retryable,
                        retry_after=retry_after_seconds(response.headers) if retryable else None)


def _classify(exc: BaseException) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return ServiceError("firecrawl", "Firecrawl scrape timed out", code="timeout", retryable=True)
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError)):
        return ServiceError("firecrawl", f"cannot reach Firecrawl: {type(exc).__name__}", code="connection_error",
                            retryable=True)
    return ServiceError("firecrawl", f"Firecrawl request failed: {type(exc).__name__}", code="error")
