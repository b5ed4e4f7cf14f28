"""Posting JSON to a Slack-style incoming webhook (alerts, digests).

One attempt, bounded by ``timeout`` seconds in total, never raising: the
caller gets None on a 2xx answer or a one-line error. It does not go through
``ServiceGateway`` on purpose: a webhook is posted once at the end of a run
or of a digest, and retries with backoff would hold a cron slot for a
receiver that is down. A webhook URL often carries its secret in the path, so
only :func:`safe_origin` (scheme and host) may reach a log or an error.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import USER_AGENT


def safe_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: no user info, path or query (they may hold a secret)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or '?'}{port}"
    except ValueError:
        return "(invalid URL)"


async def post_json(url: str, payload: dict[str, Any], timeout: float = 5.0) -> str | None:
    """None on a 2xx answer, else a one-line error that does not contain the URL."""
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), headers={"User-Agent": USER_AGENT}, follow_redirects=False
        ) as client:
            response = await asyncio.wait_for(client.post(url, json=payload), timeout)
    except asyncio.TimeoutError:
        return f"no answer within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - a webhook must never break what posts it
        return _scrub(f"{type(exc).__name__}: {exc}".rstrip(": "), url)
    if not response.is_success:
        return f"HTTP {response.status_code}"
    return None


def _scrub(text: str, url: str) -> str:
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.netloc):
        if secret and secret not in ("/",):
            text = text.replace(secret, "[REDACTED]")
    return text
