"""The data the pipeline moves around: items, enrichments, taxonomy, outcomes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum


class Status(str, Enum):
    INBOX = "Inbox"
    ENRICHED = "Enriched"
    FAILED = "Failed"
    # An Inbox item whose text another item already has (inbox-first mode; the store says which, in Error)
    DUPLICATE = "Duplicate"


class SourceType(str, Enum):
    RSS = "RSS"
    WEBSITE = "Website"
    PDF = "PDF"
    EMAIL = "Email"


DEFAULT_CONTENT_TYPES: tuple[str, ...] = (
    "Market News",
    "Thought Leadership",
    "Personal Note",
    "Vendor Capability",
    "Client Deliverable",
)
DEFAULT_AI_PRIMITIVES: tuple[str, ...] = (
    "Content Creation",
    "Research",
    "Coding",
    "Data Analysis",
    "Ideation/Strategy",
    "Automation",
)


# The page body's four standard toggles, in order; analyses (ANALYSES) follow them.
BODY_TOGGLES: tuple[str, ...] = ("Summary", "Executive Summary", "Key Insights", "Raw")


@dataclass(frozen=True)
class LabelHint:
    """What a user's taxonomy file says about one label, to help the enrichers choose it."""

    name: str
    description: str = ""
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    ai_primitives: tuple[str, ...] = DEFAULT_AI_PRIMITIVES
    hints: tuple[LabelHint, ...] = ()

    def hint(self, label: str) -> LabelHint | None:
        return next((h for h in self.hints if h.name == label), None)


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewItem:
    """An item found by capture, not yet in the store."""

    title: str
    source_type: SourceType
    hash: str
    url: str | None = None
    pdf_path: str | None = None
    content: str | None = None
    created_date: date | None = None
    sender: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Item:
    """An item as the store holds it.

    ``url`` is the Article URL (RSS, Website); ``pdf_path`` is the PDF location
    (a local path or a ``file://``/``http(s)://`` URL). ``content`` is text the
    capture already had (a feed's full article, an email's text), so no fetch
    is needed. ``sender`` is an email's From (``Name <address>``); ``category``
    the category of the feed it came from (the feed list).
    ``added_at`` is when the item was captured; ``updated_at`` its last change
    (for an Enriched item: when it was enriched). Both are aware UTC datetimes.
    """

    id: str
    title: str
    source_type: SourceType
    status: Status = Status.INBOX
    url: str | None = None
    pdf_path: str | None = None
    hash: str | None = None
    content: str | None = None
    created_date: date | None = None
    summary: str | None = None
    content_type: str | None = None
    ai_primitives: tuple[str, ...] = ()
    vendor: str | None = None
    error: str | None = None
    archived: bool = False
    added_at: datetime | None = None
    updated_at: datetime | None = None
    warnings: tuple[str, ...] = ()
    sender: str | None = None
    category: str | None = None
    # Enrich-first: found by capture, held in the journal, not in the store yet (its id is a stand-in).
    pending: bool = False


PENDING_PREFIX = "new:"


def pending_item(new: NewItem) -> Item:
    """The stand-in of a captured item that is enriched before its page exists (CAPTURE_MODE=enrich-first)."""
    return Item(id=PENDING_PREFIX + new.hash, title=new.title, source_type=new.source_type, url=new.url,
                pdf_path=new.pdf_path, hash=new.hash, content=new.content, created_date=new.created_date,
                sender=new.sender, category=new.category, pending=True)


@dataclass(frozen=True)
class AnalysisResult:
    """One optional analysis (``ANALYSES``) as written into the body, after the standard toggles.

    ``paragraph``: the lines are its paragraphs; ``bullets``: one line per
    bullet; ``table``: the header row, then one line per row, cells joined by
    `` | ``. ``placeholder`` marks a result the enricher could not produce.
    """

    name: str
    title: str
    shape: str
    lines: tuple[str, ...]
    placeholder: bool = False

    def to_dict(self) -> dict:
        data: dict = {"name": self.name, "title": self.title, "shape": self.shape, "lines": list(self.lines)}
        if self.placeholder:
            data["placeholder"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AnalysisResult:
        return cls(data["name"], data["title"], data["shape"], tuple(data["lines"]), bool(data.get("placeholder")))


@dataclass(frozen=True)
class Enrichment:
    summary: str
    executive_summary: str
    content_type: str
    ai_primitives: tuple[str, ...]
    vendor: str | None
    key_insights: tuple[str, ...]
    published_date: date | None = None
    chunks: int = 1
    analyses: tuple[AnalysisResult, ...] = ()
    # Not from the enricher: set by process_item from the extraction, written with the rest.
    title: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = {
            "summary": self.summary,
            "executive_summary": self.executive_summary,
            "content_type": self.content_type,
            "ai_primitives": list(self.ai_primitives),
            "vendor": self.vendor,
            "key_insights": list(self.key_insights),
            "published_date": self.published_date.isoformat() if self.published_date else None,
            "chunks": self.chunks,
            "title": self.title,
            "warnings": list(self.warnings),
        }
        if self.analyses:
            data["analyses"] = [a.to_dict() for a in self.analyses]
        return data

    def body_titles(self) -> frozenset[str]:
        """The titles of every toggle this enrichment writes into the body."""
        return frozenset(BODY_TOGGLES) | {a.title for a in self.analyses}

    @classmethod
    def from_dict(cls, data: dict) -> Enrichment:
        published = data.get("published_date")
        return cls(
            summary=data["summary"],
            executive_summary=data["executive_summary"],
            content_type=data["content_type"],
            ai_primitives=tuple(data["ai_primitives"]),
            vendor=data.get("vendor"),
            key_insights=tuple(data["key_insights"]),
            published_date=date.fromisoformat(published) if published else None,
            chunks=int(data.get("chunks", 1)),
            analyses=tuple(AnalysisResult.from_dict(a) for a in data.get("analyses") or ()),
            title=data.get("title"),
            warnings=tuple(data.get("warnings") or ()),
        )


@dataclass(frozen=True)
class PartialRead:
    """Text that was capped or only partly recovered: ``kept`` of ``total`` ``unit`` (None: unknown).

    ``cause`` names the setting that capped it or what went wrong; str() is
    the one line kept with the item (``list --json`` shows it under ``warnings``).
    """

    unit: str
    kept: int
    total: int | None
    cause: str
    verb: str = "read"

    def __str__(self) -> str:
        of = f" of {self.total:,}" if self.total is not None else ""
        return f"{self.kept:,}{of} {self.unit} {self.verb} ({self.cause})"


class OutcomeKind(str, Enum):
    ENRICHED = "enriched"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    DUPLICATE = "duplicate"
    DEFERRED = "deferred"


@dataclass
class Outcome:
    item_id: str
    title: str
    kind: OutcomeKind
    duration: float = 0.0
    content_length: int = 0
    content_type: str | None = None
    vendor: str | None = None
    reason: str | None = None
    error_type: str | None = None
    chunks: int = 1
    extra: dict = field(default_factory=dict)


def utcnow() -> datetime:
    from datetime import timezone

    return datetime.now(timezone.utc)
