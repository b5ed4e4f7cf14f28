"""``export``: the Sources as a Markdown folder (Obsidian vault), CSV, JSON Lines or an RSS feed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import IO, Any, Awaitable, Callable

from ..cli import EXIT_READER_GONE, counted, drop_stdout
from ..config import Settings
from ..errors import PipelineError
from ..reading import export
from ..sources import open_local_store
from ..sources.base import ItemQuery
from .options import add_filters, non_negative, opened, query_from

DEFAULT_SITE = "http://127.0.0.1:8765/"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="write the Sources as Markdown files, CSV, JSON Lines or an RSS feed",
        description="markdown: one file per item with YAML front matter in the folder DEST (an Obsidian vault "
        "works; re-running updates it in place). csv, jsonl (with the full text), rss (Enriched items, newest "
        f"first, the last {export.DEFAULT_RSS_ITEMS} unless --limit): the file DEST, or - for stdout. Reads the "
        "SQLite store (for Notion users: the copy `sync --from notion` keeps).",
    )
    parser.add_argument("--format", choices=export.FORMATS, required=True)
    parser.add_argument("dest", metavar="DEST", help="a folder (markdown) or a file, - for stdout")
    parser.add_argument("--limit", type=non_negative, default=0, metavar="N", help="at most N items (0: all)")
    parser.add_argument("--site-url", default=DEFAULT_SITE, metavar="URL",
                        help=f"rss: the feed's own link (default {DEFAULT_SITE}, the reading page)")
    add_filters(parser)
    parser.set_defaults(handler=handle)


async def _export(settings: Settings, args: argparse.Namespace, query: ItemQuery) -> export.ExportReport:
    async with opened(open_local_store(settings)) as store:
        if args.format == "markdown":
            return await export.export_markdown(store, query, Path(args.dest))
        if args.format == "rss":
            query = export.rss_query(query)
        return await _to_file(args, lambda out: _write(args, store, query, out))


async def _write(args: argparse.Namespace, store: Any, query: ItemQuery, out: IO[str]) -> export.ExportReport:
    if args.format == "rss":
        return await export.export_rss(store, query, out, args.site_url)
    writer = export.export_csv if args.format == "csv" else export.export_jsonl
    return await writer(store, query, out)


async def _to_file(args: argparse.Namespace, write: Callable[[IO[str]], Awaitable[export.ExportReport]]
                   ) -> export.ExportReport:
    if args.dest == "-":
        return await write(sys.stdout)
    with export.output_file(Path(args.dest)) as out:
        return await write(out)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.format == "markdown" and args.dest == "-":
        print("export: markdown writes one file per item: give a folder as DEST", file=sys.stderr)
        return 2
    query = query_from(args, limit=args.limit or None)
    try:
        report = asyncio.run(_export(settings, args, query))
    except BrokenPipeError:  # stdout closed early (| head): not an error of the export
        drop_stdout()
        return EXIT_READER_GONE
    except OSError as exc:
        print(f"export: cannot write {exc.filename or args.dest}: {exc.strerror}", file=sys.stderr)
        return 1
    except PipelineError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    if args.dest == "-":
        return 0
    if args.format == "markdown":
        print(f"Exported {counted(report.items, 'item')} to {args.dest}: {report.written} written, {report.unchanged} unchanged"
              + (f", {report.removed} renamed" if report.removed else ""))
    else:
        print(f"Wrote {counted(report.items, 'item')} to {args.dest} ({args.format})")
    return 0
