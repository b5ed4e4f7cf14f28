"""What ``python3 -m knowledge_pipeline feeds`` does: list, add, remove, import, export, pause, resume.

Every change to the feed list goes through :func:`~.feed_list.edit_feed_file`
(locked, atomic); a problem is a :class:`FeedsError` with one line saying
what to do. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..config import Settings
from ..errors import PipelineError
from ..extract.fetch import Fetcher
from .discovery import DiscoveryError, discover
from .download import host_of, is_url
from .feed_list import configured_feeds, edit_feed_file, env_feeds, find, merge, read_feed_file
from .health import PAUSED, health
from .opml import MAX_WINDOW_DAYS, FeedSpec, OpmlError, check_location, clean_text, render_opml
from .state import FeedStateStore


class FeedsError(PipelineError):
    """A feed command that cannot be done; the message is one line."""


@dataclass(frozen=True)
class FeedRow:
    """One feed's line in ``feeds list``: what it is and how it is doing."""

    url: str
    title: str | None
    origin: str
    category: str | None
    window_days: int | None
    status: str
    paused_by: str | None
    stale: bool
    last_success: datetime | None
    consecutive_errors: int
    last_error: str | None
    last_error_kind: str | None
    next_attempt: datetime | None
    new_7d: int
    new_30d: int
    entries_per_day: float | None
    moved_to: str | None
    host_paused_until: datetime | None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = dict(self.__dict__)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.astimezone(timezone.utc).isoformat(timespec="seconds")
        return data


def feed_rows(settings: Settings, now: datetime | None = None) -> list[FeedRow]:
    """Every configured feed with its health, in the feed list's order (RSS_FEEDS last)."""
    now = now or datetime.now(timezone.utc)
    feeds = _configured(settings)
    with FeedStateStore(settings.feed_state_path, read_only=True, secrets=settings.secrets) as state:
        hosts = state.host_pauses(now)
        rows = []
        for feed in feeds:
            current = state.get(feed.key)
            shape = health(current, user_paused=feed.paused, stale_days=settings.feed_stale_days, now=now)
            location = current.fetch_url if current and current.fetch_url else feed.url
            rows.append(
                FeedRow(
                    url=feed.url,
                    title=feed.title or (current.title if current else None),
                    origin=feed.origin,
                    category=feed.category,
                    window_days=feed.window_days,
                    status=shape.status,
                    paused_by=shape.paused_by,
                    stale=shape.stale,
                    last_success=current.last_success if current else None,
                    consecutive_errors=current.consecutive_errors if current else 0,
                    last_error=current.last_error if current and current.consecutive_errors else None,
                    last_error_kind=current.last_error_kind if current and current.consecutive_errors else None,
                    next_attempt=current.next_attempt if current and shape.status != PAUSED else None,
                    new_7d=state.new_items_since(feed.key, now - timedelta(days=7)),
                    new_30d=state.new_items_since(feed.key, now - timedelta(days=30)),
                    entries_per_day=current.entries_per_day if current else None,
                    moved_to=current.fetch_url if current else None,
                    host_paused_until=hosts.get(host_of(location)),
                )
            )
    return rows


@dataclass(frozen=True)
class Added:
    feed: FeedSpec
    found_from: str | None  # the site address the feed was discovered from, when it was not the feed itself
    already: bool


async def add_feed(
    settings: Settings,
    url: str,
    fetcher: Fetcher,
    *,
    title: str | None = None,
    window_days: int | None = None,
    category: str | None = None,
) -> Added:
    """Add the feed at ``url``, or the feed of the site ``url`` belongs to, to the feed list."""
    url = _checked_url(url)
    _check_window(window_days)
    existing = _find_configured(settings, url)
    if existing is None:
        try:
            found = await discover(url, fetcher, max_bytes=settings.max_download_bytes)
        except DiscoveryError as exc:
            raise FeedsError(f"no feed added: {exc}") from None
        feed_url, site = found.url, found.site_url
        title = title or found.title
        found_from = url if found.url != url else None
    else:
        feed_url, site, found_from = existing.url, existing.html_url, None
    existing = existing or _find_configured(settings, feed_url)
    if existing is not None and existing.origin == "env":
        raise FeedsError(f"{feed_url} is already in RSS_FEEDS; remove it there to manage it in the feed list")
    with edit_feed_file(settings.feed_list_path) as feeds:
        listed = find(feeds, feed_url)
        if listed is None:
            feed = FeedSpec(url=feed_url, title=clean_text(title), html_url=site, window_days=window_days,
                            category=clean_text(category))
            feeds.append(feed)
            return Added(feed, found_from, already=False)
        feed = _with_options(listed, title=title, window_days=window_days, category=category)
        feeds[feeds.index(listed)] = feed
        return Added(feed, found_from, already=True)


def remove_feed(settings: Settings, url: str) -> FeedSpec:
    with edit_feed_file(settings.feed_list_path) as feeds:
        listed = find(feeds, url)
        if listed is None:
            if find(env_feeds(settings), url) is not None:
                raise FeedsError(f"{url} comes from RSS_FEEDS, not the feed list: remove it from RSS_FEEDS")
            raise FeedsError(f"{url} is not in the feed list {settings.feed_list_path}")
        feeds.remove(listed)
    with FeedStateStore(settings.feed_state_path, secrets=settings.secrets) as state:
        state.forget(listed.key)
    return listed


@dataclass(frozen=True)
class Imported:
    added: list[FeedSpec]
    already: int


def import_feeds(settings: Settings, path: Path) -> Imported:
    """Add the feeds of an OPML file that the list does not have; a bad file changes nothing."""
    try:
        incoming = read_feed_file(path, required=True)
    except OpmlError as exc:
        raise FeedsError(f"nothing imported: {exc}") from None
    env = env_feeds(settings)
    added: list[FeedSpec] = []
    with edit_feed_file(settings.feed_list_path) as feeds:
        for feed in incoming:
            if find(feeds, feed.url) is None and find(env, feed.url) is None:
                feed = replace(feed, origin="list")
                feeds.append(feed)
                added.append(feed)
    return Imported(added, len(incoming) - len(added))


def export_feeds(settings: Settings) -> bytes:
    """Every configured feed (the list's and RSS_FEEDS') as OPML 2.0."""
    return render_opml(_configured(settings))


def pause_feed(settings: Settings, url: str) -> FeedSpec:
    return _set_paused(settings, url, True)


def resume_feed(settings: Settings, url: str) -> FeedSpec:
    """Poll the feed again from the next run: no pause, no back-off, error counter at zero."""
    feed = _find_configured(settings, url)
    if feed is None:
        raise FeedsError(f"{url} is not a configured feed (see `python3 -m knowledge_pipeline feeds list`)")
    if feed.origin == "list" and feed.paused:
        feed = _set_paused(settings, url, False)
    with FeedStateStore(settings.feed_state_path, secrets=settings.secrets) as state:
        state.resume(feed.key)
    return feed


def _set_paused(settings: Settings, url: str, paused: bool) -> FeedSpec:
    with edit_feed_file(settings.feed_list_path) as feeds:
        listed = find(feeds, url)
        if listed is None:
            where = "RSS_FEEDS" if find(env_feeds(settings), url) is not None else None
            if where and paused:
                raise FeedsError(f"{url} comes from RSS_FEEDS: move it to the feed list (`feeds add`) to pause it")
            if where:
                return FeedSpec(url=url, origin="env")
            raise FeedsError(f"{url} is not in the feed list {settings.feed_list_path}")
        feed = replace(listed, paused=paused)
        feeds[feeds.index(listed)] = feed
        return feed


def _configured(settings: Settings) -> list[FeedSpec]:
    try:
        return configured_feeds(settings)
    except OpmlError as exc:
        raise FeedsError(str(exc)) from None


def _find_configured(settings: Settings, url: str) -> FeedSpec | None:
    try:
        listed = read_feed_file(settings.feed_list_path)
    except OpmlError as exc:
        raise FeedsError(str(exc)) from None
    return find(merge(listed, env_feeds(settings)), url)


def _checked_url(url: str) -> str:
    try:
        url = check_location(url)
    except OpmlError as exc:
        raise FeedsError(str(exc)) from None
    if not is_url(url):
        raise FeedsError(f"{url} is not an http(s) URL (local feed files go in RSS_FEEDS)")
    return url


def _check_window(window_days: int | None) -> None:
    if window_days is not None and not 0 <= window_days <= MAX_WINDOW_DAYS:
        raise FeedsError(f"--window-days {window_days} is not between 0 and {MAX_WINDOW_DAYS}")


def _with_options(feed: FeedSpec, *, title: str | None, window_days: int | None, category: str | None) -> FeedSpec:
    return replace(
        feed,
        title=clean_text(title) or feed.title,
        window_days=feed.window_days if window_days is None else window_days,
        category=clean_text(category) or feed.category,
    )
