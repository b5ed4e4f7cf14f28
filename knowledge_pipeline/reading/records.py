"""An item as plain data (``list --json``, ``show --json``, the exports), and text made safe to show."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from ..models import Item
from ..sources.base import ItemContent
from ..urls import shown_url

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def link(item: Item) -> str | None:
    """Where the item is, as people may see it (no user-info credentials)."""
    location = item.url or item.pdf_path
    return shown_url(location, limit=None) if location else None


def warnings_of(item: Item) -> list[str]:
    """The item's warnings (partial reads, capped text) where the store keeps them."""
    return list(item.warnings)


def item_fields(item: Item) -> dict[str, Any]:
    """The properties of an item: the keys of ``list --json`` (and the start of every other record)."""
    return {
        "id": item.id,
        "title": item.title,
        "status": item.status.value,
        "source_type": item.source_type.value,
        "url": link(item),
        "content_type": item.content_type,
        "ai_primitives": list(item.ai_primitives),
        "vendor": item.vendor,
        "created_date": item.created_date.isoformat() if item.created_date else None,
        "added_at": _time(item.added_at),
        "updated_at": _time(item.updated_at),
        "summary": item.summary,
        "warnings": warnings_of(item),
        "sender": item.sender,
        "error": item.error,
        "category": item.category,
    }


def item_record(item: Item, content: ItemContent, *, text: bool = False) -> dict[str, Any]:
    """Properties and body: ``show --json`` and the JSONL export (``text``: with the full text)."""
    body: dict[str, Any] = {
        "summary": content.summary,
        "executive_summary": content.executive_summary or item.summary or "",
        "key_insights": list(content.key_insights),
        "analyses": [{"title": result.title, "lines": list(result.lines)} for result in content.analyses()],
    }
    if text:
        body["text"] = content.text
    return item_fields(item) | {"hash": item.hash, "body": body}


def flatten(text: str | None) -> str:
    """Text from the web on one line without control or bidi characters (safe in a terminal); edges kept."""
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", text or ""))


def one_line(text: str | None) -> str:
    return flatten(text).strip()


def safe_text(text: str | None) -> str:
    """Text from the web without control characters (terminal escapes), newlines and tabs kept."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", (text or "").replace("\r\n", "\n")))
