"""``feeds``: the feed list and each feed's health (list, add, remove, import, export, pause, resume)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..cli import counted
from ..config import Settings
from ..errors import PipelineError
from ..extract.fetch import Fetcher
from ..feeds import manage
from ..feeds.health import FAILING, NEW, OK, PAUSED
from ..migration.atomic import atomic_write
from .options import quiet_gateway


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "feeds",
        help="the feed list (FEEDS_FILE, OPML) and each feed's health",
        description="Manage the OPML feed list (FEEDS_FILE, default feeds.opml) that runs capture, merged with "
        "RSS_FEEDS, and see how each feed is doing (without a command: list).",
    )
    commands = parser.add_subparsers(dest="feeds_command", metavar="{list,add,remove,import,export,pause,resume}")
    parser.set_defaults(handler=handle_list, json=False)  # `feeds` alone is `feeds list`
    show = commands.add_parser("list", help="every feed with its health: status, last success, errors, new items")
    show.add_argument("--json", action="store_true", help="print a JSON array of objects")
    show.set_defaults(handler=handle_list)
    add = commands.add_parser("add", help="add a feed, or find the feed of a site and add it")
    add.add_argument("url", metavar="URL", help="the feed's URL, or a page of the site")
    add.add_argument("--title", help="the feed's name (default: its own title)")
    add.add_argument("--window-days", type=int, metavar="N", help="keep entries newer than N days (overrides RSS_WINDOW_DAYS)")
    add.add_argument("--category", help="stored with each of its items (Notion: the CATEGORY_PROP property)")
    add.set_defaults(handler=handle_add)
    remove = commands.add_parser("remove", help="remove a feed from the list (its items stay)")
    remove.add_argument("url", metavar="URL")
    remove.set_defaults(handler=_simple(manage.remove_feed, "Removed {url}"))
    load = commands.add_parser("import", help="add the feeds of an OPML file (a reader's export)")
    load.add_argument("file", metavar="FILE.opml", type=Path)
    load.set_defaults(handler=handle_import)
    export = commands.add_parser("export", help="write every feed as OPML 2.0 (to FILE, or to stdout)")
    export.add_argument("file", metavar="FILE", type=Path, nargs="?")
    export.set_defaults(handler=handle_export)
    pause = commands.add_parser("pause", help="stop reading a feed until `feeds resume`")
    pause.add_argument("url", metavar="URL")
    pause.set_defaults(handler=_simple(manage.pause_feed, "Paused {url}; `feeds resume {url}` reads it again"))
    resume = commands.add_parser("resume", help="read a paused or backing-off feed again from the next run")
    resume.add_argument("url", metavar="URL")
    resume.set_defaults(handler=_simple(manage.resume_feed, "Resumed {url}: the next run reads it"))


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        rows = manage.feed_rows(settings)
    except PipelineError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2, ensure_ascii=False))
    else:
        print(render_rows(rows, settings.feed_stale_days))
    return 0


def handle_add(args: argparse.Namespace, settings: Settings) -> int:
    async def add() -> manage.Added:
        fetcher = Fetcher(settings, quiet_gateway(settings, "feeds"))
        try:
            return await manage.add_feed(settings, args.url, fetcher, title=args.title,
                                         window_days=args.window_days, category=args.category)
        finally:
            await fetcher.close()

    try:
        added = asyncio.run(add())
    except PipelineError as exc:
        return _fail(exc)
    feed = added.feed
    if added.already:
        print(f"{feed.url} is already in the feed list {settings.feed_list_path}; its options are up to date")
        return 0
    if added.found_from:
        print(f"Found the feed of {added.found_from}: {feed.url}")
    print(f"Added {feed.title or feed.url} ({feed.url}) to {settings.feed_list_path}")
    return 0


def handle_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        imported = manage.import_feeds(settings, args.file)
    except PipelineError as exc:
        return _fail(exc)
    print(f"Imported {counted(len(imported.added), 'feed')} into {settings.feed_list_path}; "
          f"{imported.already} already there")
    return 0


def handle_export(args: argparse.Namespace, settings: Settings) -> int:
    try:
        data = manage.export_feeds(settings)
        if args.file is None:
            sys.stdout.write(data.decode("utf-8"))
            return 0
        atomic_write(args.file, data, 0o644)
    except BrokenPipeError:
        raise  # the reader of stdout went away: exit_code_of() ends quietly
    except PipelineError as exc:
        return _fail(exc)
    except OSError as exc:
        return _fail(f"cannot write {args.file}: {exc.strerror or exc}")
    print(f"Wrote {counted(data.count(b'xmlUrl='), 'feed')} to {args.file}")
    return 0


def _simple(action: Callable[[Settings, str], object], done: str) -> Callable[[argparse.Namespace, Settings], int]:
    def handle(args: argparse.Namespace, settings: Settings) -> int:
        try:
            action(settings, args.url)
        except PipelineError as exc:
            return _fail(exc)
        print(done.format(url=args.url))
        return 0

    return handle


def _fail(error: object) -> int:
    print(f"feeds: {error}", file=sys.stderr)
    return 1


_SHOWN = {OK: "ok", FAILING: "failing", PAUSED: "paused", NEW: "new"}


def render_rows(rows: list[manage.FeedRow], stale_days: int) -> str:
    """The health table: one line per feed, a second line for a feed that needs attention."""
    if not rows:
        return "No feeds: add one with `python3 -m knowledge_pipeline feeds add URL` or set RSS_FEEDS."
    lines = [f"{'Status':<9} {'Last success':<16} {'Errors':>6} {'New 7d':>6} {'30d':>4} {'/day':>5}  Feed"]
    for row in rows:
        status = _SHOWN.get(row.status, row.status) + (" stale" if row.stale else "")
        name = f"{row.title} <{row.url}>" if row.title else row.url
        tags = [f"[{row.category}]"] if row.category else []
        if row.origin == "env":
            tags.append("(RSS_FEEDS)")
        lines.append(
            f"{status:<9} {_time(row.last_success):<16} {row.consecutive_errors:>6} {row.new_7d:>6} "
            f"{row.new_30d:>4} {_rate(row.entries_per_day):>5}  {' '.join([name, *tags])}"
        )
        lines += [" " * 10 + note for note in _notes(row, stale_days)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[_SHOWN.get(row.status, row.status)] = counts.get(_SHOWN.get(row.status, row.status), 0) + 1
    stale = sum(row.stale for row in rows)
    summary = f"{counted(len(rows), 'feed')}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if stale:
        summary += f"; {stale} stale (no new entry for {stale_days} days)"
    lines.append(summary)
    return "\n".join(lines)


def _notes(row: manage.FeedRow, stale_days: int) -> list[str]:
    notes = []
    if row.status == PAUSED and row.paused_by == "errors":
        notes.append(f"paused after {row.consecutive_errors} consecutive failures (last: {row.last_error}); "
                     f"resume: python3 -m knowledge_pipeline feeds resume {row.url}")
    elif row.status == PAUSED:
        notes.append(f"paused in the feed list; resume: python3 -m knowledge_pipeline feeds resume {row.url}")
    elif row.last_error:
        notes.append(f"last error ({row.last_error_kind}): {row.last_error}; next attempt after {_time(row.next_attempt)}")
    if row.stale:
        notes.append(f"stale: no new entry for more than {stale_days} days")
    if row.moved_to:
        notes.append(f"moved permanently to {row.moved_to} (read from there; update RSS_FEEDS)")
    if row.host_paused_until:
        notes.append(f"its host asked to wait (Retry-After) until {_time(row.host_paused_until)}")
    return notes


def _time(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
