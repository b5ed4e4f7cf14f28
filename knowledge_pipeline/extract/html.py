"""HTML to text with trafilatura: the article's main text, else the page's plain text."""

from __future__ import annotations

import trafilatura


def html_to_text(html: str | bytes, url: str | None = None) -> str:
    """The main text of an HTML page or fragment; "" when there is none.

    trafilatura's main extractor drops navigation and boilerplate. When it
    finds nothing (a page that is mostly one block, a short fragment) its
    baseline extractor, then its whole-page text, are used instead.
    """
    if not html.strip():
        return ""
    document = _as_document(html)
    text = trafilatura.extract(
        document, url=url, include_comments=False, include_tables=True, favor_recall=True, deduplicate=False
    )
    if text and text.strip():
        return text.strip()
    _, text, _ = trafilatura.baseline(document)
    if text and text.strip():
        return text.strip()
    return (trafilatura.html2txt(document) or "").strip()


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
