"""The feed list as OPML 2.0, the format every feed reader imports and exports.

A feed is an ``<outline>`` with an ``xmlUrl``; an outline without one is a
folder, and its path (``Tech/AI``) is the category of the feeds inside it,
as readers such as Miniflux and FreshRSS write it. The pipeline's own
per-feed options are attributes in their own namespace, as OPML 2.0 asks of
extensions::

    <opml version="2.0" xmlns:kp="urn:x-knowledge-pipeline:opml:1">
      <outline text="Example" type="rss" xmlUrl="https://example.com/feed"
               kp:windowDays="30" kp:paused="true" kp:category="AI"/>

Other attributes of an outline (``description``, another reader's namespace)
are kept and written back. Reading is strict: a file that is not OPML, or a
bad option value, raises :class:`OpmlError` with one line naming the problem.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..capture.links import LinkError, canonical_link
from ..errors import PipelineError

NAMESPACE = "urn:x-knowledge-pipeline:opml:1"
PREFIX = "kp"
_WINDOW, _PAUSED, _CATEGORY = (f"{{{NAMESPACE}}}{name}" for name in ("windowDays", "paused", "category"))
_OWN = {"text", "title", "type", "xmlUrl", "htmlUrl", _WINDOW, _PAUSED, _CATEGORY}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}
MAX_WINDOW_DAYS = 36500

ET.register_namespace(PREFIX, NAMESPACE)


class OpmlError(PipelineError, ValueError):
    """A feed list that cannot be used; the message is one line naming the problem.

    A PipelineError, so every command and the runner show it as that one line.
    """


@dataclass(frozen=True)
class FeedSpec:
    """One feed as configured: its location and options.

    ``origin`` is ``list`` for a feed of the OPML feed list, ``env`` for one of
    ``RSS_FEEDS``. ``window_days`` overrides ``RSS_WINDOW_DAYS``; ``paused``
    is the user's own pause (the automatic one lives in the feed state).
    """

    url: str
    title: str | None = None
    html_url: str | None = None
    window_days: int | None = None
    paused: bool = False
    category: str | None = None
    origin: str = "list"
    extra: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        return feed_key(self.url)

    def with_url(self, url: str) -> FeedSpec:
        return replace(self, url=url)


def feed_key(location: str) -> str:
    """The identity of a feed location: the canonical link of a URL, the path of a file."""
    text = location.strip()
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        try:
            return canonical_link(text)
        except LinkError:
            return text
    if scheme == "file":
        return str(Path(unquote(urlsplit(text).path)))
    return text


def check_location(location: str) -> str:
    """``location`` stripped; OpmlError unless it is an http(s) URL with a host, a file:// URL or a path."""
    text = location.strip()
    if not text:
        raise OpmlError("a feed without a URL (empty xmlUrl)")
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        try:
            canonical_link(text)
        except LinkError as exc:
            raise OpmlError(f"feed URL {text[:200]!r} is not usable: {exc}") from None
    elif scheme and scheme != "file" and len(scheme) > 1:
        raise OpmlError(f"feed URL {text[:200]!r} is not usable: only http(s) URLs and local files are read")
    return text


def parse_opml(data: bytes, *, source: str = "OPML") -> list[FeedSpec]:
    """The feeds of an OPML document, in document order, each URL once (the first wins)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OpmlError(f"{source} is not well-formed XML ({exc})") from None
    if root.tag != "opml":
        raise OpmlError(f"{source} is not an OPML file (its root element is <{_local(root.tag)}>, not <opml>)")
    body = root.find("body")
    if body is None:
        raise OpmlError(f"{source} has no <body>: not an OPML feed list")
    feeds: dict[str, FeedSpec] = {}
    _walk(body, (), feeds, source)
    return list(feeds.values())


def _walk(parent: ET.Element, folders: tuple[str, ...], feeds: dict[str, FeedSpec], source: str) -> None:
    for outline in parent.findall("outline"):
        url = outline.get("xmlUrl")
        name = (outline.get("title") or outline.get("text") or "").strip()
        if url is None:
            _walk(outline, folders + ((name or "untitled"),), feeds, source)
            continue
        spec = _spec(outline, folders, source)
        feeds.setdefault(spec.key, spec)


def _spec(outline: ET.Element, folders: tuple[str, ...], source: str) -> FeedSpec:
    url = check_location(outline.get("xmlUrl") or "")
    where = f"{source}: feed {url[:200]}"
    window = outline.get(_WINDOW)
    window_days = None
    if window is not None and window.strip():
        try:
            window_days = int(window.strip())
        except ValueError:
            window_days = -1
        if not 0 <= window_days <= MAX_WINDOW_DAYS:
            raise OpmlError(f"{where}: kp:windowDays={window!r} is not a whole number of days (0-{MAX_WINDOW_DAYS})")
    paused_text = (outline.get(_PAUSED) or "").strip().lower()
    if paused_text not in _TRUE | _FALSE:
        raise OpmlError(f"{where}: kp:paused={outline.get(_PAUSED)!r} is not true or false")
    category = clean_text(outline.get(_CATEGORY)) or "/".join(folders) or _standard_category(outline.get("category"))
    title = clean_text(outline.get("title")) or clean_text(outline.get("text"))
    return FeedSpec(
        url=url,
        title=None if title == url else title,  # written as the text of an untitled feed
        html_url=clean_text(outline.get("htmlUrl")),
        window_days=window_days,
        paused=paused_text in _TRUE,
        category=category or None,
        extra=tuple((key, value) for key, value in outline.attrib.items() if key not in _OWN),
    )


def _standard_category(value: str | None) -> str | None:
    """OPML's own ``category``: comma-separated, slash-delimited; the first one, without its leading slash."""
    first = (value or "").split(",", 1)[0].strip().strip("/")
    return first or None


def render_opml(feeds: list[FeedSpec], *, title: str = "Knowledge pipeline feeds", now: datetime | None = None) -> bytes:
    """An OPML 2.0 document of ``feeds``: folders by category, options as ``kp:`` attributes."""
    root = ET.Element("opml", {"version": "2.0"})
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateModified").text = format_datetime(now or datetime.now(timezone.utc), usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}
    for feed in feeds:
        path = tuple(part for part in (feed.category or "").split("/") if part.strip())
        _outline(_folder(folders, path), feed)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def _folder(folders: dict[tuple[str, ...], ET.Element], path: tuple[str, ...]) -> ET.Element:
    if path not in folders:
        parent = _folder(folders, path[:-1])
        folders[path] = ET.SubElement(parent, "outline", {"text": path[-1], "title": path[-1]})
    return folders[path]


def _outline(parent: ET.Element, feed: FeedSpec) -> None:
    name = feed.title or feed.url
    attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": feed.url}
    if feed.html_url:
        attributes["htmlUrl"] = feed.html_url
    if feed.window_days is not None:
        attributes[_WINDOW] = str(feed.window_days)
    if feed.paused:
        attributes[_PAUSED] = "true"
    if feed.category:
        attributes[_CATEGORY] = feed.category
    attributes.update(dict(feed.extra))
    ET.SubElement(parent, "outline", attributes)


def clean_text(value: str | None) -> str | None:
    """A title, category or URL as the feed list keeps it: whitespace folded to single spaces, None when empty."""
    text = " ".join((value or "").split())
    return text or None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
