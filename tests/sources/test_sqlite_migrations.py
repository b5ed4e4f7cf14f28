"""A Sources file written before a migration opens with it applied and its rows intact."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from knowledge_pipeline.models import NewItem, SourceType
from knowledge_pipeline.sources.sqlite import MIGRATIONS, SqliteStore


def test_a_file_from_the_first_schema_gets_every_later_column_and_keeps_its_items(tmp_path: Path) -> None:
    path = tmp_path / "sources.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    dict(MIGRATIONS)["m001_initial"](db)
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', '2024-01-01T00:00:00+00:00')")
    db.execute("INSERT INTO items (id, title, status, source_type, url, hash, added_at, updated_at) VALUES "
               "('old', 'Old article', 'Inbox', 'RSS', 'https://example.com/a', 'h-old', 'x', 'x')")
    db.close()

    async def scenario() -> list:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.add(NewItem(title="Issue 1", source_type=SourceType.EMAIL, hash="h-mail",
                                    content="text", sender="News <news@example.com>"))
            return [item async for item in store.list_items()]
        finally:
            await store.close()

    items = asyncio.run(scenario())
    assert [(i.title, i.sender, i.warnings) for i in items] == [
        ("Old article", None, ()), ("Issue 1", "News <news@example.com>", ())]
    names = [row[0] for row in sqlite3.connect(path).execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == sorted(name for name, _ in MIGRATIONS)
