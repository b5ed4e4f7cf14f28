"""The SQLite store's schema changes: named migrations applied to an existing file, data kept."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

from knowledge_pipeline.models import NewItem, SourceType
from knowledge_pipeline.sources.sqlite import MIGRATIONS, SqliteStore
from knowledge_pipeline.sqlite_schema import apply_migrations


def test_a_store_from_before_categories_is_migrated_and_keeps_its_items(tmp_path):
    path = tmp_path / "sources.db"
    db = sqlite3.connect(path, isolation_level=None)
    apply_migrations(db, MIGRATIONS[:1])
    db.execute(
        "INSERT INTO items (id, title, status, source_type, hash, added_at, updated_at) VALUES (?,?,?,?,?,?,?)",
        (uuid.uuid4().hex, "Old item", "Inbox", "RSS", "h1", "2026-01-01", "2026-01-01"),
    )
    db.close()

    async def run() -> list:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.add(NewItem(title="New", source_type=SourceType.RSS, hash="h2", url="https://e.com/n",
                                    category="Chips"))
            return [(item.title, item.category) async for item in store.list_items()]
        finally:
            await store.close()

    assert asyncio.run(run()) == [("Old item", None), ("New", "Chips")]
    names = [row[0] for row in sqlite3.connect(path).execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert names[-2:] == ["m007_feed_category", "m008_store_id"]
