"""``show ID``: one item whole (properties, warnings, error, executive summary, summary, key insights)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
from typing import Any

from ..config import Settings
from ..errors import PipelineError
from ..models import Item
from ..reading.records import item_record, link, one_line, safe_text, warnings_of
from ..sources import open_reading_store
from ..sources.base import ItemContent
from .options import opened, quiet_gateway, terminal_width

MAX_WIDTH = 100


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show", help="print one item whole (--raw: with its full text)",
        description="Print one item: title, link, dates, labels, warnings, error, executive summary, summary and "
        "key insights. ID is the id `list` shows, or any unique prefix of it.",
    )
    parser.add_argument("id", metavar="ID", help="the item's id or a unique prefix of it")
    parser.add_argument("--raw", action="store_true", help="add the full text")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(handler=handle)


async def _load(settings: Settings, item_id: str) -> tuple[Item, ItemContent]:
    async with opened(open_reading_store(settings, quiet_gateway(settings, "show"))) as store:
        item = await store.get(item_id.strip())
        return item, ItemContent.from_body(await store.body(item.id))


def _when(item: Item) -> list[tuple[str, str]]:
    rows = []
    if item.created_date:
        rows.append(("Published", item.created_date.isoformat()))
    if item.added_at:
        rows.append(("Added", item.added_at.strftime("%Y-%m-%d %H:%M UTC")))
    if item.updated_at and item.updated_at != item.added_at:
        rows.append(("Updated", item.updated_at.strftime("%Y-%m-%d %H:%M UTC")))
    return rows


def _section(title: str, paragraphs: list[str], width: int, *, bullet: str = "") -> list[str]:
    lines = ["", title]
    for paragraph in paragraphs:
        for block in safe_text(paragraph).split("\n\n"):
            if not block.strip():
                continue
            lines.extend(textwrap.wrap(" ".join(block.split()), width, initial_indent="  " + bullet,
                                       subsequent_indent="  " + " " * len(bullet)) or [""])
    return lines


def render_item(item: Item, content: ItemContent, width: int, *, raw: bool = False) -> str:
    width = max(min(width, MAX_WIDTH), 40)
    labels = [
        ("ID", item.id), ("Status", item.status.value), ("Link", link(item) or ""), ("From", item.sender or ""),
        ("Source type", item.source_type.value), *_when(item),
        ("Content type", item.content_type or ""), ("AI primitives", ", ".join(item.ai_primitives)),
        ("Vendor", item.vendor or ""), ("Hash", item.hash or ""),
    ]
    lines = textwrap.wrap(one_line(item.title), width) or ["(untitled)"]
    lines.append("")
    lines.extend(f"{name + ':':<15}{one_line(value)}" for name, value in labels if value)
    warnings = warnings_of(item)
    if warnings:
        lines.extend(_section("Warnings", warnings, width, bullet="- "))
    if item.error:
        lines.extend(_section("Error", [item.error], width))
    executive = content.executive_summary or item.summary
    if executive:
        lines.extend(_section("Executive summary", [executive], width))
    if content.summary:
        lines.extend(_section("Summary", [content.summary], width))
    if content.key_insights:
        lines.extend(_section("Key insights", list(content.key_insights), width, bullet="• "))
    for name, texts in content.extra:
        lines.extend(_section(one_line(name), list(texts), width))
    if raw:
        lines.extend(_section("Full text", [content.text] if content.text else ["(no text stored)"], width))
    return "\n".join(lines)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    try:
        item, content = asyncio.run(_load(settings, args.id))
    except PipelineError as exc:
        print(f"show: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(item_record(item, content, text=args.raw), indent=2, ensure_ascii=False))
    else:
        print(render_item(item, content, terminal_width(), raw=args.raw))
    return 0
