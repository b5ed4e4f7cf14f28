"""Finding a site's feed from its address (``feeds add https://example.com``).

First the page itself (it may already be a feed), then the feeds it
announces with ``<link rel="alternate" type="application/rss+xml|atom+xml">``,
then the paths blogs and CMSs commonly use (``/feed``, ``/rss.xml``...),
beside the page and at the site's root. Every request goes through the
guarded :class:`~knowledge_pipeline.extract.fetch.Fetcher`, so a URL on a
private address is refused exactly as for capture.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import ItemError
from ..extract.fetch import Fetched, Fetcher
from .slices import parse_whole
from .document import feed_links, is_feed, looks_like_html, moved_to

COMMON_PATHS = (
    "feed", "feed/", "rss", "rss.xml", "feed.xml", "atom.xml", "index.xml", "feed/atom", "feeds/posts/default",
    "?feed=rss2",
)
MAX_ANNOUNCED = 5


class DiscoveryError(Exception):
    """No feed found; the message is one line saying what was tried."""


@dataclass(frozen=True)
class Found:
    """A feed: its URL, its own title, and the site it belongs to."""

    url: str
    title: str | None
    site_url: str | None


async def discover(url: str, fetcher: Fetcher, *, max_bytes: int) -> Found:
    """The feed at ``url``, or the feed of the site ``url`` is a page of."""
    page, problem = await _get(url, fetcher, max_bytes)
    if page is None:
        raise DiscoveryError(problem)
    found = await _as_feed(url, page)
    if found is not None:
        return found
    if not looks_like_html(page.body, page.content_type):
        raise DiscoveryError(f"{page.url} is neither a feed nor a web page ({page.content_type or 'no type'})")
    tried: list[str] = []
    for candidate in [*feed_links(page.body, page.url)[:MAX_ANNOUNCED], *common_candidates(page.url)]:
        if candidate in tried or candidate == page.url:
            continue
        tried.append(candidate)
        fetched, _ = await _get(candidate, fetcher, max_bytes)
        found = None if fetched is None else await _as_feed(candidate, fetched, site_url=page.url)
        if found is not None:
            return found
    raise DiscoveryError(
        f"{page.url} is a web page and no feed was found: it announces none and none of "
        f"{len(tried)} usual feed addresses answered with one"
    )


async def feed_of_page(page: Fetched, fetcher: Fetcher, *, max_bytes: int) -> str | None:
    """The first feed a web page announces that really is a feed, or None (capture's hint)."""
    for candidate in feed_links(page.body, page.url)[:MAX_ANNOUNCED]:
        fetched, _ = await _get(candidate, fetcher, max_bytes)
        if fetched is not None and (found := await _as_feed(candidate, fetched)) is not None:
            return found.url
    return None


def common_candidates(page_url: str) -> list[str]:
    """The usual feed paths beside the page, then at the site's root."""
    parts = urlsplit(page_url)
    root = f"{parts.scheme}://{parts.netloc}/"
    directory = urljoin(page_url, "./").split("?", 1)[0]
    candidates: list[str] = []
    for base in dict.fromkeys((directory, root)):
        for path in COMMON_PATHS:
            url = urljoin(base, path)
            if url not in candidates:
                candidates.append(url)
    return candidates


async def _get(url: str, fetcher: Fetcher, max_bytes: int) -> tuple[Fetched | None, str]:
    try:
        fetched = await fetcher.fetch(url, max_bytes=max_bytes)
    except ItemError as exc:
        return None, str(exc)
    if fetched.truncated:
        return None, f"{url} is larger than MAX_DOWNLOAD_MB"
    return fetched, ""


async def _as_feed(requested: str, fetched: Fetched, site_url: str | None = None) -> Found | None:
    if looks_like_html(fetched.body, fetched.content_type):
        return None
    parsed = await asyncio.to_thread(parse_whole, fetched.body, {})
    if not is_feed(parsed):
        return None
    channel = parsed.get("feed") or {}
    title = " ".join(str(channel.get("title") or "").split()) or None
    return Found(url=moved_to(fetched) or requested, title=title, site_url=channel.get("link") or site_url)
