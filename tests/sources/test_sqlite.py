"""The SQLite store's own behaviour beyond the store contract: its named migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from knowledge_pipeline.sources import sqlite as sqlite_store


def test_a_store_written_before_warnings_existed_is_migrated_in_place(tmp_path: Path):
    path = tmp_path / "sources.db"
    db = sqlite3.connect(path, isolation_level=None)
    sqlite_store._m001_initial(db)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', '2026-01-01T00:00:00+00:00')")
    db.execute("INSERT INTO items (id, title, status, source_type, hash, added_at, updated_at) "
               "VALUES ('old', 'Old item', 'Enriched', 'RSS', 'h', 'x', 'x')")
    db.close()

    async def scenario():
        store = sqlite_store.SqliteStore(path)
        await store.open()
        try:
            return [item async for item in store.list_items()]
        finally:
            await store.close()

    [item] = asyncio.run(scenario())
    assert (item.title, item.warnings) == ("Old item", ())
    applied = [row[0] for row in sqlite3.connect(path).execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == sorted(name for name, _ in sqlite_store.MIGRATIONS)
    assert applied[:2] == ["m001_initial", "m002_item_warnings"]
