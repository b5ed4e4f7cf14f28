"""The Enricher interface (local, OpenAI)."""

from __future__ import annotations

from typing import Protocol

from ..models import Enrichment, Item, Taxonomy


class Enricher(Protocol):
    """Turns an item's full text into an :class:`Enrichment`.

    Raises ``EnrichmentError`` or ``ServiceError`` for a failure of this item,
    ``FatalRunError`` when no further item can succeed (bad key, no quota).
    """

    name: str

    async def enrich(self, item: Item, text: str, taxonomy: Taxonomy) -> Enrichment: ...

    async def close(self) -> None: ...
