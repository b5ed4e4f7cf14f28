"""``list``: the Sources as a table that fits the terminal, or ``--json``; newest first."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from typing import Any

from ..cli import counted
from ..config import Settings
from ..errors import PipelineError
from ..models import Item, Status
from ..reading.records import item_fields, one_line
from ..sources import open_reading_store
from ..sources.base import ItemQuery
from .options import add_filters, non_negative, opened, query_from, quiet_gateway, terminal_width

MIN_TITLE = 30
MIN_ERROR = 12
FIXED_COLUMNS = (  # name, widest, narrowest
    ("ID", 8, 8), ("Status", 9, 9), ("Type", 7, 7), ("Added", 10, 10), ("Content-Type", 22, 8), ("Vendor", 18, 6),
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "list", help="show the Sources, newest first (table or --json)",
        description="The Sources, newest first: a table that fits the terminal, or --json. "
        "Ids may be shortened to any unique prefix for `show`.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array of objects")
    parser.add_argument("--limit", type=non_negative, default=0, metavar="N", help="at most N items (0: all)")
    parser.add_argument("--oldest-first", action="store_true", help="in capture order instead")
    add_filters(parser)
    parser.set_defaults(handler=handle)


async def _collect(settings: Settings, query: ItemQuery) -> tuple[list[Item], int]:
    """The items and how many the filters match in all (counted only when the limit cut the list)."""
    async with opened(open_reading_store(settings, quiet_gateway(settings, "list"))) as store:
        items = [item async for item in store.list_items(query)]
        total = len(items)
        if query.limit and len(items) >= query.limit:
            total = await store.count_items(query.unlimited())
        return items, total


def _cut(text: str | None, width: int) -> str:
    text = one_line(text)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _fit(values: list[str], heading: str, most: int) -> int:
    return min(max([len(heading), *(len(v) for v in values)]), most)


def _layout(rows: list[dict[str, str]], width: int) -> dict[str, int]:
    """Column widths within ``width``: Type goes first, then the labels shrink, then Added goes; the title gets the rest."""
    widths = {name: _fit([r[name] for r in rows], name, most) for name, most, _ in FIXED_COLUMNS}
    with_error = any(r["Error"] for r in rows)
    flexible = MIN_TITLE + (MIN_ERROR + 1 if with_error else 0)

    def over() -> int:
        return sum(widths.values()) + len(widths) + flexible - width

    if over() > 0:
        del widths["Type"]
    for name, _, least in FIXED_COLUMNS:
        if over() > 0 and name in ("Content-Type", "Vendor"):
            widths[name] = max(least, widths[name] - over())
    if over() > 0:
        del widths["Added"]
    left = max(width - sum(widths.values()) - len(widths), flexible)
    if not with_error:
        widths["Title"] = left
        return widths
    longest = max(len(r["Title"]) for r in rows)
    widths["Title"] = max(MIN_TITLE, min(longest, left - MIN_ERROR - 1))
    widths["Error"] = left - widths["Title"] - 1
    return widths


def render_table(items: list[Item], width: int, total: int | None = None) -> str:
    """One line per item within ``width`` columns; the title (and the error, when there is one) take what is left."""
    if not items:
        return "no items"
    rows = [
        {
            "ID": item.id.replace("-", "")[:8],
            "Status": item.status.value,
            "Type": item.source_type.value,
            "Added": item.added_at.date().isoformat() if item.added_at else "",
            "Content-Type": one_line(item.content_type),
            "Vendor": one_line(item.vendor),
            "Title": one_line(item.title),
            "Error": one_line(item.error) if item.status in (Status.FAILED, Status.DUPLICATE) else "",
        }
        for item in items
    ]
    widths = _layout(rows, width)
    last = list(widths)[-1]

    def line(cells: dict[str, str]) -> str:
        return " ".join(
            _cut(cells[n], w) if n == last else f"{_cut(cells[n], w):<{w}}" for n, w in widths.items()
        ).rstrip()

    lines = [line({name: name for name in widths})] + [line(row) for row in rows]
    counts = Counter(item.status.value for item in items)
    shown = (f"{len(items)} of {counted(total, 'item')}" if total is not None and total > len(items)
             else counted(len(items), "item"))
    lines.append(shown + ": " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(lines)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    query = query_from(args, newest_first=not args.oldest_first, limit=args.limit or None)
    try:
        items, total = asyncio.run(_collect(settings, query))
    except PipelineError as exc:
        print(f"list: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([item_fields(item) for item in items], indent=2, ensure_ascii=False))
    else:
        print(render_table(items, terminal_width(), total))
    return 0
