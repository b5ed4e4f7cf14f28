"""The pipeline's own SQLite files (the Sources store, the journal, the state files): private, read-only when asked."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

from knowledge_pipeline.batches.state import BatchState
from knowledge_pipeline.dedup import FingerprintIndex
from knowledge_pipeline.errors import StoreError
from knowledge_pipeline.feeds.state import FeedStateStore
from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import NewItem, SourceType
from knowledge_pipeline.sources.sqlite import MIGRATIONS, SqliteStore
from knowledge_pipeline.sqlite_files import StateFile, connect, transaction
from knowledge_pipeline.text_cache import TextCache

STATE_FILES: dict[str, Callable[[Path], StateFile]] = {
    "journal": Journal,
    "text cache": lambda path: TextCache(path, max_bytes=1000),
    "dedup state": FingerprintIndex,
    "batch state": BatchState,
    "feed state": FeedStateStore,
}


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


@pytest.mark.parametrize("kind", STATE_FILES)
def test_every_state_file_is_created_private_and_an_existing_readable_one_is_made_private(tmp_path: Path, kind: str):
    path = tmp_path / "data" / "state.db"
    previous = os.umask(0o022)
    try:
        with STATE_FILES[kind](path):
            pass
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        path.chmod(0o644)
        with STATE_FILES[kind](path):
            pass
    finally:
        os.umask(previous)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("kind", STATE_FILES)
def test_a_state_file_that_cannot_be_opened_is_one_store_error_naming_it(tmp_path: Path, kind: str):
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database, " * 256)
    with pytest.raises(StoreError, match=rf"^cannot open .+ {re.escape(str(path))}: "):
        STATE_FILES[kind](path).open()


@pytest.mark.parametrize("error", [RuntimeError, asyncio.CancelledError])
def test_a_transaction_is_rolled_back_on_any_error_and_the_connection_goes_on(tmp_path: Path, error: type):
    db = connect(tmp_path / "t.db")
    db.execute("CREATE TABLE t (x)")
    with pytest.raises(error):
        with transaction(db):
            db.execute("INSERT INTO t VALUES (1)")
            raise error()
    with transaction(db):
        db.execute("INSERT INTO t VALUES (2)")
    assert db.execute("SELECT x FROM t").fetchall() == [(2,)]
    db.close()
