"""The Sources store interface every backend implements (SQLite, Notion).

A store mirrors the Notion Sources database of the original pipeline: Title,
Status (Inbox, Enriched, Failed), Source Type, Article URL, PDF location, Hash,
Summary (the executive summary), Content-Type, AI-Primitive, Vendor, Created
Date, an error reason, the warnings of a partial read, and a body of four toggles: "Summary", "Executive
Summary", "Key Insights" and "Raw" (the full text), then one toggle per optional analysis (``ANALYSES``).
"""

from __future__ import annotations

from typing import AsyncIterator, Collection, Protocol

from ..models import BODY_TOGGLES, Enrichment, Item, NewItem, SourceType, Status, Taxonomy

__all__ = ["BODY_TOGGLES", "SourceStore"]


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

    async def return_to_inbox(self, item: Item) -> None:
        """Undo ``mark_failed``: the item failed only because a service was down (circuit breaker)."""
        ...

    async def retry_failed(
        self, reason: str | None = None, source_types: Collection[SourceType] | None = None
    ) -> int:
        """Put Failed items (all, or those whose reason contains ``reason``) back in the Inbox."""
        ...

    def list_items(self, status: Status | None = None) -> AsyncIterator[Item]: ...

    async def body(self, item_id: str) -> dict[str, list[str]]:
        """The page body as toggle title -> list of its text blocks (tests, `list`)."""
        ...
