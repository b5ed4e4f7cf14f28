"""The source registry: every kind of source described once, in :data:`SOURCE_KINDS`.

A :class:`SourceKind` says everything the rest of the pipeline needs to know
about one source: the settings that turn it on, the script that captures it,
its capture function, the Source Type of its items, the Notion property that
locates them, and (when a plain web or PDF read will not do) the reader that
gets their text at enrichment. The runner, the scripts, the text extractor and
the Notion store read this table; none of them names a source.

Adding a source (YouTube transcripts, Slack...) is one module under
``capture/`` with a capture function (and a reader if its text is not a web
page or a PDF), plus one entry here. See docs/architecture.md, "Adding a source".

A capture function is called with keyword arguments only::

    await capture(settings=..., store=..., telemetry=..., known_hashes=..., dry_run=..., **needs)

where ``needs`` are the shared resources the entry asks for (``fetcher``: the
run's guarded web fetcher; ``gateway``: the ServiceGateway for its own API;
``stop``: the run's shutdown event, set on SIGINT/SIGTERM). A kind with
``lazy_hashes`` gets a :class:`~.known.KnownHashes` it loads only when it has
something to check (feeds: a run of 304s never reads the store's hashes).
It returns one :class:`CaptureReport` or a list of them, and hands each new
item over through :func:`capture.store_new` as soon as it finds it, so a
caller can pass a store whose ``add`` queues the item for enrichment at once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal

from ..config import Settings
from ..models import SourceType

Script = Literal["feeds", "pdfs"]


@dataclass(frozen=True)
class SourceKind:
    """One kind of source.

    ``capture`` and ``reader`` are ``"module:attribute"`` paths, imported only
    when used (a run without Drive never imports google-auth). ``locator`` is
    the Settings attribute naming the Notion URL property that locates the
    items (None: Source Type alone finds them). ``reader`` names a class with
    ``accepts(item) -> bool`` (static), ``__init__(settings, gateway, fetcher)``,
    ``async read(item) -> str`` and ``async close()``; without one, items are
    read as web pages (``url``) or PDFs (``pdf_path``).
    """

    name: str
    label: str
    script: Script
    source_type: SourceType
    settings: tuple[str, ...]
    configured: Callable[[Settings], bool]
    capture: str
    locator: str | None
    needs: tuple[str, ...] = ()
    reader: str | None = None
    lazy_hashes: bool = False
    help_name: str | None = None  # how help texts name what turns it on (default: its first setting)

    def capture_function(self) -> Callable[..., Any]:
        return _load(self.capture)

    def reader_class(self) -> Any | None:
        return _load(self.reader) if self.reader else None


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind(
        name="feeds",
        label="RSS/Atom feeds",
        script="feeds",
        source_type=SourceType.RSS,
        settings=("RSS_FEEDS", "FEEDS_FILE"),
        configured=lambda s: bool(s.rss_feeds) or s.feeds_file is not None or s.feed_list_path.exists(),
        capture="knowledge_pipeline.capture.feeds:capture_feeds",
        locator="rss_url_prop",
        needs=("fetcher", "stop"),
        lazy_hashes=True,
        help_name="RSS_FEEDS and the feed list FEEDS_FILE",
    ),
    SourceKind(
        name="websites",
        label="website sections",
        script="feeds",
        source_type=SourceType.WEBSITE,
        settings=("WEBSITE_SOURCES",),
        configured=lambda s: bool(s.website_sources),
        capture="knowledge_pipeline.capture.websites:capture_websites",
        locator="rss_url_prop",
        needs=("fetcher",),
    ),
    SourceKind(
        name="email",
        label="email newsletters",
        script="feeds",
        source_type=SourceType.EMAIL,
        settings=("EMAIL_IMAP_HOST", "EMAIL_IMAP_USER", "EMAIL_IMAP_PASSWORD", "EMAIL_IMAP_FOLDER", "EMAIL_SEARCH"),
        configured=lambda s: s.email_imap_host is not None,
        capture="knowledge_pipeline.capture.email:capture_emails",
        locator=None,  # the text travels with the item (SQLite content; Notion: the page's "Email" toggle)
        needs=("gateway",),
    ),
    SourceKind(
        name="pdfs",
        label="PDF folder",
        script="pdfs",
        source_type=SourceType.PDF,
        settings=("PDF_DIR",),
        configured=lambda s: s.pdf_dir is not None,
        capture="knowledge_pipeline.capture.pdfs:capture_pdfs",
        locator="pdf_url_prop",
    ),
    SourceKind(
        name="drive",
        label="Google Drive folder",
        script="pdfs",
        source_type=SourceType.PDF,
        settings=("DRIVE_FOLDER_ID", "GOOGLE_APP_CREDENTIALS"),
        configured=lambda s: s.drive_folder_id is not None,
        capture="knowledge_pipeline.capture.drive:capture_drive",
        locator="pdf_url_prop",
        needs=("gateway",),
        reader="knowledge_pipeline.capture.drive:DriveReader",
    ),
)


def kinds_of(script: Script) -> tuple[SourceKind, ...]:
    """The kinds a script captures, in registry order."""
    return tuple(kind for kind in SOURCE_KINDS if kind.script == script)


def source_types_of(script: Script) -> frozenset[SourceType]:
    """The Source Types a script enriches: those of the kinds it captures."""
    return frozenset(kind.source_type for kind in kinds_of(script))


def locator_property(source_type: SourceType, settings: Settings) -> str | None:
    """The Notion property that must hold a URL for an item of ``source_type`` to be readable."""
    for kind in SOURCE_KINDS:
        if kind.source_type is source_type:
            return getattr(settings, kind.locator) if kind.locator else None
    return None


def reader_classes() -> list[tuple[str, Any]]:
    """(kind name, reader class) of every kind with its own reader, in registry order."""
    return [(kind.name, kind.reader_class()) for kind in SOURCE_KINDS if kind.reader]


def described(kinds: Iterable[SourceKind]) -> str:
    """``RSS_FEEDS (RSS/Atom feeds), WEBSITE_SOURCES (website sections)`` for help texts."""
    return ", ".join(f"{kind.help_name or kind.settings[0]} ({kind.label})" for kind in kinds)
