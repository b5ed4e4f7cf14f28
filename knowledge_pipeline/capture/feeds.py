"""Feed capture: RSS/Atom entries become Inbox items, once each.

Feeds (``RSS_FEEDS``) are URLs, downloaded by the guarded :class:`Fetcher`
(feedparser never touches the network), or local file paths. A feed that
cannot be read is reported and the others go on. Each entry is deduplicated by
the hash of its canonical link, against the store and across feeds of the same
run. When a feed carries the full article (``content:encoded``, Atom
``<content>``) its text is stored with the item so no page fetch is needed.
"""

from __future__ import annotations

import asyncio
import calendar
import heapq
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urljoin, urlsplit

import feedparser

from ..config import Settings
from ..errors import ItemError
from ..extract import read_file_capped
from ..extract.fetch import Fetcher
from ..extract.html import html_to_text
from ..models import NewItem, SourceType, sha256_text
from ..sources.base import SourceStore
from ..telemetry import Telemetry
from ..urls import shown_url, strip_userinfo
from . import CaptureReport, feed_slices, store_new
from .links import LinkError, canonical_link, title_from_link

FULL_TEXT_MIN_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_TITLE = 300


class FeedError(Exception):
    """A feed that could not be read at all; the message is the one-line reason."""


@dataclass
class _Tally:
    found: int = 0
    too_old: int = 0


class _Newest:
    """The ``limit`` newest new entries of one feed (FEED_MAX_ENTRIES); the others are counted in ``over``.

    Newest by publication date; an entry without a date counts as newer than
    any dated one (the window keeps undated entries too), and among equals the
    one earlier in the feed wins (feeds list newest first).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.over = 0
        self.seen: set[str] = set()
        self._heap: list[tuple] = []

    def offer(self, entry: Any, link: str, digest: str, published: datetime | None, position: int) -> None:
        self.seen.add(digest)
        rank = (1, 0.0, -position) if published is None else (0, published.timestamp(), -position)
        heapq.heappush(self._heap, (rank, position, link, digest, published, entry))
        if len(self._heap) > self.limit:
            heapq.heappop(self._heap)
            self.over += 1

    def kept(self) -> list[tuple[Any, str, str, datetime | None]]:
        """The kept entries (entry, resolved link, hash, date) in feed order."""
        return [(entry, link, digest, published)
                for _, _, link, digest, published, entry in sorted(self._heap, key=lambda k: k[1])]


async def capture_feeds(
    settings: Settings,
    store: SourceStore,
    fetcher: Fetcher,
    telemetry: Telemetry,
    *,
    known_hashes: set[str],
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[CaptureReport]:
    """Capture every feed of ``settings.rss_feeds``; one report per feed.

    ``known_hashes`` (the store's hashes) grows with each item added, so the
    same link in two feeds is added once. With ``dry_run`` nothing is added and
    ``would_add`` lists what would have been.
    """
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=settings.rss_window_days) if settings.rss_window_days else None
    reports = []
    for source in settings.rss_feeds:
        reports.append(
            await _capture_one(settings, store, fetcher, telemetry, source, cutoff, known_hashes, dry_run)
        )
    return reports


async def _capture_one(
    settings: Settings,
    store: SourceStore,
    fetcher: Fetcher,
    telemetry: Telemetry,
    source: str,
    cutoff: datetime | None,
    known_hashes: set[str],
    dry_run: bool,
) -> CaptureReport:
    report = CaptureReport(source=shown_url(source, limit=None))
    telemetry.event("capture_start", f"reading feed {report.source}", source=report.source, kind="feed")
    try:
        parts, parsed = await _read_within(settings, source, fetcher)
    except FeedError as exc:
        report.errors.append(str(exc))
        telemetry.event(
            "feed_error",
            f"feed {report.source} skipped: {exc}",
            level=logging.ERROR,
            source=report.source,
            error=str(exc),
        )
        _complete(telemetry, report, _Tally(), 0)
        return report
    if parsed.get("bozo"):
        warning = _one_line(parsed.get("bozo_exception"))
        telemetry.event(
            "feed_warning",
            f"feed {report.source} is not well-formed ({warning}); its complete entries are kept",
            level=logging.WARNING,
            source=report.source,
            warning=warning,
        )
    tally, newest = _Tally(), _Newest(settings.feed_max_entries)
    base = _feed_base(parsed, source)
    while parsed is not None:
        for entry in parsed.entries:
            tally.found += 1
            _screen(entry, report, tally, telemetry, cutoff, known_hashes, newest, base)
        parsed = await asyncio.to_thread(next, parts, None)
    for entry, link, digest, published in newest.kept():
        await _capture_entry(entry, link, digest, published, report, store, telemetry, known_hashes, dry_run)
    if newest.over:
        telemetry.event(
            "feed_entries_capped",
            f"feed {report.source}: {newest.over} more new entries than FEED_MAX_ENTRIES={newest.limit}; "
            f"the {newest.limit} newest were taken, the others are left for the next runs",
            level=logging.WARNING,
            source=report.source,
            limit=newest.limit,
            kept=len(newest.kept()),
            over_cap=newest.over,
        )
    _complete(telemetry, report, tally, newest.over)
    return report


def _screen(
    entry: Any,
    report: CaptureReport,
    tally: _Tally,
    telemetry: Telemetry,
    cutoff: datetime | None,
    known_hashes: set[str],
    newest: _Newest,
    base: str | None,
) -> None:
    """Window, link and dedup checks; an entry that passes them competes for FEED_MAX_ENTRIES."""
    published = _entry_datetime(entry)
    if cutoff is not None and published is not None and published < cutoff:
        tally.too_old += 1
        return
    link = (entry.get("link") or "").strip()
    try:
        if not link:
            raise LinkError("entry without a link")
        link = _resolved(entry, link, base)
        canonical = canonical_link(link)
    except LinkError as exc:
        report.reject(telemetry, f"entry {(entry.get('title') or '')[:80]!r}", str(exc), kind=exc.kind,
                      level=logging.DEBUG, error=False)
        return
    digest = sha256_text(canonical)
    if digest in known_hashes or digest in newest.seen:
        report.duplicates += 1
        return
    newest.offer(entry, link, digest, published, tally.found)


def _feed_base(parsed: feedparser.FeedParserDict, source: str) -> str | None:
    """What relative entry links resolve against after xml:base: the feed's self link, its
    alternate (site) link, then the feed's own URL (None for a local file without either)."""
    url = source if _is_web(source) else ""
    links = (parsed.get("feed") or {}).get("links") or []
    for rel in ("self", "alternate"):
        for link in links:
            href = _joined(url, link.get("href") or "") if link.get("rel") == rel else ""
            if _is_web(href):
                return href
    return url or None


def _resolved(entry: Any, link: str, base: str | None) -> str:
    """``link`` made absolute with the entry's xml:base (itself resolved against ``base``), then ``base``."""
    try:
        if urlsplit(link).scheme:
            return link
    except ValueError:
        return link  # canonical_link() says how it is malformed
    details = [entry.get("title_detail"), entry.get("summary_detail"), *(entry.get("content") or ())]
    xml_base = next((d.get("base") for d in details if d and d.get("base")), "")
    root = _joined(base or "", xml_base) if xml_base else base or ""
    if not _is_web(root):
        raise LinkError(f"relative link {link[:200]!r} and no base to resolve it (no xml:base, self or "
                        "alternate link in the feed)", "relative link and no base to resolve it")
    return urljoin(root, link)


def _joined(base: str, href: str) -> str:
    try:
        return urljoin(base, href.strip())
    except ValueError:
        return ""


def _is_web(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


async def _capture_entry(
    entry: Any,
    link: str,
    digest: str,
    published: datetime | None,
    report: CaptureReport,
    store: SourceStore,
    telemetry: Telemetry,
    known_hashes: set[str],
    dry_run: bool,
) -> None:
    item = NewItem(
        title=_entry_title(entry, link),
        source_type=SourceType.RSS,
        hash=digest,
        url=link,
        content=await asyncio.to_thread(_full_text, entry, link),
        created_date=published.date() if published else None,
    )
    await store_new(store, item, report, telemetry, known_hashes=known_hashes, dry_run=dry_run,
                    url=shown_url(link, limit=None),
                    has_content=item.content is not None)


def _complete(telemetry: Telemetry, report: CaptureReport, tally: _Tally, over_cap: int) -> None:
    report.found = tally.found
    if report.rejected * 2 > tally.found:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in report.rejected_reasons.most_common())
        warning = f"{report.rejected} of {tally.found} entries rejected ({reasons})"
        telemetry.event("feed_warning", f"feed {report.source}: {warning}", level=logging.WARNING,
                        source=report.source, warning=warning, rejected=report.rejected, found=tally.found,
                        rejected_reasons=dict(report.rejected_reasons))
    telemetry.event(
        "capture_complete",
        f"feed {report.source}: {tally.found} entries, {report.added} added, {report.duplicates} duplicates, "
        f"{report.rejected} rejected, {tally.too_old} older than the window"
        + (f", {over_cap} beyond FEED_MAX_ENTRIES" if over_cap else ""),
        source=report.source,
        kind="feed",
        found=tally.found,
        added=report.added,
        would_add=len(report.would_add),
        duplicates=report.duplicates,
        rejected=report.rejected,
        rejected_reasons=dict(report.rejected_reasons),
        too_old=tally.too_old,
        over_cap=over_cap,
        errors=list(report.errors),
    )


async def _read_within(
    settings: Settings, source: str, fetcher: Fetcher
) -> tuple[Iterator[feedparser.FeedParserDict], feedparser.FeedParserDict]:
    """One feed is one deadline (ITEM_TIMEOUT), like one item: redirects, retries and the first parse.

    Returns the slices still to parse and the first one, checked to be a feed.
    """
    deadline = asyncio.timeout(settings.item_timeout)
    try:
        async with deadline:
            parts = await _read_and_slice(source, fetcher, settings.max_download_bytes)
            parsed = await asyncio.to_thread(next, parts)
            _check_feed(parsed)
            return parts, parsed
    except TimeoutError:
        if not deadline.expired():
            raise
        raise FeedError(f"feed took longer than ITEM_TIMEOUT={settings.item_timeout:g}s") from None


async def _read_and_slice(source: str, fetcher: Fetcher, cap: int) -> Iterator[feedparser.FeedParserDict]:
    """Download or read the feed (size-capped); its parse, slice by slice, from memory."""
    scheme = urlsplit(source).scheme.lower()
    headers: dict[str, str] = {}
    if scheme in ("http", "https"):
        try:
            fetched = await fetcher.fetch(source, max_bytes=cap)
        except ItemError as exc:
            raise FeedError(str(exc)) from None
        if fetched.truncated:
            raise FeedError(f"feed larger than MAX_DOWNLOAD_MB ({cap / 1048576:g} MB)")
        data = fetched.body
        if fetched.content_type:
            headers["content-type"] = fetched.content_type + (f"; charset={fetched.charset}" if fetched.charset else "")
    elif scheme == "file" or not scheme or len(scheme) == 1:
        path = Path(unquote(urlsplit(source).path)) if scheme == "file" else Path(source).expanduser()
        data = await asyncio.to_thread(_read_file, path, cap)
    else:
        raise FeedError(f"unsupported feed location {scheme}: (use http(s):// or a file path)")
    return feed_slices.slices(data, headers)


def _check_feed(parsed: feedparser.FeedParserDict) -> None:
    """A FeedError when the (first part of the) document holds no entry and is no feed."""
    if not parsed.entries:
        problem = f" ({_one_line(parsed.get('bozo_exception'))})" if parsed.get("bozo") else ""
        if not parsed.get("version"):
            raise FeedError("not an RSS or Atom feed" + problem)
        if problem:
            raise FeedError("cannot parse feed" + problem)


def _read_file(path: Path, cap: int) -> bytes:
    try:
        data, truncated = read_file_capped(path, cap, "feed file")
    except ItemError as exc:
        raise FeedError(exc.reason) from None
    if truncated:
        raise FeedError(f"feed file larger than MAX_DOWNLOAD_MB ({cap / 1048576:g} MB): {path}")
    return data


def _entry_datetime(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _entry_title(entry: Any, link: str) -> str:
    title = entry.get("title") or ""
    if "<" in title and ">" in title:
        title = html_to_text(title) or title
    title = strip_userinfo(" ".join(_CONTROL.sub(" ", title).split()))
    if not title:
        return title_from_link(link)
    return title if len(title) <= _MAX_TITLE else title[: _MAX_TITLE - 1] + "…"


def _full_text(entry: Any, link: str) -> str | None:
    """The article text the feed carries, if it is the full article (not a teaser)."""
    best = ""
    for content in entry.get("content") or ():
        value = content.get("value") or ""
        kind = (content.get("type") or "").lower()
        text = html_to_text(value, link) if "html" in kind else value.strip()
        if len(text) > len(best):
            best = text
    if len(best) <= FULL_TEXT_MIN_CHARS:
        return None
    summary = entry.get("summary") or ""
    if len(summary) > len(best):
        summary_text = html_to_text(summary, link) if "<" in summary else summary.strip()
        if len(summary_text) > len(best):
            return None
    return best


def _one_line(exc: object) -> str:
    text = " ".join(str(exc).split()) if exc is not None else "unknown problem"
    return text[:200]
