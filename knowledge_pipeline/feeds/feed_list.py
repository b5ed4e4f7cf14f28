"""The feeds a run reads: the OPML feed list (``FEEDS_FILE``) merged with ``RSS_FEEDS``.

The list file is only ever rewritten whole, under a lock file beside it
(``<name>.lock``, flock) and through a temporary file renamed over it, so a
``feeds add`` and a cron run that records a moved feed never lose each
other's change, and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator

from ..config import Settings
from .opml import FeedSpec, OpmlError, check_location, feed_key, parse_opml, render_opml

MAX_LIST_BYTES = 20 * 1024 * 1024


def read_feed_file(path: Path, *, required: bool = False) -> list[FeedSpec]:
    """The feeds of an OPML file; an absent file is an empty list unless ``required``."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LIST_BYTES + 1)
    except FileNotFoundError:
        if required:
            raise OpmlError(f"feed list {path} does not exist") from None
        return []
    except IsADirectoryError:
        raise OpmlError(f"feed list {path} is a folder, not an OPML file") from None
    except OSError as exc:
        raise OpmlError(f"cannot read feed list {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_LIST_BYTES:
        raise OpmlError(f"feed list {path} is larger than {MAX_LIST_BYTES // 1048576} MB")
    return parse_opml(data, source=str(path))


def env_feeds(settings: Settings) -> list[FeedSpec]:
    """The feeds of ``RSS_FEEDS``, each location once."""
    feeds: dict[str, FeedSpec] = {}
    for location in settings.rss_feeds:
        spec = FeedSpec(url=location.strip(), origin="env")
        feeds.setdefault(spec.key, spec)
    return list(feeds.values())


def configured_feeds(settings: Settings) -> list[FeedSpec]:
    """The feed list's feeds, then those of ``RSS_FEEDS`` it does not already have.

    Raises OpmlError when the feed list exists but cannot be used, or when
    ``FEEDS_FILE`` names a file that does not exist.
    """
    listed = read_feed_file(settings.feed_list_path, required=settings.feeds_file is not None)
    return merge(listed, env_feeds(settings))


def merge(first: list[FeedSpec], second: list[FeedSpec]) -> list[FeedSpec]:
    feeds = {feed.key: feed for feed in first}
    for feed in second:
        feeds.setdefault(feed.key, feed)
    return list(feeds.values())


def find(feeds: list[FeedSpec], location: str) -> FeedSpec | None:
    key = feed_key(location)
    return next((feed for feed in feeds if feed.key == key), None)


@contextlib.contextmanager
def edit_feed_file(path: Path) -> Iterator[list[FeedSpec]]:
    """Read the list under its lock, let the caller change it, write it back if it changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            feeds = read_feed_file(path)
            before = list(feeds)
            yield feeds
            if feeds != before or [f.extra for f in feeds] != [f.extra for f in before] or not path.exists():
                write_feed_file(path, feeds)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def write_feed_file(path: Path, feeds: list[FeedSpec]) -> None:
    """Write the list atomically (temporary file + rename), keeping the file's permissions."""
    from ..migration.atomic import atomic_write  # the migration package only when the list is written

    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    atomic_write(path, render_opml([feed for feed in feeds if feed.origin == "list"]), mode)


__all__ = [
    "FeedSpec",
    "OpmlError",
    "check_location",
    "configured_feeds",
    "edit_feed_file",
    "env_feeds",
    "find",
    "merge",
    "read_feed_file",
    "write_feed_file",
]
