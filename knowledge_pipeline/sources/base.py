"""The Sources store interface every backend implements (SQLite, Notion).

A store mirrors the Notion Sources database of the original pipeline: Title,
Status (Inbox, Enriched, Failed), Source Type, Article URL, PDF location, Hash,
Summary (the executive summary), Content-Type, AI-Primitive, Vendor, Created
Date, an error reason, the warnings of a partial read, and a body of four toggles: "Summary", "Executive
Summary", "Key Insights" and "Raw" (the full text), then one toggle per optional analysis (``ANALYSES``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import AsyncIterator, Collection, Protocol

from ..enrichers.analyses import ORIGINAL
from ..models import BODY_TOGGLES, AnalysisResult, Enrichment, Item, NewItem, SourceType, Status, Taxonomy

PARAGRAPH_SEPARATOR = "\n\n"
# The toggle an Inbox email page carries its text in (Notion): body, but not part of the enrichment.
EMAIL_TOGGLE = "Email"
_ORIGINAL_BY_TITLE = {analysis.title: analysis for analysis in ORIGINAL}
INCOMPLETE_BODY = ("incomplete: the page body was still being written "
                   "(the next enrich run, or `sync --to notion` for a copy, finishes it)")


@dataclass(frozen=True)
class ItemQuery:
    """Which items to list, in which order. Every field set narrows the result; None means any.

    ``content_type``, ``vendor`` and ``primitive`` match labels case-insensitively.
    ``added_since``/``added_before`` bound the capture time, ``updated_since`` the
    last change (for Enriched items: the enrichment).
    """

    status: Status | None = None
    source_type: SourceType | None = None
    content_type: str | None = None
    vendor: str | None = None
    primitive: str | None = None
    added_since: datetime | None = None
    added_before: datetime | None = None
    updated_since: datetime | None = None
    newest_first: bool = False
    limit: int | None = None
    offset: int = 0

    def unlimited(self) -> ItemQuery:
        """The same selection without paging (what ``count_items`` counts)."""
        return replace(self, limit=None, offset=0)


def as_query(selection: ItemQuery | Status | None) -> ItemQuery:
    if selection is None:
        return ItemQuery()
    if isinstance(selection, ItemQuery):
        return selection
    return ItemQuery(status=Status(selection))


@dataclass(frozen=True)
class ItemContent:
    """An item's body as the reading commands use it: the toggles, parsed."""

    summary: str = ""
    executive_summary: str = ""
    key_insights: tuple[str, ...] = ()
    text: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_body(cls, body: dict[str, list[str]]) -> ItemContent:
        summary, executive, insights, raw = BODY_TOGGLES
        return cls(
            summary=PARAGRAPH_SEPARATOR.join(body.get(summary, [])),
            executive_summary=PARAGRAPH_SEPARATOR.join(body.get(executive, [])),
            key_insights=tuple(body.get(insights, [])),
            text=PARAGRAPH_SEPARATOR.join(body.get(raw, [])),
            extra=tuple((name, tuple(texts)) for name, texts in body.items() if name not in BODY_TOGGLES),
        )

    def analyses(self) -> tuple[AnalysisResult, ...]:
        """The optional analyses of the body (every toggle after the standard four but an email's text).

        A body keeps each analysis's title and lines, not its name or shape: the
        original analyses get theirs back by title; any other is a paragraph
        analysis named after its title (its lines, and so its text, unchanged).
        """
        results = []
        for title, lines in self.extra:
            if title == EMAIL_TOGGLE:
                continue
            known = _ORIGINAL_BY_TITLE.get(title)
            name = known.name if known else "_".join(title.lower().split())
            results.append(AnalysisResult(name, title, known.shape if known else "paragraph", lines))
        return tuple(results)

    def enrichment(self, item: Item) -> Enrichment:
        """The enrichment an Enriched item carries, analyses included (to copy it to another store)."""
        return Enrichment(
            summary=self.summary,
            executive_summary=self.executive_summary or item.summary or "",
            content_type=item.content_type or "",
            ai_primitives=item.ai_primitives,
            vendor=item.vendor,
            key_insights=self.key_insights,
            published_date=item.created_date,
            analyses=self.analyses(),
            warnings=item.warnings,
        )


def new_item_of(item: Item) -> NewItem:
    """The capture record of a stored item (to add it to another store)."""
    return NewItem(title=item.title, source_type=item.source_type, hash=item.hash or "", url=item.url,
                   pdf_path=item.pdf_path, content=item.content, created_date=item.created_date,
                   sender=item.sender, category=item.category)

__all__ = ["BODY_TOGGLES", "EMAIL_TOGGLE", "INCOMPLETE_BODY", "ItemContent", "ItemQuery", "SourceStore", "as_query",
           "new_item_of"]


class SourceStore(Protocol):
    """Async interface of a Sources store.

    ``inbox()`` streams items page by page; callers never need the whole table
    in memory. ``write_enrichment`` writes the body toggles and then the
    properties with ``Status = Enriched`` last, so an item is Enriched only
    once everything is written. ``repair=True`` says an earlier attempt may
    have been cut off mid-write: the store first removes any body it left.
    """

    name: str
    # Characters of the text the Raw toggle keeps (None: all); longer texts get an item_warning.
    max_raw_chars: int | None

    @property
    def identity(self) -> str:
        """Which store this is, as one string; another database or a recreated file is another identity."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def taxonomy(self) -> Taxonomy: ...

    async def known_hashes(self) -> set[str]: ...

    async def add(self, item: NewItem) -> Item: ...

    def inbox(self, source_types: Collection[SourceType] | None = None) -> AsyncIterator[Item]: ...

    async def count_inbox(self, source_types: Collection[SourceType] | None = None) -> int: ...

    async def write_enrichment(
        self, item: Item, enrichment: Enrichment, text: str, *, repair: bool = False
    ) -> None: ...

    async def mark_failed(self, item: Item, reason: str) -> None: ...

    def check_new(self, item: NewItem) -> None:
        """ItemError when the store would refuse this item whatever its enrichment (enrich-first checks at capture)."""
        ...

    async def add_failed(self, item: NewItem, reason: str, *, status: Status = Status.FAILED) -> Item:
        """Add an item that could not be enriched: Failed with ``reason``, in one write.

        ``status=Status.DUPLICATE``: a duplicate, ``reason`` saying of what (as :meth:`mark_duplicate`).
        """
        ...

    async def find_by_hash(self, item_hash: str) -> Item | None:
        """The item holding ``item_hash``, or None (one query)."""
        ...

    async def mark_duplicate(self, item: Item, note: str) -> None:
        """Mark an Inbox item as a duplicate of another (``note`` says which), not as a failure."""
        ...

    async def return_to_inbox(self, item: Item) -> None:
        """Undo ``mark_failed``: the item failed only because a service was down (circuit breaker)."""
        ...

    async def retry_failed(
        self, reason: str | None = None, source_types: Collection[SourceType] | None = None
    ) -> int:
        """Put Failed items (all, or those whose reason contains ``reason``) back in the Inbox."""
        ...

    def list_items(self, selection: ItemQuery | Status | None = None) -> AsyncIterator[Item]:
        """Items as ``selection`` asks (a Status is short for ``ItemQuery(status=...)``); oldest first by default."""
        ...

    async def count_items(self, selection: ItemQuery | Status | None = None) -> int:
        """How many items the selection holds, ignoring its limit and offset."""
        ...

    async def get(self, item_id: str) -> Item:
        """One item by its id or a unique prefix of it; ItemError when none or several match."""
        ...

    async def add_enriched(self, item: NewItem, enrichment: Enrichment, text: str) -> Item:
        """Add an item already enriched, complete (properties and body) in as few writes as the store allows.

        SQLite: one transaction. Notion: one ``pages.create`` carrying every
        property and the body when the body fits in one request; otherwise the
        page is created Failed with reason :data:`INCOMPLETE_BODY` and the body
        appended, Status = Enriched last. A write cut off there is completed by
        ``write_enrichment(..., repair=True)`` (what ``sync --to notion`` and an
        enrich-first run resuming the item do).
        """
        ...

    async def body(self, item_id: str) -> dict[str, list[str]]:
        """The page body as toggle title -> list of its text blocks (tests, `list`)."""
        ...
