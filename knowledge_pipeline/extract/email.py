"""An email as the pipeline reads it: decoded headers, and the newsletter's text without its wrapping.

:func:`parse_header` reads the few fields capture needs before downloading a
body (Message-ID, From, Subject, Date; RFC 2047 words decoded).
:func:`read_email` decodes the whole message (multipart, quoted-printable,
base64, any charset; ISO-8859-1 read as windows-1252, as browsers do) and
turns its HTML part into text with the same extractor as web pages, after
taking out what a newsletter wraps its article in: hidden preheaders,
tracking pixels, "view in browser" lines and unsubscribe footers. The
"view in browser" link is kept as the item's URL.
"""

from __future__ import annotations

import codecs
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
from .html import html_to_text

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
_WHATWG_ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252",
                   "ascii": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252"}
_ANGLE_URL = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_MAX_TITLE = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    text = " ".join(_CONTROL.sub(" ", _INVISIBLE.sub("", value)).split())
    return text if len(text) <= _MAX_TITLE else text[: _MAX_TITLE - 1] + "…"


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
    """A text part decoded: transfer encoding, then charset (unknown or missing: UTF-8, else windows-1252)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    charset = (part.get_content_charset() or "").strip().lower()
    charset = _WHATWG_ALIASES.get(charset, charset)
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = ""
    if charset:
        return payload.decode(charset, errors="replace")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


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


def _view_url(tree: lxml.html.HtmlElement, subject: str) -> str | None:
    """The "view in browser" link, else the link on the newsletter's own title."""
    anchors = [a for a in tree.iter("a") if a.get("href")]
    for anchor in anchors:
        if _is_view_online(anchor) and (url := _link(anchor.get("href"))):
            return url
    wanted = " ".join(subject.split()).casefold()
    for anchor in anchors:
        text = _text(anchor).casefold()
        if text and (text == wanted or (anchor.getparent() is not None and anchor.getparent().tag == "h1")):
            if url := _link(anchor.get("href")):
                return url
    return None


def _is_view_online(anchor: lxml.html.HtmlElement) -> bool:
    """ "View in browser", or "click here" in a short line that says so."""
    text = _text(anchor)
    if _VIEW_ONLINE.match(text):
        return True
    if not _GENERIC_ANCHOR.match(text):
        return False
    block = _enclosing_block(anchor, _VIEW_LINE_CHARS)
    return block is not None and bool(_VIEW_ONLINE_LINE.search(_text(block)))


def _remove_wrapping(tree: lxml.html.HtmlElement, unsubscribe_urls: tuple[str, ...]) -> None:
    """Hidden text, images, "view online" lines and footers out of ``tree``, in place."""
    for element in list(tree.iter("script", "style", "img", "noscript", etree.Comment)):
        _drop(element)
    for element in [e for e in tree.iter() if isinstance(e.tag, str)]:
        style = element.get("style") or ""
        if _HIDDEN_STYLE.search(style) or element.get("hidden") is not None or element.get("aria-hidden") == "true":
            _drop(element)
    for anchor in list(tree.iter("a")):
        text, href = _text(anchor), anchor.get("href") or ""
        if _is_view_online(anchor) or _UNSUBSCRIBE_LINK.match(text) or _UNSUBSCRIBE_HREF.search(href) or (
            href in unsubscribe_urls
        ):
            block = _enclosing_block(anchor, _FOOTER_BLOCK_CHARS)
            _drop(anchor if block is None else block)
    for element in list(tree.iter(*_BLOCKS)):
        marks = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
        if "footer" in marks and len(_text(element)) <= _FOOTER_CONTAINER_CHARS:
            _drop(element)
    for element in reversed(list(tree.iter(*_BLOCKS))):
        if element.getparent() is None:
            continue
        text = _text(element)
        if len(text) <= _FOOTER_BLOCK_CHARS and _FOOTER_PHRASE.search(text):
            _drop(element)
    for element in tree.iter(*_LAYOUT):
        element.tag = "div"  # newsletters lay out with tables: as tables they would come out as one row of cells


def _enclosing_block(element: lxml.html.HtmlElement, limit: int) -> lxml.html.HtmlElement | None:
    """The nearest block around ``element`` if its text is short (a footer line), else None."""
    parent = element.getparent()
    while parent is not None and parent.tag not in _BLOCKS:
        parent = parent.getparent()
    if parent is None or parent.tag in ("html", "body") or len(_text(parent)) > limit:
        return None
    return parent


def _drop(element: etree._Element) -> None:
    """Remove ``element`` but keep the text that follows it (lxml keeps it in ``tail``)."""
    if element.getparent() is None:
        return
    if isinstance(element, lxml.html.HtmlElement):
        element.drop_tree()
    else:
        parent = element.getparent()
        tail = element.tail
        previous = element.getprevious()
        if tail:
            if previous is not None:
                previous.tail = (previous.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
        parent.remove(element)
