"""The pipeline's own SQLite files (the Sources store, the journal): private, and read-only when asked."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import NewItem, SourceType
from knowledge_pipeline.sources.sqlite import MIGRATIONS, SqliteStore


def modes(folder: Path) -> dict[str, str]:
    return {p.name: oct(p.stat().st_mode & 0o777) for p in sorted(folder.iterdir())}


def test_the_store_and_the_journal_are_created_private_with_their_wal_files(tmp_path: Path):
    """They hold full texts and paid answers: 0600 like the logs, whatever the umask lets through."""
    data = tmp_path / "data"

    async def main() -> dict[str, str]:
        store = SqliteStore(data / "sources.db")
        await store.open()
        journal = Journal(data / "journal.db")
        journal.open()
        try:
            await store.add(NewItem(title="t", source_type=SourceType.RSS, hash="h", url="https://example.com/"))
            journal.mark_writing("item")
            return modes(data)
        finally:
            journal.close()
            await store.close()

    previous = os.umask(0o022)
    try:
        seen = asyncio.run(main())
    finally:
        os.umask(previous)
    assert {"sources.db", "sources.db-wal", "sources.db-shm", "journal.db", "journal.db-wal"} <= set(seen)
    assert {name: mode for name, mode in seen.items() if mode != "0o600"} == {}


def test_an_existing_world_readable_store_is_made_private(tmp_path: Path):
    path = tmp_path / "sources.db"

    async def main() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(main())
    path.chmod(0o644)
    asyncio.run(main())
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_read_only_open_of_a_store_from_an_older_version_reads_it_without_migrating_the_file(tmp_path: Path):
    """A dry run or `list` right after an upgrade: the pending migrations run on a copy in memory."""
    path = tmp_path / "sources.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    first_name, first_migration = MIGRATIONS[0]
    first_migration(db)
    db.execute("INSERT INTO _migrations VALUES (?, '2025-01-01T00:00:00+00:00')", (first_name,))
    db.execute("INSERT INTO items (id, title, status, source_type, url, hash, added_at, updated_at) "
               "VALUES ('1', 'old', 'Inbox', 'RSS', 'https://example.com/', 'h', 'now', 'now')")
    db.commit()
    db.close()
    assert len(MIGRATIONS) > 1, "this test needs a migration after the first"
    before = path.read_bytes()

    async def read() -> list[str]:
        store = SqliteStore(path, read_only=True)
        await store.open()
        try:
            return [item.title async for item in store.list_items()]
        finally:
            await store.close()

    assert asyncio.run(read()) == ["old"]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.db"]
