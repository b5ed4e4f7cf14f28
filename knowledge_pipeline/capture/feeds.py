"""Feed capture: RSS/Atom entries become Inbox items, once each.

The feeds are those of the feed list (``FEEDS_FILE``, OPML) and of
``RSS_FEEDS``: URLs, downloaded by the guarded :class:`Fetcher` (feedparser
never touches the network), or local file paths. They are read concurrently
(``FEED_CONCURRENCY``, at most two per host); each new entry is handed over
(``store_new``: in enrich-first, to the engine's queue) as soon as its feed is
parsed, so a slow feed holds back no other feed's items.

A feed answers 304 or repeats its last body: nothing is parsed and the
store is not asked anything. A feed that cannot be read is reported, its
error counted in the feed state (back-off, pause after ``FEED_MAX_ERRORS``),
and the others go on. Each entry is deduplicated by the hash of its canonical
link, against the store and across feeds of the same run; the
``FEED_MAX_ENTRIES`` newest new entries of a feed are stored, the others wait
for the next runs (and so does an entry the store refused: the feed's
validators are then not recorded). When a feed carries the full article
(``content:encoded``, Atom ``<content>``) its text is stored with the item so
no page fetch is needed.
"""

from __future__ import annotations

import asyncio
import calendar
import heapq
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator
from urllib.parse import urljoin, urlsplit

import feedparser

from ..config import Settings
from ..extract.fetch import Fetcher
from ..extract.html import html_to_text
from ..errors import one_line
from ..feeds.download import Download, HostBusyError, download, fetch_location, host_of, parse_problem
from ..feeds.feed_list import configured_feeds, edit_feed_file, env_feeds, find
from ..feeds.gate import HostGate
from ..feeds.health import FAILING, OK, PAUSED, TRANSIENT, FeedError, health, is_due, retry_delay
from ..feeds.opml import FeedSpec, OpmlError
from ..feeds.state import FeedState, FeedStateStore, Success
from ..models import NewItem, SourceType, sha256_text
from ..sources.base import SourceStore
from ..telemetry import Telemetry
from ..urls import shown_url, strip_userinfo
from . import CaptureReport, report_complete, store_new
from .known import loaded
from .links import LinkError, canonical_link, title_from_link

FULL_TEXT_MIN_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_TITLE = 300
MAX_HOST_PAUSE = timedelta(days=1)

# A feed's status in one run (telemetry.FEED_STATUSES, counted as pipeline_summary's
# feeds_*): ok, not_modified, failing, paused, deferred (its host asked to wait);
# and cancelled (shutdown before its turn), not counted.
NOT_MODIFIED, DEFERRED, CANCELLED = "not_modified", "deferred", "cancelled"


@dataclass
class _Tally:
    """One feed's entries: how many, how many too old, and the span of their dates."""

    found: int = 0
    too_old: int = 0
    dated: int = 0
    newest: datetime | None = None
    oldest: datetime | None = None
    over_cap: int = 0
    not_stored: int = 0

    def saw(self, published: datetime | None) -> None:
        self.found += 1
        if published is not None:
            self.dated += 1
            self.newest = published if self.newest is None else max(self.newest, published)
            self.oldest = published if self.oldest is None else min(self.oldest, published)


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
    stop: asyncio.Event | None = None,
) -> list[CaptureReport]:
    """Capture every configured feed; one report per feed, in the feed list's order.

    ``known_hashes`` (the store's hashes; a :class:`~.known.KnownHashes` is
    loaded only if some feed has entries to check) grows with each item
    added, so the same link in two feeds is added once. With ``dry_run``
    nothing is added, the feed state is not changed, and ``would_add`` lists
    what would have been.
    """
    first: list[CaptureReport] = []
    try:
        feeds = configured_feeds(settings)
    except OpmlError as exc:
        first.append(_list_error(telemetry, settings, str(exc)))
        feeds = env_feeds(settings)
    state = FeedStateStore(settings.feed_state_path, read_only=dry_run, secrets=settings.secrets).open()
    # A pool of its own, sized to the feeds in flight: most feeds sit on a host of their own, and with
    # httpx's default pool hundreds of idle connections pile up, which httpcore scans (quadratically)
    # for every request; at 500 feeds that cost more than the downloads (docs/performance.md).
    pooled = fetcher.with_pool(2 * settings.feed_concurrency)
    try:
        if state.bind_store(store.identity):
            telemetry.event("feed_state_reset", "another Sources store than last time: every feed is read in full once",
                            level=logging.WARNING, store=settings.sources_backend)
        run = _FeedRun(settings, store, pooled, telemetry, state, known_hashes, dry_run,
                       now or datetime.now(timezone.utc), stop)
        numbered = [pair async for pair in run.reports(feeds)]
    finally:
        await pooled.close()
        state.close()
    return first + [report for _, report in sorted(numbered, key=lambda pair: pair[0])]


def _list_error(telemetry: Telemetry, settings: Settings, error: str) -> CaptureReport:
    """The feed list cannot be read: one clear line; the RSS_FEEDS feeds are still captured."""
    report = CaptureReport(source=str(settings.feed_list_path), errors=[error])
    telemetry.event("capture_error", f"feed list not used: {error}", level=logging.ERROR,
                    source=report.source, error=error)
    report_complete(telemetry, report, "feed_list", f"feed list {report.source}: not readable", source_failed=True)
    return report


class _FeedRun:
    """One run's feed capture: what every feed's task shares."""

    def __init__(
        self,
        settings: Settings,
        store: SourceStore,
        fetcher: Fetcher,
        telemetry: Telemetry,
        state: FeedStateStore,
        known_hashes: set[str],
        dry_run: bool,
        now: datetime,
        stop: asyncio.Event | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.telemetry = telemetry
        self.state = state
        self.known_hashes = known_hashes
        self.dry_run = dry_run
        self.now = now
        self.stop = stop
        self.gate = HostGate(settings.feed_concurrency)
        self._started = time.monotonic()
        self.host_pauses = state.host_pauses(now)
        self._announced: set[str] = set()
        self._claimed: set[str] = set()

    def clock(self) -> datetime:
        return self.now + timedelta(seconds=time.monotonic() - self._started)

    async def reports(self, feeds: list[FeedSpec]) -> AsyncIterator[tuple[int, CaptureReport]]:
        """Every feed's report as it finishes; a failure of the store itself stops them all."""
        done: asyncio.Queue[tuple[int, CaptureReport | BaseException]] = asyncio.Queue()

        async def one(index: int, feed: FeedSpec) -> None:
            try:
                result: CaptureReport | BaseException = await self.capture(feed)
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
                result = exc
            done.put_nowait((index, result))

        tasks = [asyncio.create_task(one(index, feed)) for index, feed in enumerate(feeds)]
        try:
            for _ in tasks:
                index, result = await done.get()
                if isinstance(result, BaseException):
                    raise result
                yield index, result
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def capture(self, feed: FeedSpec) -> CaptureReport:
        report = CaptureReport(source=shown_url(feed.url, limit=None))
        state = self.state.get(feed.key)
        location = fetch_location(feed.url, state.fetch_url if state is not None else None)
        host = host_of(location)
        skipped = self._skip_reason(feed, state)
        if skipped is not None and skipped[0] == FAILING and self._host_paused(host) is not None:
            return self._deferred(report, feed, state, host)  # backing off, but what it waits for is its host
        if skipped is not None:
            return self._complete(report, _Tally(), feed, state, status=skipped[0], skipped=skipped[1])
        async with self.gate.slot(host):
            if self.stop is not None and self.stop.is_set():
                return self._complete(report, _Tally(), feed, state, status=CANCELLED, skipped="shutdown requested")
            if self._host_paused(host) is not None:
                return self._deferred(report, feed, state, host)
            self.telemetry.event("capture_start", f"reading feed {report.source}", source=report.source, kind="feed")
            result = await self._download(location, state)
            await self.gate.processing.acquire()  # before the fetch slot is let go: bodies in memory stay bounded
        try:
            return await self._process(report, feed, state, location, host, result)
        finally:
            self.gate.processing.release()

    async def _download(self, location: str, state: FeedState | None) -> Download | FeedError:
        """One feed is one deadline (ITEM_TIMEOUT), like one item: redirects, retries and the first parse."""
        deadline = asyncio.timeout(self.settings.item_timeout)
        try:
            async with deadline:
                return await download(location, state, self.fetcher, max_bytes=self.settings.max_download_bytes)
        except FeedError as exc:
            return exc
        except TimeoutError:
            if not deadline.expired():
                raise
            return FeedError(f"feed took longer than ITEM_TIMEOUT={self.settings.item_timeout:g}s", TRANSIENT)

    async def _process(
        self, report: CaptureReport, feed: FeedSpec, state: FeedState | None, location: str, host: str,
        result: Download | FeedError,
    ) -> CaptureReport:
        """What a download means: a failure counted, a move recorded, new entries stored."""
        if isinstance(result, FeedError):
            return self._failed(report, feed, state, result, host)
        if result.moved_to:
            feed, state = self._moved(feed, state, location, result.moved_to)
        if result.parsed is None:
            state = self.state.record_success(feed.key, _success(result, changed=False), self.clock())
            return self._complete(report, _Tally(), feed, state, status=NOT_MODIFIED, outcome=result.outcome)
        tally = await self._capture_entries(feed, result, report, location)
        success = _success(result, changed=True, tally=tally, report=report, dry_run=self.dry_run)
        state = self.state.record_success(feed.key, success, self.clock())
        return self._complete(report, tally, feed, state, status=OK, outcome=result.outcome, size=result.bytes)

    def _skip_reason(self, feed: FeedSpec, state: FeedState | None) -> tuple[str, str] | None:
        if feed.paused:
            return PAUSED, "paused in the feed list"
        if state is not None and state.paused:
            return PAUSED, f"paused after {state.consecutive_errors} consecutive failures"
        if not is_due(state, self.now):
            assert state is not None and state.next_attempt is not None
            return FAILING, f"backing off after {state.consecutive_errors} failure(s) until {_when(state.next_attempt)}"
        return None

    def _host_paused(self, host: str) -> datetime | None:
        until = self.host_pauses.get(host)
        return until if until is not None and until > self.clock() else None

    async def _capture_entries(
        self, feed: FeedSpec, result: Download, report: CaptureReport, location: str
    ) -> _Tally:
        """Screen every entry (window, link, dedup), then store the FEED_MAX_ENTRIES newest new ones."""
        parsed = result.parsed
        assert parsed is not None
        if parsed.get("bozo"):
            warning = parse_problem(parsed.get("bozo_exception"))
            self.telemetry.event(
                "feed_warning",
                f"feed {report.source} is not well-formed ({warning}); its complete entries are kept",
                level=logging.WARNING,
                source=report.source,
                warning=warning,
            )
        window = feed.window_days if feed.window_days is not None else self.settings.rss_window_days
        cutoff = self.now - timedelta(days=window) if window else None
        tally, newest = _Tally(), _Newest(self.settings.feed_max_entries)
        if parsed.entries:
            await loaded(self.known_hashes)
        base = _feed_base(parsed, location)
        while parsed is not None:
            for entry in parsed.entries:
                _screen(entry, report, tally, self.telemetry, cutoff, self.known_hashes, newest, base)
            parsed = await asyncio.to_thread(next, result.rest, None)
        for entry, link, digest, published in newest.kept():
            # Feeds store concurrently and a hash joins known_hashes only once stored: claim it first,
            # so the same link in two feeds is added once (no await between the check and the claim).
            if digest in self.known_hashes or digest in self._claimed:
                report.duplicates += 1
                continue
            self._claimed.add(digest)
            stored = await _capture_entry(entry, link, digest, published, report, self.store, self.telemetry,
                                          self.known_hashes, self.dry_run, category=feed.category)
            if not stored:
                self._claimed.discard(digest)
                tally.not_stored += 1
        tally.over_cap = newest.over
        if newest.over:
            self.telemetry.event(
                "feed_entries_capped",
                f"feed {report.source}: {newest.over} more new entries than FEED_MAX_ENTRIES={newest.limit}; "
                f"the {newest.limit} newest were taken, the others are left for the next runs",
                level=logging.WARNING,
                source=report.source,
                limit=newest.limit,
                kept=len(newest.kept()),
                over_cap=newest.over,
            )
        if report.rejected * 2 > tally.found:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in report.rejected_reasons.most_common())
            warning = f"{report.rejected} of {tally.found} entries rejected ({reasons})"
            self.telemetry.event("feed_warning", f"feed {report.source}: {warning}", level=logging.WARNING,
                                 source=report.source, warning=warning, rejected=report.rejected,
                                 found=tally.found, rejected_reasons=dict(report.rejected_reasons))
        return tally

    def _failed(
        self, report: CaptureReport, feed: FeedSpec, state: FeedState | None, exc: FeedError, host: str
    ) -> CaptureReport:
        error = str(exc)
        report.errors.append(error)
        errors = (state.consecutive_errors if state is not None else 0) + 1
        retry_at = self.clock() + retry_delay(exc.kind, errors)
        if isinstance(exc, HostBusyError):
            retry_at = max(retry_at, self._pause_host(host, exc))
        state, paused_now = self.state.record_failure(
            feed.key, error=error, kind=exc.kind, next_attempt=retry_at,
            pause_after=self.settings.feed_max_errors, now=self.clock(),
        )
        if paused_now:
            resume = f"python3 -m knowledge_pipeline feeds resume {report.source}"
            self.telemetry.event(
                "feed_paused",
                f"feed {report.source} paused after {state.consecutive_errors} consecutive failures "
                f"(last: {error}); resume it with: {resume}",
                level=logging.WARNING,
                source=report.source,
                error=error,
                consecutive_errors=state.consecutive_errors,
                resume_command=resume,
            )
        else:
            self.telemetry.event(
                "feed_error",
                f"feed {report.source} skipped: {error} ({exc.kind}; failure {state.consecutive_errors}, "
                f"next attempt after {_when(retry_at)})",
                level=logging.ERROR,
                source=report.source,
                error=error,
                error_kind=exc.kind,
                consecutive_errors=state.consecutive_errors,
                next_attempt=_when(retry_at),
            )
        return self._complete(report, _Tally(), feed, state, status=PAUSED if state.paused else FAILING)

    def _pause_host(self, host: str, exc: HostBusyError) -> datetime:
        wait = min(timedelta(seconds=exc.retry_after), MAX_HOST_PAUSE)
        until = self.clock() + wait
        self.host_pauses[host] = max(until, self.host_pauses.get(host, until))
        self.state.pause_host(host, until, f"HTTP {exc.status_code}, Retry-After {exc.retry_after:g}s")
        if host not in self._announced:
            self._announced.add(host)
            self.telemetry.event(
                "feed_host_paused",
                f"host {host} answered HTTP {exc.status_code} with Retry-After {exc.retry_after:g}s: "
                f"its feeds wait until {_when(until)}",
                level=logging.WARNING,
                host=host,
                status_code=exc.status_code,
                retry_after=exc.retry_after,
                until=_when(until),
            )
        return until

    def _deferred(self, report: CaptureReport, feed: FeedSpec, state: FeedState | None, host: str) -> CaptureReport:
        until = self._host_paused(host)
        assert until is not None
        return self._complete(report, _Tally(), feed, state, status=DEFERRED,
                              skipped=f"host {host} asked to wait until {_when(until)}")

    def _moved(
        self, feed: FeedSpec, state: FeedState | None, old: str, new: str
    ) -> tuple[FeedSpec, FeedState | None]:
        """A permanent redirect: the feed list (or, for RSS_FEEDS, the feed state) learns the new URL."""
        moved = feed.with_url(new)
        if moved.key == feed.key or (state is not None and state.fetch_url == new):
            return feed, state
        where, unlisted = None, ""
        if feed.origin == "list" and not self.dry_run:
            try:
                with edit_feed_file(self.settings.feed_list_path) as feeds:
                    listed = find(feeds, feed.url)
                    if listed is not None:
                        position = feeds.index(listed)
                        if find(feeds, new) is None:
                            feeds[position] = listed.with_url(new)
                        else:
                            del feeds[position]
            except OpmlError as exc:  # the list broke since the run read it: the feed state keeps the move
                unlisted = f"; the feed list was not updated: {exc}"
            else:
                self.state.rename(feed.key, moved.key)
                where = "the feed list now says so"
        if where is None:
            self.state.moved(feed.key, new, self.clock())
            moved = feed
            where = "it is read from there from now on" + ("; update RSS_FEEDS" if feed.origin == "env" else unlisted)
        self.telemetry.event(
            "feed_moved",
            f"feed {shown_url(old)} moved permanently to {shown_url(new)}: {where}",
            level=logging.WARNING,
            source=shown_url(old),
            moved_to=shown_url(new),
            origin=feed.origin,
        )
        return moved, self.state.get(moved.key)

    def _complete(
        self,
        report: CaptureReport,
        tally: _Tally,
        feed: FeedSpec,
        state: FeedState | None,
        *,
        status: str,
        skipped: str | None = None,
        outcome: str | None = None,
        size: int = 0,
    ) -> CaptureReport:
        report.found = tally.found
        # a feed paused by the user, waiting for its host's Retry-After or left by a shutdown was not tried:
        # it is no configured source that failed (None), so it never makes a run exit 1 on its own
        source_failed = None if (feed.paused or status in (CANCELLED, DEFERRED)) else status not in (OK, NOT_MODIFIED)
        now = self.clock()
        stale = state is not None and health(state, user_paused=feed.paused, stale_days=self.settings.feed_stale_days,
                                             now=now).stale
        if skipped is not None:
            message = f"feed {report.source}: not read, {skipped}"
        elif status == NOT_MODIFIED:
            message = f"feed {report.source}: " + ("not modified (304)" if outcome != "unchanged" else "unchanged")
        elif status != OK:
            message = f"feed {report.source}: failed ({'; '.join(report.errors)})"
        else:
            message = (
                f"feed {report.source}: {tally.found} entries, {report.added} added, {report.duplicates} duplicates, "
                f"{report.rejected} rejected, {tally.too_old} older than the window"
                + (f", {tally.over_cap} beyond FEED_MAX_ENTRIES" if tally.over_cap else "")
            )
        report_complete(
            self.telemetry,
            report,
            "feed",
            message,
            too_old=tally.too_old,
            over_cap=tally.over_cap,
            status=status,
            source_failed=source_failed,
            skipped=skipped,
            outcome=outcome,
            bytes=size,
            category=feed.category,
            consecutive_errors=state.consecutive_errors if state is not None else 0,
            last_error=state.last_error if state is not None and state.consecutive_errors else None,
            last_success=_when(state.last_success) if state is not None and state.last_success else None,
            stale=stale,
        )
        return report


def _success(result: Download, *, changed: bool, tally: _Tally | None = None,
             report: CaptureReport | None = None, dry_run: bool = False) -> Success:
    """What the feed state learns from a read. The validators are kept only when every new entry was
    stored: an entry the store refused, or one beyond FEED_MAX_ENTRIES, must be read again next run."""
    parsed = result.parsed
    new_items = (len(report.would_add) if dry_run else report.added) if report is not None else 0
    title = " ".join(str((parsed.get("feed") or {}).get("title") or "").split()) if parsed else ""
    complete = tally is None or (tally.not_stored == 0 and tally.over_cap == 0)
    return Success(
        changed=changed,
        title=title[:_MAX_TITLE] or None,
        etag=result.etag,
        last_modified=result.last_modified,
        body_hash=result.body_hash,
        entries=tally.found if tally is not None else 0,
        newest_entry=tally.newest if tally is not None else None,
        entries_per_day=_per_day(tally) if tally is not None else None,
        new_items=new_items,
        keep_validators=complete,
    )


def _per_day(tally: _Tally) -> float | None:
    """Entries per day over the span the feed's dated entries cover (at least one day)."""
    if not tally.dated or tally.newest is None or tally.oldest is None:
        return None
    days = max((tally.newest - tally.oldest).total_seconds() / 86400, 1.0)
    return round(tally.dated / days, 3)


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


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
    tally.saw(published)
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
        report.reject(telemetry, f"entry {(entry.get('title') or '')[:80]!r}", str(exc), counted_as=exc.kind,
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
    *,
    category: str | None = None,
) -> bool:
    """Store one new entry; False when the store refused it (it is rejected, and tried again next run)."""
    item = NewItem(
        title=_entry_title(entry, link),
        source_type=SourceType.RSS,
        hash=digest,
        url=link,
        content=await asyncio.to_thread(_full_text, entry, link) if entry.get("content") else None,
        created_date=published.date() if published else None,
        category=category,
    )
    return await store_new(store, item, report, telemetry, known_hashes=known_hashes, dry_run=dry_run,
                           url=shown_url(link, limit=None), has_content=item.content is not None)


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
    return one_line(strip_userinfo(_CONTROL.sub(" ", title)), _MAX_TITLE) or title_from_link(link)


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
