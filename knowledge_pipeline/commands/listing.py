"""``list``: the Sources as a readable table, or ``--json``."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from typing import Any

from ..config import Settings
from ..errors import PipelineError
from ..models import Item, Status
from ..services import ServiceGateway
from ..sources import open_store
from ..telemetry import Telemetry
from ..urls import shown_url


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("list", help="show the Sources (table or --json)")
    parser.add_argument("--json", action="store_true", help="print a JSON array of objects")
    parser.add_argument("--status", choices=[s.value for s in Status], help="only items with this status")
    parser.add_argument("--limit", type=int, default=0, help="at most this many items (0: all)")
    parser.set_defaults(handler=handle)


def item_to_dict(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "status": item.status.value,
        "source_type": item.source_type.value,
        "url": shown_url(item.url or item.pdf_path, limit=None) if (item.url or item.pdf_path) else None,
        "content_type": item.content_type,
        "ai_primitives": list(item.ai_primitives),
        "vendor": item.vendor,
        "created_date": item.created_date.isoformat() if item.created_date else None,
        "summary": item.summary,
        "error": item.error,
        "warnings": list(item.warnings),
        "sender": item.sender,
        "category": item.category,
    }


async def _collect(settings: Settings, status: Status | None, limit: int) -> list[dict[str, Any]]:
    store = open_store(settings, ServiceGateway.from_settings(settings, Telemetry("list")), read_only=True)
    await store.open()
    try:
        items = []
        async for item in store.list_items(status):
            items.append(item_to_dict(item))
            if limit and len(items) >= limit:
                break
        return items
    finally:
        await store.close()


def _cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(items: list[dict[str, Any]]) -> str:
    width = max(shutil.get_terminal_size((120, 20)).columns, 80)
    title_width = max(20, width - 8 - 8 - 20 - 18 - 8)
    lines = [f"{'Status':<8} {'Type':<7} {'Content-Type':<19} {'Vendor':<17} Title"]
    for item in items:
        detail = item["content_type"] or (("error: " + _cut(item["error"], 12)) if item["error"] else "")
        lines.append(
            f"{item['status']:<8} {item['source_type']:<7} {_cut(detail, 19):<19} "
            f"{_cut(item['vendor'], 17):<17} {_cut(item['title'], title_width)}"
        )
    counts: dict[str, int] = {}
    for item in items:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    lines.append(f"{len(items)} items: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if items else "no items")
    return "\n".join(lines)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    try:
        items = asyncio.run(_collect(settings, Status(args.status) if args.status else None, args.limit))
    except PipelineError as exc:
        print(f"list: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
    else:
        print(render_table(items))
    return 0
