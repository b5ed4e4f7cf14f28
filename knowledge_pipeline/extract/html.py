"""HTML to text with trafilatura: the article's main text, else the page's plain text."""

from __future__ import annotations

from itertools import islice

import trafilatura
from lxml.html import HtmlElement
from trafilatura.metadata import extract_metadata

# trafilatura's main extractor slows down much faster than linearly with the
# number of elements (150,000 elements took over 40 s); past this many a page
# gets the linear baseline extraction instead.
MAX_ELEMENTS = 20_000


def html_to_text(html: str | bytes, url: str | None = None) -> str:
    """The main text of an HTML page or fragment; "" when there is none.

    trafilatura's main extractor drops navigation and boilerplate. When it
    finds nothing (a page that is mostly one block, a short fragment), or the
    page is too large for it, trafilatura's baseline extractor, then its
    whole-page text, are used instead.
    """
    if not html.strip():
        return ""
    document = _as_document(html)
    tree = _parse(document)
    if tree is None:
        return ""
    if sum(1 for _ in islice(tree.iter(), MAX_ELEMENTS + 1)) <= MAX_ELEMENTS:
        text = trafilatura.extract(
            tree, url=url, include_comments=False, include_tables=True, favor_recall=True, deduplicate=False
        )
        if text and text.strip():
            return text.strip()
        tree = _parse(document)
        if tree is None:
            return ""
    _, text, _ = trafilatura.baseline(tree)
    if text and text.strip():
        return text.strip()
    tree = _parse(document)
    return (trafilatura.html2txt(tree) or "").strip() if tree is not None else ""


def html_title(document: str | bytes) -> str | None:
    """The page's own title (og:title, <title> without the site name, the first <h1>), or None."""
    tree = _parse(document) if document.strip() else None
    if tree is None:
        return None
    try:
        return extract_metadata(tree).title or None
    except Exception:  # noqa: BLE001 - metadata is a nicety; the text is what matters
        return None


def looks_like_html(data: bytes) -> bool:
    """Whether bytes are an HTML page (a login or error page served in place of a file)."""
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head.startswith(b"<"):
        return False
    return head.startswith((b"<!doctype html", b"<html")) or any(
        tag in head for tag in (b"<html", b"<head", b"<body", b"<title", b"<meta")
    )


def _parse(document: str | bytes) -> HtmlElement | None:
    """A fresh tree (trafilatura's extractors prune the tree they are given)."""
    return trafilatura.load_html(document)


def _as_document(html: str | bytes) -> str | bytes:
    """A fragment (feed content) wrapped in html/body, which trafilatura needs to see any text."""
    head = html[:4096].lower()
    if isinstance(head, bytes):
        if b"<body" in head or b"<html" in head:
            return html
        return b"<html><body>" + html + b"</body></html>"  # type: ignore[operator]
    if "<body" in head or "<html" in head:
        return html
    return "<html><body>" + html + "</body></html>"  # type: ignore[operator]
