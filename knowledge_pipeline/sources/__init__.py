"""Sources stores: where captured items and their enrichments live."""

from __future__ import annotations

from ..config import Settings
from ..services import ServiceGateway
from .base import BODY_TOGGLES, SourceStore

__all__ = ["BODY_TOGGLES", "SourceStore", "open_store"]


def open_store(settings: Settings, gateway: ServiceGateway, *, read_only: bool = False) -> SourceStore:
    """The store the settings ask for (not yet opened: call ``await store.open()``).

    ``read_only`` (dry runs, ``list``) creates and changes nothing; a write raises StoreError.
    """
    if settings.sources_backend == "notion":
        from .notion import NotionStore

        return NotionStore(settings, gateway, read_only=read_only)
    from .sqlite import SqliteStore

    return SqliteStore(settings.sources_db_path, read_only=read_only)
