"""``search QUERY``: full-text search of the Sources (SQLite FTS5), best matches first with a snippet."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
from typing import Any

from ..config import Settings
from ..errors import PipelineError, SearchQueryError
from ..reading.records import flatten, item_fields, link, one_line
from ..sources import open_local_store
from ..sources.base import ItemQuery
from ..sources.search_index import HIT_END, HIT_START, SearchPage
from .options import add_filters, non_negative, opened, query_from, terminal_width

DEFAULT_LIMIT = 10
BOLD, RESET = "\x1b[1m", "\x1b[0m"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search", help="full-text search of titles, summaries, insights and full texts",
        description='Search with SQLite FTS5 syntax: words (all must match), "an exact phrase", prefix*, '
        "OR, NOT, NEAR(a b, 5), title: word. Best matches first (bm25). With the Notion backend it searches "
        "the local copy made by `sync --from notion`.",
    )
    parser.add_argument("query", metavar="QUERY", help='e.g. agents "model router" or "GPT-4" or rout*')
    parser.add_argument("--limit", type=non_negative, default=DEFAULT_LIMIT, metavar="N",
                        help=f"at most N results (default {DEFAULT_LIMIT}; 0: all)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON array (snippet with matches between ** marks, score)")
    add_filters(parser)
    parser.set_defaults(handler=handle)


async def _search(settings: Settings, text: str, query: ItemQuery) -> SearchPage:
    async with opened(open_local_store(settings)) as store:
        return await store.search(text, query)


def mark(snippet: str, start: str, end: str) -> str:
    """The snippet on one line, cleaned, with each match between ``start`` and ``end``."""
    parts = snippet.replace(HIT_END, HIT_START).split(HIT_START)
    return "".join(start + flatten(p) + end if n % 2 else flatten(p) for n, p in enumerate(parts)).strip()


def render_results(page: SearchPage, text: str, width: int, *, color: bool, offset: int = 0) -> str:
    if not page.hits:
        return f"no results for {text!r}"
    width = max(min(width, 120), 40)
    start, end = (BOLD, RESET) if color else ("**", "**")
    lines = []
    for number, hit in enumerate(page.hits, offset + 1):
        item = hit.item
        labels = " · ".join(one_line(v) for v in (
            item.status.value, item.content_type, item.vendor,
            item.added_at.date().isoformat() if item.added_at else None) if v)
        lines.append(f"{number}. {one_line(item.title)}  [{labels}]  {item.id.replace('-', '')[:8]}")
        snippet = mark(hit.snippet, "\x00", "\x01")
        for line in textwrap.wrap(snippet, width - 3, initial_indent="   ", subsequent_indent="   "):
            lines.append(line.replace("\x00", start).replace("\x01", end))
        if link(item):
            lines.append(f"   {one_line(link(item))}")
    shown = len(page.hits)
    noun = "result" if page.total == 1 and not page.more else "results"
    total = f"more than {page.total:,}" if page.more else f"{page.total}"
    count = f"{shown} of {total} {noun}" if page.more or page.total > shown else f"{total} {noun}"
    lines.append(f"{count} for {text!r}")
    return "\n".join(lines)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    query = query_from(args, limit=args.limit or None)
    try:
        page = asyncio.run(_search(settings, args.query, query))
    except SearchQueryError as exc:
        print(f"search: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"search: {exc}", file=sys.stderr)
        return 1
    if args.json:
        results = [item_fields(hit.item) | {"snippet": mark(hit.snippet, "**", "**"), "score": round(hit.score, 4)}
                   for hit in page.hits]
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return 0
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(render_results(page, args.query, terminal_width(), color=color))
    return 0
