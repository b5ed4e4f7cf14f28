"""Sources stores: where captured items and their enrichments live."""

from __future__ import annotations

from ..config import Settings
from ..services import ServiceGateway
from .base import BODY_TOGGLES, SourceStore

__all__ = ["BODY_TOGGLES", "SourceStore", "open_store", "store_identity"]


def open_store(settings: Settings, gateway: ServiceGateway) -> SourceStore:
    """The store the settings ask for (not yet opened: call ``await store.open()``)."""
    if settings.sources_backend == "notion":
        from .notion import NotionStore

        return NotionStore(settings, gateway)
    from .sqlite import SqliteStore

    return SqliteStore(settings.sources_db_path)


def store_identity(settings: Settings) -> str:
    """Which Sources store the settings point at, as one string (locks, feed state)."""
    if settings.sources_backend == "notion":
        return f"notion:{settings.notion_base_url}:{settings.notion_sources_db}"
    return f"sqlite:{settings.sources_db_path.resolve()}"
