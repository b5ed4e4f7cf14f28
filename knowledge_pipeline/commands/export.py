"""``export``: the Sources as a Markdown folder (Obsidian vault), CSV, JSON Lines or an RSS feed."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import PipelineError
from ..reading import export
from ..sources import open_local_store
from ..sources.base import ItemQuery
from .options import add_filters, non_negative, query_from

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
    store = open_local_store(settings)
    await store.open()
    try:
        if args.format == "markdown":
            return await export.export_markdown(store, query, Path(args.dest))
        writers = {"csv": export.export_csv, "jsonl": export.export_jsonl}
        if args.format == "rss":
            query = export.rss_query(query)

            async def writer(store_: Any, query_: ItemQuery, out: Any) -> export.ExportReport:
                return await export.export_rss(store_, query_, out, args.site_url)
        else:
            writer = writers[args.format]
        if args.dest == "-":
            return await writer(store, query, sys.stdout)
        with export.output_file(Path(args.dest)) as out:
            return await writer(store, query, out)
    finally:
        await store.close()


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.format == "markdown" and args.dest == "-":
        print("export: markdown writes one file per item: give a folder as DEST", file=sys.stderr)
        return 2
    query = query_from(args, limit=args.limit or None)
    try:
        report = asyncio.run(_export(settings, args, query))
    except BrokenPipeError:  # stdout closed early (| head): not an error of the export
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"export: cannot write {exc.filename or args.dest}: {exc.strerror}", file=sys.stderr)
        return 1
    except PipelineError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    if args.dest == "-":
        return 0
    if args.format == "markdown":
        print(f"Exported {report.items} items to {args.dest}: {report.written} written, {report.unchanged} unchanged"
              + (f", {report.removed} renamed" if report.removed else ""))
    else:
        print(f"Wrote {report.items} items to {args.dest} ({args.format})")
    return 0
