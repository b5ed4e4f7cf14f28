"""Text extraction: the full text of one item, from feed content, a PDF or a web page.

``TextExtractor.extract(item)`` is the one entry point. A local PDF is read
only if it is a regular file inside ``PDF_DIR`` (whatever path the store
holds, and wherever a symlink there leads). It never returns empty text: every way of getting no text raises an :class:`ItemError` with a
one-line reason (``ExtractionError`` for content problems, ``ServiceError``
for a failed download). Parsing (trafilatura, pypdf) runs in a worker thread
so parallel workers keep the event loop free.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..config import Settings
from ..errors import ExtractionError
from ..localfiles import open_regular
from ..models import Item, SourceType
from ..services import ServiceGateway
from .fetch import Fetched, Fetcher
from .html import html_to_text
from .pdf import pdf_to_text

__all__ = ["TextExtractor", "Fetcher", "Fetched", "html_to_text", "pdf_to_text", "clean_text"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TEXT_TYPES = ("text/plain", "text/markdown")
_HTML_TYPES = ("text/html", "application/xhtml+xml", "")


def clean_text(text: str) -> str:
    """Text without control characters, with at most one blank line between paragraphs."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


class TextExtractor:
    """Gets the text of an item; ``close()`` releases the HTTP client it owns."""

    def __init__(self, settings: Settings, gateway: ServiceGateway, *, fetcher: Fetcher | None = None) -> None:
        self.settings = settings
        self._owns_fetcher = fetcher is None
        self.fetcher = fetcher or Fetcher(settings, gateway)

    async def close(self) -> None:
        if self._owns_fetcher:
            await self.fetcher.close()

    async def extract(self, item: Item) -> str:
        if item.content and item.content.strip():
            text = await asyncio.to_thread(_content_text, item.content, item.url)
        elif item.source_type is SourceType.PDF and (item.pdf_path or item.url):
            text = await self._pdf(item.pdf_path or item.url or "")
        elif item.url:
            text = await self._web(item.url)
        elif item.source_type is SourceType.PDF:
            raise ExtractionError("nothing to extract: a PDF item without a PDF location or URL")
        else:
            raise ExtractionError("nothing to extract: the item has no article URL and no content")
        text = clean_text(text)
        if not text:
            raise ExtractionError("empty text after extraction")
        return text

    async def _pdf(self, location: str) -> str:
        scheme = urlsplit(location).scheme.lower()
        if scheme in ("http", "https"):
            fetched = await self.fetcher.fetch(location)
            return await self._pdf_bytes(fetched.body, fetched.truncated)
        if scheme == "file":
            path = Path(unquote(urlsplit(location).path))
        elif scheme and len(scheme) > 1:
            raise ExtractionError(f"unsupported PDF location scheme {scheme}: (use a path, file:// or http(s)://)")
        else:
            path = Path(location).expanduser()
        if self.settings.pdf_dir is None:
            raise ExtractionError(f"local PDF {path} not read: local PDFs are read only inside PDF_DIR, which is not set")
        data, truncated = await asyncio.to_thread(
            read_file_capped, path, self.settings.max_download_bytes, "PDF", within=self.settings.pdf_dir
        )
        return await self._pdf_bytes(data, truncated)

    async def _pdf_bytes(self, data: bytes, truncated: bool) -> str:
        if truncated:
            raise ExtractionError(f"PDF larger than MAX_DOWNLOAD_MB ({self.settings.max_download_mb:g} MB)")
        return await asyncio.to_thread(pdf_to_text, data, self.settings.max_pdf_pages)

    async def _web(self, url: str) -> str:
        fetched = await self.fetcher.fetch(url)
        if fetched.is_pdf:
            return await self._pdf_bytes(fetched.body, fetched.truncated)
        if fetched.content_type in _TEXT_TYPES:
            return _decode(fetched)
        if fetched.content_type not in _HTML_TYPES and not _looks_like_html(fetched.body):
            raise ExtractionError(f"unsupported content type {fetched.content_type} at {fetched.url}")
        text = await asyncio.to_thread(html_to_text, fetched.body, fetched.url)
        if not text.strip():
            raise ExtractionError(f"no article text found at {fetched.url}")
        return text


def _content_text(content: str, url: str | None) -> str:
    """Feed content as text: HTML is converted, plain text is kept."""
    if "<" in content and ">" in content:
        return html_to_text(content, url)
    return content


def read_file_capped(path: Path, cap: int, what: str, *, within: Path | None = None) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of a regular local file (inside ``within``) and whether it was longer.

    One-line errors naming ``what`` (see :func:`localfiles.open_regular`).
    """
    with open_regular(path, what=what, within=within) as handle:
        try:
            data = handle.read(cap + 1)
        except OSError as exc:
            raise ExtractionError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return data[:cap], len(data) > cap


def _decode(fetched: Fetched) -> str:
    try:
        return fetched.body.decode(fetched.charset or "utf-8", errors="replace")
    except LookupError:
        return fetched.body.decode("utf-8", errors="replace")


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<body" in head
