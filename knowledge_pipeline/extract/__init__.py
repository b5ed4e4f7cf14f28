"""Text extraction: the full text of one item, from feed content, a PDF or a web page.

``TextExtractor.read(item)`` is the one entry point: the text, what was only
partly read (:class:`PartialRead`: pages of a damaged or capped PDF, a page
cut at the download cap) and, when asked, a title found in the document.
``extract(item)`` is the text alone. A local PDF is read only if it is a
regular file inside ``PDF_DIR`` (whatever path the store holds, and wherever
a symlink there leads). Neither returns empty text: every way
of getting no text raises an :class:`ItemError` with a one-line reason
(``ExtractionError`` for content problems, ``ServiceError`` for a failed
download). Parsing (trafilatura, pypdf) runs in a worker thread so parallel
workers keep the event loop free.

With a :class:`~knowledge_pipeline.text_cache.TextCache` (``cache``), what was
read is kept by item hash and read back instead of fetching again (an item
captured in an earlier run, ``--retry-failed``, an item put back in the Inbox),
and :meth:`TextExtractor.keep_content` keeps a feed's or an email's text from
capture for the run that enriches it, whatever the backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..config import Settings
from ..errors import ExtractionError, ServiceError
from ..localfiles import open_regular
from ..models import Item, PartialRead, SourceType
from ..services import ServiceGateway
from ..urls import shown_url
from .charset import decode_html, decode_text
from .fetch import Fetched, Fetcher
from .html import html_canonical, html_title, html_to_text, looks_like_html
from .render import RENDER_MIN_CHARS, Firecrawl
from .titles import best_title, normalize

__all__ = ["TextExtractor", "Extracted", "Fetcher", "Fetched", "html_to_text", "clean_text"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_MARKUP = re.compile(r"</[a-zA-Z][a-zA-Z0-9]*\s*>|<(?:br|hr|img)\b[^<>]*>", re.IGNORECASE)
_TEXT_TYPES = ("text/plain", "text/markdown")
_HTML_TYPES = ("text/html", "application/xhtml+xml", "")


def clean_text(text: str) -> str:
    """Text without control characters, with at most one blank line between paragraphs."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


class TextExtractor:
    """Gets the text of an item; ``close()`` releases the HTTP client it owns."""

    def __init__(self, settings: Settings, gateway: ServiceGateway, *, fetcher: Fetcher | None = None,
                 cache: Any | None = None) -> None:
        self.settings = settings
        self.gateway = gateway
        self._owns_fetcher = fetcher is None
        self.fetcher = fetcher or Fetcher(settings, gateway)
        self.cache = cache  # a TextCache, or None
        self._readers: dict[str, Any] = {}
        self._firecrawl: Firecrawl | None = None

    async def close(self) -> None:
        for reader in self._readers.values():
            await reader.close()
        if self._firecrawl is not None:
            await self._firecrawl.close()
        if self._owns_fetcher:
            await self.fetcher.close()

    async def extract(self, item: Item) -> str:
        return (await self.read(item)).text

    def keep_content(self, key: str, content: str | None) -> None:
        """Keep text capture already has (a feed's full article, an email) for the run that enriches it."""
        if self.cache is not None and key and content and content.strip():
            self.cache.put(key, json.dumps({"content": content}, ensure_ascii=False))

    def holds(self, item: Item) -> bool:
        """Whether the cache holds this item's text (read without a fetch)."""
        return self.cache is not None and cache_key(item) in self.cache

    async def read(self, item: Item, *, title: bool = False) -> Extracted:
        """The item's text and partial reads; with ``title``, also a title the document gives itself.

        A text kept in the cache is used instead of reading the item again; a text read is kept.
        """
        key = cache_key(item)
        if not (item.content and item.content.strip()) and self.cache is not None:
            kept = _kept(self.cache.get(key))
            if isinstance(kept, Extracted):
                return kept if title else dataclasses.replace(kept, title=None)
            if kept:
                item = dataclasses.replace(item, content=kept)
        extracted = await self._read(item, title)
        if self.cache is not None and not (item.content and item.content.strip()):
            self.cache.put(key, _keep(extracted))
        return extracted

    async def _read(self, item: Item, title: bool) -> Extracted:
        reader = None if item.content and item.content.strip() else self._source_reader(item)
        if reader is not None:
            text = await reader.read(item)
            extracted = Extracted(text, best_title(None, text) if title else None)
        elif item.content and item.content.strip():
            text = await asyncio.to_thread(_content_text, item.content, item.url)
            extracted = Extracted(text, best_title(None, text) if title else None)
        elif item.source_type is SourceType.PDF and (item.pdf_path or item.url):
            extracted = await self._pdf(item.pdf_path or item.url or "")
        elif item.url:
            extracted = await self._web(item.url, title)
        elif item.source_type is SourceType.PDF:
            raise ExtractionError("nothing to extract: a PDF item without a PDF location or URL")
        else:
            raise ExtractionError("nothing to extract: the item has no article URL and no content")
        text = clean_text(extracted.text)
        if not text:
            raise ExtractionError("empty text after extraction")
        return Extracted(text, normalize(extracted.title) or None if title else None, extracted.warnings,
                         extracted.canonical_url)

    def _source_reader(self, item: Item) -> Any | None:
        """The reader of the source kind that claims the item (a Drive file...), made on first use."""
        from ..capture.registry import reader_classes

        for name, reader_class in reader_classes():
            if reader_class.accepts(item):
                if name not in self._readers:
                    self._readers[name] = reader_class(self.settings, self.gateway, self.fetcher)
                return self._readers[name]
        return None

    async def _pdf(self, location: str) -> Extracted:
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

    async def _pdf_bytes(self, data: bytes, truncated: bool) -> Extracted:
        if truncated:
            raise ExtractionError(f"PDF larger than MAX_DOWNLOAD_MB ({self.settings.max_download_mb:g} MB)")
        from .pdf import read_pdf  # pypdf only once a PDF is read (start-up, docs/performance.md)

        pdf = await asyncio.to_thread(read_pdf, data, self.settings.max_pdf_pages)
        partial = pdf.partial_read()
        return Extracted(pdf.text, pdf.title, (partial,) if partial else ())

    async def _web(self, url: str, title: bool) -> Extracted:
        fetched = await self.fetcher.fetch(url)
        if fetched.is_pdf:
            return await self._pdf_bytes(fetched.body, fetched.truncated)
        cut = (PartialRead("bytes", len(fetched.body), None, f"page cut at MAX_DOWNLOAD_MB = "
                           f"{self.settings.max_download_mb:g} MB"),) if fetched.truncated else ()
        if fetched.content_type in _TEXT_TYPES:
            text = decode_text(fetched.body, fetched.charset)
            return Extracted(text, best_title(None, text) if title else None, cut)
        if fetched.content_type not in _HTML_TYPES and not looks_like_html(fetched.body):
            raise ExtractionError(f"unsupported content type {fetched.content_type} at {shown_url(fetched.url)}")
        text, page_title, canonical = await asyncio.to_thread(_page_text, fetched, title)
        if len(text.strip()) < RENDER_MIN_CHARS and self.settings.firecrawl_api_key:
            text = await self._rendered(fetched.url, text)
        if not text.strip():
            raise ExtractionError(f"no article text found at {shown_url(fetched.url)}")
        return Extracted(text, page_title, cut, canonical or (fetched.url if fetched.url != url else None))

    async def _rendered(self, url: str, text: str) -> str:
        """Firecrawl's rendering of a page that gave too little text; ours if it does no better."""
        if self._firecrawl is None:
            self._firecrawl = Firecrawl(self.settings, self.gateway)
        try:
            rendered = await self._firecrawl.scrape(url)
        except ServiceError as exc:
            if text.strip():
                return text
            raise ExtractionError(f"no article text found at {shown_url(url)}, and {exc}") from None
        return rendered if len(rendered.strip()) > len(text.strip()) else text


@dataclass(frozen=True)
class Extracted:
    """What extraction got: the text, a title the document gives itself (when asked), partial reads,
    and the page's own URL when it names one (``rel=canonical``, ``og:url``) or redirects to another."""

    text: str
    title: str | None = None
    warnings: tuple[PartialRead, ...] = ()
    canonical_url: str | None = None


def cache_key(item: Item) -> str:
    """An item's key in the text cache: its hash (stable across runs and backends), else its id."""
    return item.hash or f"id:{item.id}"


def _keep(extracted: Extracted) -> str:
    return json.dumps({"text": extracted.text, "title": extracted.title, "canonical": extracted.canonical_url,
                       "warnings": [dataclasses.asdict(w) for w in extracted.warnings]}, ensure_ascii=False)


def _kept(data: str | None) -> Extracted | str | None:
    """A cache entry: an Extracted, captured content (str), or None when absent or unreadable."""
    if not data:
        return None
    try:
        entry = json.loads(data)
        if "content" in entry:
            return str(entry["content"])
        return Extracted(str(entry["text"]), entry.get("title"), tuple(PartialRead(**w) for w in entry["warnings"]),
                         entry.get("canonical"))
    except (ValueError, TypeError, KeyError):
        return None


def _content_text(content: str, url: str | None) -> str:
    """Captured content as text: markup (a closing tag, a <br>) is converted, plain text is kept as it is.

    Plain text may hold "<" and ">" ("growth >20%", "a<b and c>d"): parsing it as
    HTML would eat words and merge paragraphs.
    """
    if _MARKUP.search(content):
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


def _page_text(fetched: Fetched, title: bool) -> tuple[str, str | None, str | None]:
    document = decode_html(fetched.body, fetched.charset)
    text = html_to_text(document, fetched.url)
    return text, best_title(html_title(document), text) if title else None, html_canonical(document, fetched.url)
