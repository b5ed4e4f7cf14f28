"""Website sections without a feed (``WEBSITE_SOURCES``): new article URLs become Website items.

For each section URL (``https://example.com/insights/``) the site's sitemaps are
read: those named by robots.txt ``Sitemap:`` lines (else ``/sitemap.xml``),
sitemap indexes followed, gzip sitemaps decompressed within ``MAX_DOWNLOAD_MB``,
news sitemaps' publication dates and titles used. Only URLs on the section's
host and under its path are kept, and those dated before ``WEBSITE_WINDOW_DAYS``
are dropped. A site without a usable sitemap is read from the links of the
section page under the same path. Every discovery request (robots.txt aside)
honours robots.txt, read with :mod:`urllib.robotparser`. Each new article is
added as ``--add`` would (deduplicated by its canonical link, text fetched at
enrichment), newest first, at most ``WEBSITE_MAX_ARTICLES`` per section and run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from lxml import etree
from lxml import html as lxml_html

from .. import USER_AGENT
from ..config import Settings
from ..errors import ItemError, ServiceError
from ..extract.decoding import CappedBody, ContentCodingError, decoder_for
from ..extract.fetch import Fetcher
from ..models import NewItem, SourceType, sha256_text
from ..sources.base import SourceStore
from ..telemetry import Telemetry
from ..urls import shown_url
from . import CaptureReport, report_complete, store_new
from .links import LinkError, canonical_link, title_from_link

ROBOTS_CAP = 512 * 1024
MAX_SITEMAPS = 30
_SKIPPED_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".css", ".js", ".xml", ".rss", ".zip", ".mp3",
                     ".mp4", ".ico", ".json")
_MAX_TITLE = 300


class SectionError(Exception):
    """A section that cannot be read this run; the message is the one-line reason."""


@dataclass
class _Candidate:
    url: str
    canonical: str
    published: datetime | None = None
    title: str | None = None


@dataclass
class _Tally:
    too_old: int = 0
    over_cap: int = 0
    disallowed: int = 0
    via: str = "sitemap"
    sitemap_errors: list[str] = field(default_factory=list)
    bad_links: list[tuple[str, LinkError]] = field(default_factory=list)


class _Robots:
    """robots.txt of one origin: its rules (urllib.robotparser) and its Sitemap lines."""

    def __init__(self, parser: RobotFileParser) -> None:
        self.parser = parser

    def allows(self, url: str) -> bool:
        return self.parser.can_fetch(USER_AGENT, url)

    @property
    def sitemaps(self) -> list[str]:
        return list(self.parser.site_maps() or [])


async def capture_websites(
    *,
    settings: Settings,
    store: SourceStore,
    telemetry: Telemetry,
    known_hashes: set[str],
    dry_run: bool = False,
    fetcher: Fetcher,
    now: datetime | None = None,
) -> list[CaptureReport]:
    """Capture every section of ``WEBSITE_SOURCES``; one report per section, a failing one never stops the others."""
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=settings.website_window_days) if settings.website_window_days else None
    robots: dict[str, _Robots] = {}
    reports = []
    for source in settings.website_sources:
        reports.append(await _capture_section(settings, store, fetcher, telemetry, source, cutoff, robots,
                                              known_hashes, dry_run))
    return reports


async def _capture_section(
    settings: Settings,
    store: SourceStore,
    fetcher: Fetcher,
    telemetry: Telemetry,
    source: str,
    cutoff: datetime | None,
    robots_cache: dict[str, _Robots],
    known_hashes: set[str],
    dry_run: bool,
) -> CaptureReport:
    shown = shown_url(source, limit=None)
    report = CaptureReport(source=shown)
    tally = _Tally()
    telemetry.event("capture_start", f"looking for new articles in {shown}", source=shown, kind="website")
    try:
        section = _Section.parse(source)
        robots = robots_cache.get(section.origin)
        if robots is None:
            robots = robots_cache[section.origin] = await _robots(fetcher, section.origin)
        candidates = await _discover(settings, fetcher, section, robots, tally)
    except SectionError as exc:
        report.errors.append(str(exc))
        telemetry.event("capture_error", f"website section {shown} skipped: {exc}", level=logging.ERROR,
                        source=shown, kind="website", error=str(exc))
        _complete(telemetry, report, tally)
        return report
    report.errors += tally.sitemap_errors
    report.found = len(candidates) + len(tally.bad_links)
    for url, exc in tally.bad_links:
        report.reject(telemetry, f"sitemap entry {shown_url(url)!r}", str(exc), counted_as=exc.kind,
                      level=logging.DEBUG, error=False)
    fresh = [c for c in candidates if cutoff is None or c.published is None or c.published >= cutoff]
    tally.too_old = len(candidates) - len(fresh)
    for candidate in fresh:
        digest = sha256_text(candidate.canonical)
        if digest in known_hashes:
            report.duplicates += 1
            continue
        if report.added + len(report.would_add) >= settings.website_max_articles:
            tally.over_cap += 1
            continue
        item = NewItem(
            title=candidate.title or title_from_link(candidate.url),
            source_type=SourceType.WEBSITE,
            hash=digest,
            url=candidate.url,
            created_date=candidate.published.date() if candidate.published else None,
        )
        await store_new(store, item, report, telemetry, known_hashes=known_hashes, dry_run=dry_run, url=item.url)
    _complete(telemetry, report, tally)
    return report


@dataclass(frozen=True)
class _Section:
    url: str
    origin: str
    host: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> _Section:
        try:
            canonical_link(url)
            parts = urlsplit(url.strip())
        except (LinkError, ValueError) as exc:
            raise SectionError(f"not a usable section URL ({exc})") from None
        path = parts.path or "/"
        prefix = path if path.endswith("/") else path + "/"
        origin = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "", "", ""))
        return cls(url.strip(), origin, _bare_host(parts.hostname or ""), prefix)

    def contains(self, url: str) -> bool:
        """True for a page under the section on the same site (not the section page itself)."""
        parts = urlsplit(url)
        path = parts.path or "/"
        return (
            parts.scheme in ("http", "https")
            and _bare_host(parts.hostname or "") == self.host
            and path.startswith(self.prefix)
            and path.rstrip("/") != self.prefix.rstrip("/")
            and not path.lower().endswith(_SKIPPED_SUFFIXES)
        )


def _bare_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


async def _robots(fetcher: Fetcher, origin: str) -> _Robots:
    """The origin's robots.txt. Missing (4xx): everything allowed; 401/403: nothing; 5xx or unreachable: skip."""
    parser = RobotFileParser(origin + "/robots.txt")
    try:
        fetched = await fetcher.fetch(origin + "/robots.txt", max_bytes=ROBOTS_CAP, missing_ok=True)
    except ServiceError as exc:
        status = exc.status_code
        if status in (401, 403):
            parser.disallow_all = True
        elif status is not None and 400 <= status < 500:
            parser.allow_all = True
        else:
            raise SectionError(f"robots.txt of {origin} cannot be read ({exc}); the section waits for the next run") from None
        return _Robots(parser)
    except ItemError as exc:
        raise SectionError(f"robots.txt of {origin}: {exc}") from None
    if fetched.status_code >= 400:
        parser.allow_all = True
        return _Robots(parser)
    parser.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
    return _Robots(parser)


async def _discover(
    settings: Settings, fetcher: Fetcher, section: _Section, robots: _Robots, tally: _Tally
) -> list[_Candidate]:
    guessed = "" if robots.sitemaps else section.origin + "/sitemap.xml"
    sitemaps = robots.sitemaps or [guessed]
    found = await _from_sitemaps(settings, fetcher, section, robots, sitemaps, guessed, tally)
    if found:
        return _newest_first(found)
    tally.via = "links"
    if not robots.allows(section.url):
        raise SectionError(f"robots.txt disallows {shown_url(section.url)} and no sitemap lists articles under it")
    try:
        fetched = await fetcher.fetch(section.url)
    except ItemError as exc:
        raise SectionError(f"section page: {exc}") from None
    links = await asyncio.to_thread(_page_links, fetched.body, fetched.url, section)
    return links


async def _from_sitemaps(
    settings: Settings,
    fetcher: Fetcher,
    section: _Section,
    robots: _Robots,
    queue: list[str],
    guessed: str,
    tally: _Tally,
) -> list[_Candidate]:
    found: dict[str, _Candidate] = {}
    seen: set[str] = set()
    queue = list(queue)
    while queue and len(seen) < MAX_SITEMAPS:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        if not robots.allows(url):
            tally.disallowed += 1
            continue
        try:
            data = await _sitemap_bytes(fetcher, url, settings.max_download_bytes, missing_ok=url == guessed)
            kind, entries = await asyncio.to_thread(_parse_sitemap, data)
        except (ItemError, SectionError) as exc:
            if url != guessed:  # /sitemap.xml tried on a guess may be anything
                tally.sitemap_errors.append(f"sitemap {shown_url(url)}: {exc}")
            continue
        if kind == "index":
            children = sorted(entries, key=lambda e: (not _looks_news(e.url), -(e.published.timestamp() if e.published else 0)))
            queue += [child.url for child in children]
            continue
        for entry in entries:
            if not section.contains(entry.url):
                continue
            try:
                entry.canonical = canonical_link(entry.url)
            except LinkError as exc:
                tally.bad_links.append((entry.url, exc))
                continue
            previous = found.get(entry.canonical)
            if previous is None or (entry.published and (previous.published is None or entry.published > previous.published)):
                found[entry.canonical] = entry
    return list(found.values())


async def _sitemap_bytes(fetcher: Fetcher, url: str, cap: int, *, missing_ok: bool) -> bytes:
    fetched = await fetcher.fetch(url, max_bytes=cap, missing_ok=missing_ok)
    if fetched.status_code >= 400:
        raise SectionError(f"HTTP {fetched.status_code}")
    if fetched.truncated:
        raise SectionError(f"larger than MAX_DOWNLOAD_MB ({cap / 1048576:g} MB)")
    body = fetched.body
    if body[:2] == b"\x1f\x8b":
        return await asyncio.to_thread(_gunzip, body, cap)
    return body


def _gunzip(data: bytes, cap: int) -> bytes:
    """Decompress every gzip member without ever holding more than ``cap`` bytes (a gzip bomb stops at the cap)."""
    body = CappedBody(cap, decoder_for("gzip"), "gzip")
    try:
        if not body.take(data):
            body.finish()
    except ContentCodingError as exc:
        raise SectionError(f"corrupt gzip ({exc.problem})") from None
    if body.truncated:
        raise SectionError(f"larger than MAX_DOWNLOAD_MB ({cap / 1048576:g} MB) once decompressed")
    return bytes(body.data)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _parse_sitemap(data: bytes) -> tuple[str, list[_Candidate]]:
    """("index" | "urlset", entries); entries of an index are child sitemaps."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise SectionError(f"not XML ({exc})") from None
    if root is None or _local(root.tag) not in ("urlset", "sitemapindex"):
        raise SectionError("not a sitemap (no <urlset> or <sitemapindex>)")
    kind = "index" if _local(root.tag) == "sitemapindex" else "urlset"
    entries = []
    for node in root:
        if _local(node.tag) not in ("url", "sitemap"):
            continue
        fields = dict(_fields(node))
        loc = (fields.get("loc") or "").strip()
        if not loc:
            continue
        published = _w3c_date(fields.get("publication_date")) or _w3c_date(fields.get("lastmod"))
        title = " ".join((fields.get("title") or "").split())[:_MAX_TITLE] or None
        entries.append(_Candidate(loc, loc, published, title))
    return kind, entries


def _fields(node: etree._Element) -> Iterator[tuple[str, str]]:
    for child in node.iter():
        name = _local(child.tag)
        if name in ("loc", "lastmod", "publication_date", "title") and child.text:
            if name == "loc" and child.getparent() is not node:
                continue  # an image:loc or video:loc inside the entry
            yield name, child.text


def _w3c_date(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _looks_news(url: str) -> bool:
    return "news" in url.lower()


def _newest_first(found: list[_Candidate]) -> list[_Candidate]:
    dated = sorted((c for c in found if c.published), key=lambda c: c.published, reverse=True)  # type: ignore[arg-type, return-value]
    return dated + [c for c in found if c.published is None]


def _page_links(body: bytes, base: str, section: _Section) -> list[_Candidate]:
    """Links of the section page under the section's path, in page order, with their anchor text."""
    try:
        tree = lxml_html.fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    found: dict[str, _Candidate] = {}
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "javascript:")):
            continue
        url = urljoin(base, href).split("#", 1)[0]
        if not section.contains(url):
            continue
        try:
            canonical = canonical_link(url)
        except LinkError:
            continue
        text = " ".join(anchor.text_content().split())[:_MAX_TITLE]
        existing = found.get(canonical)
        if existing is None:
            found[canonical] = _Candidate(url, canonical, None, text if len(text) >= 4 else None)
        elif existing.title is None and len(text) >= 4:
            existing.title = text
    return list(found.values())


def _complete(telemetry: Telemetry, report: CaptureReport, tally: _Tally) -> None:
    report_complete(
        telemetry, report, "website",
        f"website {report.source}: {report.found} articles found ({tally.via}), {report.added} added, "
        f"{report.duplicates} duplicates, {report.rejected} rejected, {tally.too_old} older than the window, "
        f"{tally.over_cap} over the cap",
        via=tally.via, too_old=tally.too_old, over_cap=tally.over_cap, disallowed=tally.disallowed,
    )
