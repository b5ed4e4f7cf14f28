"""Reading one feed, cheaply when nothing changed.

A URL is fetched with the validators of its last download (``If-None-Match``,
``If-Modified-Since``): a 304 is the end of it, with no parsing. A body whose
SHA-256 equals the last one is not parsed either. A local file (``RSS_FEEDS``
accepts paths) is read with the same size cap and the same hash check. A body
that is parsed is parsed in slices (``feeds.slices``): the first slice
is checked to be a feed, the others are parsed as capture asks for them.

Whatever goes wrong is a :class:`~knowledge_pipeline.feeds.health.FeedError`
whose ``kind`` says whether it is worth retrying soon.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

import feedparser

from ..errors import ItemError, ServiceError
from ..extract import read_file_capped
from ..extract.fetch import Fetcher
from .discovery import feed_of_page
from .slices import slices
from .document import feed_links, looks_like_html, moved_to
from .health import PERMANENT, TRANSIENT, FeedError, error_kind
from .state import FeedState

# A Retry-After up to this many seconds is waited for within the run (the
# gateway's retry); a longer one pauses the host's feeds instead.
IN_RUN_RETRY_WAIT = 10.0
FETCHED, NOT_MODIFIED, UNCHANGED = "fetched", "not_modified", "unchanged"


class HostBusyError(FeedError):
    """The host answered 429/503 with a ``Retry-After`` too long to wait for in this run."""

    def __init__(self, message: str, status_code: int, retry_after: float) -> None:
        super().__init__(message, TRANSIENT)
        self.status_code = status_code
        self.retry_after = retry_after


@dataclass(frozen=True)
class Download:
    """One feed read. ``parsed`` (the first slice; ``rest``: the others, lazily) is None when the
    feed was not modified or its body is unchanged."""

    outcome: str
    parsed: feedparser.FeedParserDict | None = None
    rest: Iterator[feedparser.FeedParserDict] = field(default_factory=lambda: iter(()))
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    moved_to: str | None = None
    bytes: int = 0


def is_url(location: str) -> bool:
    return urlsplit(location).scheme.lower() in ("http", "https")


def host_of(location: str) -> str:
    """The host a feed is fetched from (per-host limits, Retry-After pauses)."""
    return (urlsplit(location).hostname or "").lower() if is_url(location) else "(local files)"


def fetch_location(feed_url: str, fetch_url: str | None) -> str:
    """Where the feed is read: ``fetch_url`` (a permanent redirect's target) or its own URL.

    The feed state stores URLs without credentials, so a feed whose URL carries
    ``user:password@`` gets them back on its new address when that address is on
    the same host (never on another host, never from https down to http).
    """
    if not fetch_url:
        return feed_url
    own, there = urlsplit(feed_url), urlsplit(fetch_url)
    if "@" not in own.netloc or "@" in there.netloc or not is_url(fetch_url):
        return fetch_url
    same_host = (own.hostname or "").lower() == (there.hostname or "").lower()
    if not same_host or (own.scheme.lower() == "https" and there.scheme.lower() != "https"):
        return fetch_url
    userinfo = own.netloc.rpartition("@")[0]
    return urlunsplit(there._replace(netloc=f"{userinfo}@{there.netloc}"))


async def download(location: str, state: FeedState | None, fetcher: Fetcher, *, max_bytes: int) -> Download:
    """Read the feed at ``location``; raises FeedError."""
    if is_url(location):
        return await _from_web(location, state, fetcher, max_bytes)
    scheme = urlsplit(location).scheme.lower()
    if scheme and scheme != "file" and len(scheme) > 1:
        raise FeedError(f"unsupported feed location {scheme}: (use http(s):// or a file path)", PERMANENT)
    path = Path(unquote(urlsplit(location).path)) if scheme == "file" else Path(location).expanduser()
    data = await asyncio.to_thread(_read_file, path, max_bytes)
    digest = _sha256(data)
    if state is not None and state.last_hash == digest:
        return Download(UNCHANGED, body_hash=digest, bytes=len(data))
    parts = slices(data, {})
    parsed = await asyncio.to_thread(next, parts)
    _check_parsed(parsed, data, "")
    return Download(FETCHED, parsed, parts, body_hash=digest, bytes=len(data))


async def _from_web(url: str, state: FeedState | None, fetcher: Fetcher, max_bytes: int) -> Download:
    try:
        fetched = await fetcher.fetch(
            url, max_bytes=max_bytes, headers=_validators(state), max_retry_wait=IN_RUN_RETRY_WAIT
        )
    except ServiceError as exc:
        if exc.status_code in (429, 503) and exc.retry_after is not None and exc.retry_after > IN_RUN_RETRY_WAIT:
            raise HostBusyError(str(exc), exc.status_code, exc.retry_after) from None
        raise FeedError(str(exc), error_kind(exc)) from None
    except ItemError as exc:
        raise FeedError(str(exc), PERMANENT) from None
    etag, modified = fetched.headers.get("etag"), fetched.headers.get("last-modified")
    moved = moved_to(fetched)
    if fetched.status_code == 304:
        return Download(NOT_MODIFIED, etag=etag, last_modified=modified, moved_to=moved)
    if fetched.truncated:
        raise FeedError(f"feed larger than MAX_DOWNLOAD_MB ({max_bytes / 1048576:.3g} MB)", PERMANENT)
    digest = _sha256(fetched.body)
    if state is not None and state.last_hash == digest:
        return Download(UNCHANGED, etag=etag, last_modified=modified, body_hash=digest, moved_to=moved,
                        bytes=len(fetched.body))
    headers = {}  # no content-location: relative entry links are resolved by capture (xml:base, self link)
    if fetched.content_type:
        headers["content-type"] = fetched.content_type + (f"; charset={fetched.charset}" if fetched.charset else "")
    parts = slices(fetched.body, headers)
    parsed = await asyncio.to_thread(next, parts)
    if not parsed.entries and not parsed.get("version") and looks_like_html(fetched.body, fetched.content_type):
        feed = await feed_of_page(fetched, fetcher, max_bytes=max_bytes)
        raise FeedError(_web_page_message(feed), PERMANENT)
    _check_parsed(parsed, fetched.body, fetched.content_type)
    return Download(FETCHED, parsed, parts, etag, modified, digest, moved, len(fetched.body))


def _validators(state: FeedState | None) -> dict[str, str]:
    headers = {}
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _check_parsed(parsed: feedparser.FeedParserDict, body: bytes, content_type: str) -> None:
    if parsed.entries:
        return
    problem = f" ({parse_problem(parsed.get('bozo_exception'))})" if parsed.get("bozo") else ""
    if not parsed.get("version"):
        if looks_like_html(body, content_type):
            links = feed_links(body, "")
            raise FeedError(_web_page_message(links[0] if links else None), PERMANENT)
        raise FeedError("not an RSS or Atom feed" + problem, TRANSIENT)
    if problem:
        raise FeedError("cannot parse feed" + problem, TRANSIENT)


def _web_page_message(feed: str | None) -> str:
    if feed:
        return f"this is a web page, not a feed; its feed is at {feed}"
    return "this is a web page, not a feed, and it announces no feed (try `feeds add` with the site's address)"


def _read_file(path: Path, cap: int) -> bytes:
    try:
        data, truncated = read_file_capped(path, cap, "feed file")
    except ItemError as exc:
        raise FeedError(exc.reason, PERMANENT) from None
    if truncated:
        raise FeedError(f"feed file larger than MAX_DOWNLOAD_MB ({cap / 1048576:.3g} MB): {path}", PERMANENT)
    return data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_problem(exc: object) -> str:
    """What the feed parser complained of (``bozo_exception``), on one line of at most 200 characters."""
    text = " ".join(str(exc).split()) if exc is not None else "unknown problem"
    return text[:200]
