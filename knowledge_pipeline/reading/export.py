"""Exports of the Sources: a Markdown folder (Obsidian vault), CSV, JSON Lines, an RSS feed.

Every format streams: items are read page by page and written one at a
time, so memory does not grow with the store. File outputs are written to a
temporary file and renamed into place, so a reader never sees half a file.

Markdown is one file per item, ``<title> (<12 hex of the id>).md``, with YAML
front matter: the name is stable (it changes only with the title, and then
the old file is removed), and a re-export rewrites a file only when its
content changed, so sync tools and Obsidian see only real changes.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import IO, AsyncIterator, Iterator
from xml.sax.saxutils import escape, quoteattr

import yaml

from ..enrichers.analyses import body_lines
from ..models import Item, Status
from ..sources.base import ItemContent, ItemQuery
from ..sources.sqlite import SqliteStore
from .records import item_fields, item_record, link, one_line, safe_text
from .render import web_link

FORMATS = ("markdown", "csv", "jsonl", "rss")
ID_CHARS = 12
MAX_NAME_BYTES = 150
DEFAULT_RSS_ITEMS = 100
CSV_COLUMNS = ("id", "title", "status", "source_type", "url", "content_type", "ai_primitives", "vendor",
               "created_date", "added_at", "updated_at", "executive_summary", "key_insights", "error")
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*#^\[\]%]+')
_NAME_ID = re.compile(r" \(([0-9a-f]{%d})\)\.md$" % ID_CHARS)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ExportReport:
    items: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0


async def _items_with_content(store: SqliteStore, query: ItemQuery) -> AsyncIterator[tuple[Item, ItemContent]]:
    async for item in store.list_items(query):
        yield item, ItemContent.from_body(await store.body(item.id))


# -- Markdown ---------------------------------------------------------------------------------


def short_id(item_id: str) -> str:
    return item_id.replace("-", "").lower()[:ID_CHARS]


def file_name(item: Item) -> str:
    """``<title> (<id>).md``: no path separators, reserved or control characters, at most ~150 bytes."""
    stem = unicodedata.normalize("NFC", one_line(item.title))
    stem = " ".join(_UNSAFE_NAME.sub(" ", stem).split()).strip(" .-") or "untitled"
    while len(stem.encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return f"{stem.rstrip(' .-')} ({short_id(item.id)}).md"


def _tag(label: str) -> str:
    return re.sub(r"[^\w/-]+", "-", label.strip().lower()).strip("-")


def to_markdown(item: Item, content: ItemContent) -> str:
    front = {
        "title": one_line(item.title),
        "id": item.id,
        "url": link(item),
        "source_type": item.source_type.value,
        "status": item.status.value,
        "content_type": item.content_type,
        "ai_primitives": list(item.ai_primitives),
        "vendor": item.vendor,
        "published": item.created_date.isoformat() if item.created_date else None,
        "added": item.added_at.isoformat(timespec="seconds") if item.added_at else None,
        "updated": item.updated_at.isoformat(timespec="seconds") if item.updated_at else None,
        "tags": [t for t in dict.fromkeys(_tag(v) for v in (item.content_type or "", *item.ai_primitives)) if t],
    }
    if item.error:
        front["error"] = one_line(item.error)
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=10_000).rstrip(), "---", "",
             f"# {one_line(item.title) or 'Untitled'}", ""]
    url = web_link(link(item))
    if url:
        lines += [f"<{url}>", ""]
    sections = [("Executive summary", content.executive_summary or item.summary or ""), ("Summary", content.summary)]
    for heading, text in sections:
        if text:
            lines += [f"## {heading}", "", safe_text(text).strip(), ""]
    if content.key_insights:
        lines += ["## Key insights", ""] + [f"- {one_line(i)}" for i in content.key_insights] + [""]
    for result in content.analyses():
        lines += [f"## {one_line(result.title)}", ""]
        for kind, line in body_lines(result):
            lines += [f"- {one_line(line)}"] if kind == "bullet" else [safe_text(line).strip(), ""]
        if lines[-1]:
            lines.append("")
    if content.text:
        lines += ["## Full text", "", safe_text(content.text).strip(), ""]
    return "\n".join(lines)


def _existing_names(folder: Path) -> dict[str, str]:
    """Short id -> file name of the notes already in ``folder`` (to follow a changed title)."""
    names: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _NAME_ID.search(entry.name)
            if match and entry.is_file():
                names[match[1]] = entry.name
    return names


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    with _atomic(path, "wb") as handle:
        handle.write(data)
    return True


async def export_markdown(store: SqliteStore, query: ItemQuery, folder: Path) -> ExportReport:
    folder.mkdir(parents=True, exist_ok=True)
    existing = _existing_names(folder)
    report = ExportReport()
    async for item, content in _items_with_content(store, query):
        name = file_name(item)
        old = existing.get(short_id(item.id))
        if old and old != name:
            (folder / old).unlink(missing_ok=True)
            report.removed += 1
        report.items += 1
        if _write_if_changed(folder / name, to_markdown(item, content)):
            report.written += 1
        else:
            report.unchanged += 1
    return report


# -- CSV and JSON Lines -----------------------------------------------------------------------


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP: prefix a quote)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


async def export_csv(store: SqliteStore, query: ItemQuery, out: IO[str]) -> ExportReport:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    report = ExportReport()
    async for item, content in _items_with_content(store, query):
        fields = item_fields(item) | {
            "ai_primitives": "; ".join(item.ai_primitives),
            "executive_summary": one_line(content.executive_summary or item.summary),
            "key_insights": "\n".join(one_line(i) for i in content.key_insights),
            "title": one_line(item.title),
        }
        writer.writerow([_cell(fields[column]) for column in CSV_COLUMNS])
        report.items += 1
    report.written = report.items
    return report


async def export_jsonl(store: SqliteStore, query: ItemQuery, out: IO[str]) -> ExportReport:
    report = ExportReport()
    async for item, content in _items_with_content(store, query):
        out.write(json.dumps(item_record(item, content, text=True), ensure_ascii=False) + "\n")
        report.items += 1
    report.written = report.items
    return report


# -- RSS --------------------------------------------------------------------------------------


def _element(name: str, text: str | None, **attributes: str) -> str:
    attrs = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    return f"<{name}{attrs}>{escape(safe_text(text))}</{name}>"


async def export_rss(store: SqliteStore, query: ItemQuery, out: IO[str], site_url: str,
                     now: datetime | None = None) -> ExportReport:
    """RSS 2.0 of Enriched items: title, link, executive summary as description, labels as categories."""
    now = now or datetime.now(timezone.utc)
    out.write('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n')
    out.write(_element("title", "Knowledge pipeline: enriched sources") + "\n")
    out.write(_element("link", site_url) + "\n")
    out.write(_element("description", "Items enriched by the knowledge pipeline, with their executive summary")
              + "\n")
    out.write(_element("lastBuildDate", format_datetime(now)) + "\n")
    report = ExportReport()
    async for item in store.list_items(query):
        parts = [_element("title", one_line(item.title) or "Untitled")]
        url = web_link(link(item))
        if url:
            parts.append(_element("link", url))
        parts.append(_element("description", item.summary or ""))
        parts.append(_element("guid", item.hash or item.id, isPermaLink="false"))
        moment = item.updated_at or item.added_at
        if moment:
            parts.append(_element("pubDate", format_datetime(moment)))
        for label in (item.content_type, *item.ai_primitives):
            if label:
                parts.append(_element("category", one_line(label)))
        out.write("<item>" + "".join(parts) + "</item>\n")
        report.items += 1
    out.write("</channel>\n</rss>\n")
    report.written = report.items
    return report


def rss_query(query: ItemQuery) -> ItemQuery:
    """What the feed holds: Enriched items, newest first, the last 100 unless a limit is given."""
    return replace(query, status=Status.ENRICHED, newest_first=True, limit=query.limit or DEFAULT_RSS_ITEMS)


@contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO]:
    """A temporary file next to ``path`` renamed over it when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(temporary, _mode_for(path))
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as out:
            yield out
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The mode the file has, or the one a new file gets (mkstemp's 0600 is not what an export wants)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextmanager
def output_file(path: Path) -> Iterator[IO[str]]:
    """A text file written in place atomically."""
    with _atomic(path, "w") as out:
        yield out
