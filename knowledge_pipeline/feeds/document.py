"""A downloaded feed document: tell a feed from a web page, find a page's feeds, see where it moved.

Parsing itself is ``feeds.slices`` (in slices, so memory follows the slice).
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import feedparser

from ..extract.fetch import Fetched

FEED_LINK_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HEAD_BYTES = 512 * 1024
_MAX_LINKS = 20


def is_feed(parsed: feedparser.FeedParserDict) -> bool:
    return bool(parsed.get("version")) or bool(parsed.entries)


def moved_to(fetched: Fetched) -> str | None:
    """Where a feed lives now, if every redirect to it was permanent (301/308); else None."""
    if fetched.redirects and all(status in (301, 308) for status, _ in fetched.redirects):
        return fetched.url
    return None


def looks_like_html(body: bytes, content_type: str = "") -> bool:
    """A web page rather than a feed (by its Content-Type, else by its first bytes)."""
    if content_type in _HTML_TYPES:
        return True
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or (b"<html" in head and b"<rss" not in head)


def feed_links(html: bytes, base_url: str) -> list[str]:
    """The feeds a web page announces (``<link rel="alternate" type="application/rss+xml" href=...>``), in order."""
    finder = _LinkFinder()
    try:
        finder.feed(html[:_HEAD_BYTES].decode("utf-8", errors="replace"))
        finder.close()
    except _Done:
        pass
    base = urljoin(base_url, finder.base) if finder.base else base_url
    links = []
    for href in finder.hrefs:
        url = urljoin(base, href.strip())
        if url not in links:
            links.append(url)
    return links


class _Done(Exception):
    pass


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        elif tag == "link":
            rel = values.get("rel", "").lower().split()
            kind = values.get("type", "").split(";", 1)[0].strip().lower()
            if "alternate" in rel and kind in FEED_LINK_TYPES and values.get("href"):
                self.hrefs.append(values["href"])
                if len(self.hrefs) >= _MAX_LINKS:
                    raise _Done
        elif tag == "body":
            raise _Done
