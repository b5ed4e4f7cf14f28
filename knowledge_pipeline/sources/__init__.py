"""Sources stores: where captured items and their enrichments live."""

from __future__ import annotations

from ..config import Settings
from ..errors import StoreError
from ..services import ServiceGateway
from .base import BODY_TOGGLES, ItemQuery, SourceStore

__all__ = ["BODY_TOGGLES", "ItemQuery", "SourceStore", "open_local_store", "open_store"]


def open_store(settings: Settings, gateway: ServiceGateway, *, read_only: bool = False) -> SourceStore:
    """The store the settings ask for (not yet opened: call ``await store.open()``).

    ``read_only`` (dry runs, ``list``) creates and changes nothing; a write raises StoreError.
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
