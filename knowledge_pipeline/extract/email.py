"""An email as the pipeline reads it: decoded headers, and the newsletter's text without its wrapping.

:func:`parse_header` reads the few fields capture needs before downloading a
body (Message-ID, From, Subject, Date; RFC 2047 words decoded).
:func:`read_email` decodes the whole message (multipart, quoted-printable,
base64, any charset, decoded as web pages are by charset.py: ISO-8859-1 read
as windows-1252, UTF-8 bytes under a legacy label read as UTF-8) and
turns its HTML part into text with the same extractor as web pages, after
taking out what a newsletter wraps its article in: hidden preheaders,
tracking pixels, "view in browser" lines and unsubscribe footers. The
"view in browser" link is kept as the item's URL.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime

import lxml.html
from lxml import etree

from ..capture.links import LinkError, canonical_link
from ..models import sha256_text
from . import clean_text
from .charset import decode_html, decode_text
from .html import html_to_text
from .titles import normalize

MAX_URL = 2000
_FOOTER_BLOCK_CHARS = 600
_FOOTER_CONTAINER_CHARS = 2000
_BLOCKS = ("p", "div", "td", "th", "tr", "table", "li", "ul", "center", "section", "footer", "header",
           "h1", "h2", "h3", "h4", "h5", "h6", "blockquote")
_LAYOUT = ("table", "tbody", "thead", "tfoot", "tr", "td", "th", "center")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u034f\u00ad\u180e]")
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all|max-height\s*:\s*0(?:px)?\s*(?:;|$|!)"
    r"|font-size\s*:\s*0(?:px)?\s*(?:;|$|!)|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$|!)", re.I)
_VIEW_ONLINE = re.compile(
    r"^\W*((view|read|open|see)( this| the| it)?( e-?mail| newsletter| post| issue| message| edition)?"
    r"( in (your |a |the )?(web )?browser| online| on the web| on (the |our )?website| as (a )?web ?page)"
    r"|web version|online version)\W*$", re.I)
_VIEW_ONLINE_LINE = re.compile(r"\b(view|read|open|see)\b.{0,40}\b(in (your |a )?(web )?browser|online)\b", re.I)
_VIEW_LINE_CHARS = 160
_RAW_PER_CHAR = 16
_DROPPED = "kp-dropped"
_GENERIC_ANCHOR = re.compile(r"^\W*(click here|tap here|here|this link|view it|browser|online)\W*$", re.I)
_UNSUBSCRIBE_LINK = re.compile(
    r"^\W*(unsubscribe|opt[ -]?out|manage (your )?(email |e-mail |newsletter )?(preferences|subscriptions?|settings)"
    r"|(update|change) (your )?(email |e-mail )?(preferences|subscription)|email preferences"
    r"|turn off (these )?emails)\b", re.I)
_UNSUBSCRIBE_HREF = re.compile(r"unsubscribe|/action/disable_email|list-manage\.com/(profile|unsubscribe)"
                               r"|/preferences\b|/manage[-_]?subscription", re.I)
_FOOTER_PHRASE = re.compile(
    r"you (are|were|'re) receiving this|you received this (e-?mail|message|newsletter)|"
    r"our mailing address is|why did i get this|no longer want to receive|"
    r"(was this|this) e-?mail (was )?forwarded to you|forwarded this e-?mail\?|"
    r"(©|\(c\)|copyright)\s*(©\s*)?(19|20)\d\d\b.{0,200}(all rights reserved|\d{5}|street|st\.|ave|suite|pmb)",
    re.I)
_FOOTER_LINE = re.compile(
    r"^\W*(view (this )?(e-?mail |newsletter |post )?(in (your |a )?browser|online)|read online|web version"
    r"|unsubscribe( here)?|manage (your )?(email )?preferences|update (your )?(email )?preferences"
    r"|email preferences|powered by (beehiiv|substack|mailchimp|intuit mailchimp|convertkit|kit|ghost|buttondown)"
    r"|read in app|get the app|start writing)\W*$", re.I)
_ANGLE_URL = re.compile(r"<((?:https?|mailto):[^>\s]+)>")


@dataclass(frozen=True)
class EmailHeader:
    """The fields capture decides with, before the body is downloaded."""

    message_id: str | None
    subject: str
    sender: str | None
    address: str | None
    sent: datetime | None

    @property
    def key(self) -> str:
        """The dedup hash: of the normalised Message-ID, else of sender, date and subject."""
        if self.message_id:
            return sha256_text("message-id:" + self.message_id)
        sent = self.sent.isoformat() if self.sent else ""
        return sha256_text(f"email:{self.address or ''}|{sent}|{self.subject}")


@dataclass(frozen=True)
class EmailText:
    text: str
    view_url: str | None


def parse_header(raw: bytes) -> EmailHeader:
    """Message-ID, subject, sender and date of a message or of its header alone; never raises."""
    message = message_from_bytes(raw, policy=policy.compat32)
    name, address = _from(message)
    return EmailHeader(
        message_id=normalize_message_id(_header(message, "Message-ID")),
        subject=_title(_header(message, "Subject")),
        sender=(f"{name} <{address}>" if name else address) if address else (name or None),
        address=address.lower() if address else None,
        sent=_date(_header(message, "Date")),
    )


def normalize_message_id(value: str | None) -> str | None:
    """``<Local@Example.COM>`` -> ``Local@example.com``: brackets and spaces out, the domain lowercased."""
    if not value:
        return None
    text = "".join(value.split())
    match = re.search(r"<([^<>]+)>", text)
    text = match.group(1) if match else text.strip("<>")
    local, at, domain = text.rpartition("@")
    return (f"{local}@{domain.lower()}" if at else text) or None


def read_email(raw: bytes, subject: str = "") -> EmailText:
    """The newsletter's text (HTML part preferred) and its "view in browser" link."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    unsubscribe = _list_unsubscribe(message)
    part = _body_part(message)
    if part is None:
        return EmailText("", None)
    content = _part_text(part)
    if part.get_content_type() == "text/html":
        return newsletter_text(content, subject, unsubscribe)
    return EmailText(_plain_text(content), None)


def newsletter_text(html: str, subject: str = "", unsubscribe_urls: tuple[str, ...] = ()) -> EmailText:
    """A newsletter's HTML as text: wrapping removed, then the web pages' extractor."""
    if not html.strip():
        return EmailText("", None)
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return EmailText(_plain_text(html_to_text(html)), None)
    view_url = _view_url(tree, subject)
    _remove_wrapping(tree, unsubscribe_urls)
    cleaned = lxml.html.tostring(tree, encoding="unicode")
    return EmailText(_plain_text(html_to_text(cleaned, view_url)), view_url)


def text_fingerprint(text: str) -> str:
    """The exact-duplicate key of a text: sha256 of it casefolded, NFKC, whitespace collapsed."""
    return sha256_text(" ".join(unicodedata.normalize("NFKC", text).casefold().split()))


# -- headers --------------------------------------------------------------------------


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)


def _from(message: Message) -> tuple[str, str]:
    raw = _header(message, "From")
    try:
        pairs = getaddresses([raw])
    except (ValueError, IndexError):
        pairs = []
    name, address = pairs[0] if pairs else ("", "")
    name = _title(name)
    if "@" not in address:
        return name or _title(raw), ""
    return name, address.strip()


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _title(value: str) -> str:
    return normalize(_INVISIBLE.sub("", value))


def _list_unsubscribe(message: EmailMessage) -> tuple[str, ...]:
    try:
        value = str(message.get("List-Unsubscribe") or "")
    except (ValueError, IndexError, LookupError):
        return ()
    return tuple(re.findall(r"<(https?://[^>\s]+)>", value))


# -- body -----------------------------------------------------------------------------


def _body_part(message: EmailMessage) -> EmailMessage | None:
    try:
        part = message.get_body(preferencelist=("html", "plain"))
    except (KeyError, ValueError, IndexError):
        part = None
    if part is not None:
        return part  # type: ignore[return-value]
    for candidate in message.walk():
        if candidate.get_content_maintype() == "text" and not candidate.is_attachment():
            return candidate  # type: ignore[return-value]
    return None


def _part_text(part: Message) -> str:
    """A text part decoded: transfer encoding, then charset as for web pages (extract/charset.py)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    if part.get_content_type() == "text/html":
        return decode_html(payload, part.get_content_charset())
    return decode_text(payload, part.get_content_charset())


def _plain_text(text: str) -> str:
    """Plain text without invisible characters, link brackets, signature or footer lines."""
    text = _ANGLE_URL.sub(r"\1", _INVISIBLE.sub("", text.replace("\xa0", " ")))
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.rstrip() == "--":
            break
        if _FOOTER_LINE.match(line.strip()) or (len(line) < _FOOTER_BLOCK_CHARS and _FOOTER_PHRASE.search(line)):
            continue
        lines.append(line.rstrip())
    return clean_text("\n".join(lines))


# -- HTML wrapping --------------------------------------------------------------------


def _link(href: str | None) -> str | None:
    if not href:
        return None
    try:
        url = canonical_link(href)
    except LinkError:
        return None
    return url if len(url) <= MAX_URL else None


def _text(element: lxml.html.HtmlElement) -> str:
    return " ".join(_INVISIBLE.sub("", element.text_content()).split())


def _short_text(element: lxml.html.HtmlElement, limit: int) -> str | None:
    """``_text(element)`` if it is at most ``limit`` characters long, else None.

    Reads the text piece by piece and stops as soon as it is known to be
    longer: more than ``limit`` characters that are not spaces, or more than
    _RAW_PER_CHAR times ``limit`` characters with the spaces (no footer line
    is padded that much). Every link and block is measured, so reading whole
    blocks made a large email quadratic (8,000 links in one cell: 26 s).
    """
    pieces: list[str] = []
    solid = raw = 0
    for piece in element.itertext():
        piece = _INVISIBLE.sub("", piece[: limit * _RAW_PER_CHAR - raw + 1])
        pieces.append(piece)
        raw += len(piece)
        solid += sum(map(len, piece.split()))
        if solid > limit or raw > limit * _RAW_PER_CHAR:
            return None
    text = " ".join("".join(pieces).split())
    return text if len(text) <= limit else None


def _view_url(tree: lxml.html.HtmlElement, subject: str) -> str | None:
    """The "view in browser" link, else the link on the newsletter's own title."""
    anchors = [a for a in tree.iter("a") if a.get("href")]
    lines: dict[lxml.html.HtmlElement, str | None] = {}
    for anchor in anchors:
        if _is_view_online(anchor, lines) and (url := _link(anchor.get("href"))):
            return url
    wanted = " ".join(subject.split()).casefold()
    for anchor in anchors:
        text = _text(anchor).casefold()
        if text and (text == wanted or (anchor.getparent() is not None and anchor.getparent().tag == "h1")):
            if url := _link(anchor.get("href")):
                return url
    return None


def _is_view_online(anchor: lxml.html.HtmlElement, lines: dict[lxml.html.HtmlElement, str | None]) -> bool:
    """ "View in browser", or "click here" in a short line that says so.

    ``lines`` keeps each block's short text, so that a block is read once
    however many links it holds (nothing may be taken out meanwhile).
    """
    text = _short_text(anchor, _VIEW_LINE_CHARS)
    if text is None:
        return False
    if _VIEW_ONLINE.match(text):
        return True
    if not _GENERIC_ANCHOR.match(text):
        return False
    block = _enclosing_block(anchor)
    if block is None:
        return False
    if block not in lines:
        lines[block] = _short_text(block, _VIEW_LINE_CHARS)
    line = lines[block]
    return line is not None and bool(_VIEW_ONLINE_LINE.search(line))


def _remove_wrapping(tree: lxml.html.HtmlElement, unsubscribe_urls: tuple[str, ...]) -> None:
    """Hidden text, images, "view online" lines and footers out of ``tree``, in place."""
    for element in list(tree.iter("script", "style", "img", "noscript", etree.Comment)):
        _drop(element)
    for element in [e for e in tree.iter() if isinstance(e.tag, str)]:
        style = element.get("style") or ""
        if _HIDDEN_STYLE.search(style) or element.get("hidden") is not None or element.get("aria-hidden") == "true":
            _drop(element)
    _drop_footer_links(tree, unsubscribe_urls)
    for element in list(tree.iter(*_BLOCKS)):
        marks = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
        if "footer" in marks and _short_text(element, _FOOTER_CONTAINER_CHARS) is not None:
            _drop(element)
    for element in reversed(list(tree.iter(*_BLOCKS))):
        if element.getparent() is None:
            continue
        text = _short_text(element, _FOOTER_BLOCK_CHARS)
        if text is not None and _FOOTER_PHRASE.search(text):
            _drop(element)
    for element in tree.iter(*_LAYOUT):
        element.tag = "div"  # newsletters lay out with tables: as tables they would come out as one row of cells
    etree.strip_elements(tree, _DROPPED, with_tail=False)


def _drop_footer_links(tree: lxml.html.HtmlElement, unsubscribe_urls: tuple[str, ...]) -> None:
    """ "View online" and unsubscribe links out: their whole line when it is short, else the links alone.

    Every link is judged first, with the tree untouched; then each line holding
    such links is read once for its length (and once more after its links went:
    a line that is short without them goes too). Taking links out one by one and
    reading the line again each time was quadratic in the links of one line.
    """
    lines: dict[lxml.html.HtmlElement, str | None] = {}
    found: dict[lxml.html.HtmlElement | None, list[lxml.html.HtmlElement]] = {}
    for anchor in tree.iter("a"):
        text, href = _short_text(anchor, _FOOTER_BLOCK_CHARS) or "", anchor.get("href") or ""
        if _is_view_online(anchor, lines) or _UNSUBSCRIBE_LINK.match(text) or _UNSUBSCRIBE_HREF.search(href) or (
            href in unsubscribe_urls
        ):
            found.setdefault(_enclosing_block(anchor), []).append(anchor)
    for block, anchors in found.items():
        if block is not None and not _in_tree(block, tree):
            continue  # inside a line already taken out
        if block is None or _short_text(block, _FOOTER_BLOCK_CHARS) is None:
            for anchor in anchors:
                _drop(anchor)
            if block is None or _short_text(block, _FOOTER_BLOCK_CHARS) is None:
                continue
        _drop(block)


def _enclosing_block(element: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """The nearest block around ``element`` (not the body), else None."""
    parent = element.getparent()
    while parent is not None and parent.tag not in _BLOCKS:
        parent = parent.getparent()
    if parent is None or parent.tag in ("html", "body"):
        return None
    return parent


def _in_tree(element: etree._Element | None, root: etree._Element) -> bool:
    while element is not None and element is not root:
        element = element.getparent()
    return element is root


def _drop(element: etree._Element) -> None:
    """Take ``element`` out of the tree but keep the text that follows it (lxml keeps it in ``tail``).

    An empty stand-in takes its place and carries the tail (the stand-ins are
    stripped at the end, at once): joining each tail to the text before it,
    as lxml's ``drop_tree`` does, made a line of thousands of dropped links
    copy one growing string thousands of times.
    """
    parent = element.getparent()
    if parent is None:
        return
    stand_in = lxml.html.Element(_DROPPED)
    stand_in.tail = element.tail
    parent.replace(element, stand_in)
