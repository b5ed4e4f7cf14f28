"""Sources stores: where captured items and their enrichments live."""

from __future__ import annotations

import os

from ..config import Settings
from ..errors import StoreError
from ..services import ServiceGateway
from .base import BODY_TOGGLES, ItemQuery, SourceStore

__all__ = ["BODY_TOGGLES", "ItemQuery", "SourceStore", "open_local_store", "open_reading_store", "open_store"]


def open_store(settings: Settings, gateway: ServiceGateway, *, read_only: bool = False) -> SourceStore:
    """The store the settings ask for (not yet opened: call ``await store.open()``).

    ``read_only`` (dry runs) creates and changes nothing; a write raises StoreError.
    """
    if settings.sources_backend == "notion":
        from .notion import NotionStore

        return NotionStore(settings, gateway, read_only=read_only)
    from .sqlite import SqliteStore

    return SqliteStore(settings.sources_db_path, settings.taxonomy, read_only=read_only)


def open_local_store(settings: Settings):  # noqa: ANN201 - SqliteStore, imported lazily like open_store's
    """The SQLite store that search, the reading page and the exports read (not yet opened).

    With the Notion backend it is the local copy ``sync --from notion`` keeps
    at SOURCES_DB_PATH; a missing copy is a StoreError saying how to make it.
    It opens read-write so that a file an older version wrote is migrated once
    (the search index is built in the file, not in a copy in memory).
    """
    from .sqlite import SqliteStore

    path = settings.sources_db_path
    if settings.sources_backend == "notion" and not path.exists():
        raise StoreError(
            f"no local copy of the Notion Sources at {path} (SOURCES_DB_PATH): "
            "run `python3 -m knowledge_pipeline sync --from notion` first"
        )
    return SqliteStore(path, settings.taxonomy)


def open_reading_store(settings: Settings, gateway: ServiceGateway) -> SourceStore:
    """The configured store as ``list``, ``show`` and ``digest`` read it (not yet opened).

    Notion: read-only. SQLite: read-write like :func:`open_local_store`, so a file
    an older version wrote is migrated once, in the file (read-only, every command
    would copy the whole store into memory to migrate it there). A command that only
    reads still creates nothing: with no file yet, or one this user may not write,
    the store opens read-only (an empty store in memory, or the file as it is).
    """
    path = settings.sources_db_path
    if settings.sources_backend == "notion":
        return open_store(settings, gateway, read_only=True)
    writable = path.is_file() and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    return open_store(settings, gateway, read_only=not writable)
