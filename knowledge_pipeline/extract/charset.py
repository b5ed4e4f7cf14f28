"""Bytes of a web page to text: the HTTP header's charset, then the page's own declaration, then detection.

The order is the browsers' (WHATWG "encoding sniffing"), with two guards
real pages need: a byte order mark beats everything, and bytes that are valid
UTF-8 (with non-ASCII in them) are UTF-8 even when a header or ``<meta>``
names a legacy single-byte charset, because servers often default their
header to ISO-8859-1 while the CMS writes UTF-8. Legacy labels are widened to
what browsers use for them (ISO-8859-1 → windows-1252, Shift_JIS →
windows-31j, GB2312 → GB18030). A declared charset is used only when the
bytes decode with it; otherwise charset_normalizer detects one, and failing
everything the page is read as UTF-8 with replacement characters.
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# What browsers decode these labels as (supersets that differ only in bytes the narrower charset leaves undefined).
_WIDER = {
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "shift_jis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "utf-16": "utf-8",  # a <meta> cannot truthfully declare UTF-16 in bytes it was read from as ASCII
    "utf-16-le": "utf-8",
    "utf-16-be": "utf-8",
}
_SINGLE_BYTE_FALLBACK = {"cp1252": "latin-1"}
_DECLARATION = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:+-]+)|<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:+-]+)""",
    re.IGNORECASE,
)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_PRESCAN_BYTES = 4096
_DETECT_BYTES = 256 * 1024


def decode_html(body: bytes, header_charset: str | None) -> str:
    """The page as text, decoded by the first trustworthy source (see the module docstring).

    A leading XML declaration is dropped: its ``encoding`` no longer applies to
    the decoded text, and lxml refuses text that carries one.
    """
    return _XML_DECLARATION.sub("", _decode(body, header_charset), count=1)


def decode_text(body: bytes, header_charset: str | None) -> str:
    """Plain text (``text/plain``): the header's charset, else detection."""
    return _decode(body, header_charset, declared_in_document=False)


def _decode(body: bytes, header_charset: str | None, *, declared_in_document: bool = True) -> str:
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(encoding, errors="replace")
    candidates = [header_charset]
    if declared_in_document:
        candidates.append(_declared(body))
    for label in candidates:
        text = _decode_as(body, label)
        if text is not None:
            return text
    return _detected(body)


def _declared(body: bytes) -> str | None:
    match = _DECLARATION.search(body[:_PRESCAN_BYTES])
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode("ascii", errors="ignore")


def _decode_as(body: bytes, label: str | None) -> str | None:
    """``body`` decoded with the charset ``label`` names, or None when unknown or the bytes do not fit it."""
    encoding = _codec(label)
    if encoding is None:
        return None
    if encoding != "utf-8" and _single_byte(encoding) and not body.isascii():
        utf8 = _strict(body, "utf-8")
        if utf8 is not None:
            return utf8
    text = _strict(body, encoding)
    if text is None and encoding in _SINGLE_BYTE_FALLBACK:
        text = _strict(body, _SINGLE_BYTE_FALLBACK[encoding])
    return text


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return _WIDER.get(name, name)


def _single_byte(encoding: str) -> bool:
    return encoding.startswith(("cp12", "cp8", "iso8859", "latin", "koi8", "mac", "windows", "cp4", "cp7"))


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _detected(body: bytes) -> str:
    utf8 = _strict(body, "utf-8")
    if utf8 is not None:
        return utf8
    encoding = _codec(_likeliest(body[:_DETECT_BYTES]))
    if encoding is not None:
        text = _strict(body, encoding)
        if text is not None:
            return text
        return body.decode(encoding, errors="replace")
    return body.decode("utf-8", errors="replace")


def _likeliest(sample: bytes) -> str | None:
    """charset_normalizer's least chaotic reading; on a tie windows-1252, the web's default for legacy pages.

    Its own ``best()`` ranks windows-1250 first for most Western European
    text, which turns "ñ" into "ń" and "ù" into "ů".
    """
    matches = list(charset_normalizer.from_bytes(sample))
    if not matches:
        return None
    least = min(match.chaos for match in matches)
    tied = [match.encoding for match in matches if match.chaos <= least + 1e-9]
    return "cp1252" if "cp1252" in tied else tied[0]
