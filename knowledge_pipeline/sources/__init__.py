"""Sources stores: where captured items and their enrichments live."""

from __future__ import annotations

from ..config import Settings
from ..services import ServiceGateway
from .base import BODY_TOGGLES, SourceStore

__all__ = ["BODY_TOGGLES", "SourceStore", "open_store"]


def open_store(settings: Settings, gateway: ServiceGateway) -> SourceStore:
    """The store the settings ask for (not yet opened: call ``await store.open()``)."""
    if settings.sources_backend == "notion":
        from .notion import NotionStore

        return NotionStore(settings, gateway)
    from .sqlite import SqliteStore

    return SqliteStore(settings.sources_db_path)
