"""Keep what was fetched: extracted texts in a bounded local cache, least recently used out first.

An item captured in one run is often enriched in another (an outage, the
budget, ``--retry-failed``, a re-enrichment), and the Notion backend cannot
keep a feed's full text between runs without a request per item. The cache
keeps each item's extracted text, keyed by the item's hash, compressed, in a
small SQLite file (``CACHE_PATH``) capped at ``CACHE_MAX_MB``; every backend
uses it. A damaged or unreadable entry is a miss, never an error.
"""

from __future__ import annotations

import sqlite3
import time
import zlib
from pathlib import Path

from .sqlite_files import StateFile, transaction


class TextCache(StateFile):
    what = "the text cache"

    def __init__(self, path: Path, *, max_bytes: int, clock=time.time) -> None:
        super().__init__(path)
        self.max_bytes = max_bytes
        self._clock = clock

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute(
            """CREATE TABLE IF NOT EXISTS texts (
                   key TEXT PRIMARY KEY, data BLOB NOT NULL, size INTEGER NOT NULL, used_at REAL NOT NULL)"""
        )
        db.execute("CREATE INDEX IF NOT EXISTS texts_used ON texts(used_at)")

    @property
    def enabled(self) -> bool:
        return self._db is not None and self.max_bytes > 0

    def get(self, key: str | None) -> str | None:
        if not key or not self.enabled:
            return None
        try:
            row = self._db.execute("SELECT data FROM texts WHERE key = ?", (key,)).fetchone()  # type: ignore[union-attr]
            if row is None:
                return None
            text = zlib.decompress(row[0]).decode("utf-8")
            self._db.execute("UPDATE texts SET used_at = ? WHERE key = ?", (self._clock(), key))  # type: ignore[union-attr]
        except (sqlite3.Error, zlib.error, UnicodeDecodeError):
            return None
        return text

    def put(self, key: str | None, text: str) -> None:
        """Keep ``text`` under ``key``; a text larger than the whole cache is not kept."""
        if not key or not self.enabled or not text:
            return
        data = zlib.compress(text.encode("utf-8"), 6)
        if len(data) > self.max_bytes:
            return
        db = self._db
        assert db is not None
        try:
            with transaction(db):
                db.execute(
                    "INSERT INTO texts (key, data, size, used_at) VALUES (?,?,?,?) ON CONFLICT(key) DO UPDATE"
                    " SET data=excluded.data, size=excluded.size, used_at=excluded.used_at",
                    (key, data, len(data), self._clock()),
                )
                self._evict(db)
        except sqlite3.Error:  # a cache that cannot keep a text is a miss next time, never an error
            pass

    def _evict(self, db: sqlite3.Connection) -> None:
        total = int(db.execute("SELECT COALESCE(SUM(size), 0) FROM texts").fetchone()[0])
        if total <= self.max_bytes:
            return
        excess = total - self.max_bytes
        doomed: list[str] = []
        for key, size in db.execute("SELECT key, size FROM texts ORDER BY used_at, key"):
            doomed.append(key)
            excess -= size
            if excess <= 0:
                break
        db.executemany("DELETE FROM texts WHERE key = ?", [(k,) for k in doomed])

    def size_bytes(self) -> int:
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM texts").fetchone()[0])

    def __contains__(self, key: str) -> bool:
        return self._db is not None and self._db.execute("SELECT 1 FROM texts WHERE key = ?", (key,)).fetchone() is not None
