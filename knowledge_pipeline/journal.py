"""The step journal: what makes a re-run after a crash exactly-once.

Writing an enrichment to Notion takes several requests (append the body, then
update the properties with Status Enriched last). A run killed between them
would leave a body without a status, and a naive re-run would append a second
body. The journal, a small SQLite file beside the store, records for each
item the steps already done, and is consulted before each side effect:

* ``enriched``: the enrichment result is saved, so a re-run does not pay the
  LLM again;
* ``writing``: a write to the store has started; a re-run asks the store to
  *repair* (remove any partial body) before writing again;
* ``written``: the store confirmed the write (the item is no longer in the
  Inbox, so it is not picked up again); the row is then deleted.

A lock file beside the journal (``flock``) keeps two enrich processes from
working at the same time, whether started by cron or by hand.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from .errors import LockHeldError, StoreError
from .models import Enrichment
from .sqlite_files import connect


@dataclass(frozen=True)
class JournalEntry:
    item_id: str
    enrichment: Enrichment | None
    writing: bool


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        try:
            db = connect(self.path)
            db.execute(
                """CREATE TABLE IF NOT EXISTS steps (
                       item_id TEXT PRIMARY KEY,
                       enrichment TEXT,
                       writing INTEGER NOT NULL DEFAULT 0,
                       updated_at TEXT NOT NULL)"""
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open journal {self.path}: {exc}") from exc
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the journal is not open")
        return self._db

    def get(self, item_id: str) -> JournalEntry | None:
        row = self.db.execute("SELECT enrichment, writing FROM steps WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            return None
        return JournalEntry(item_id, _enrichment(row[0]), bool(row[1]))

    def record_enrichment(self, item_id: str, enrichment: Enrichment) -> None:
        self.db.execute(
            """INSERT INTO steps (item_id, enrichment, writing, updated_at) VALUES (?, ?, 0, ?)
               ON CONFLICT(item_id) DO UPDATE SET enrichment=excluded.enrichment, updated_at=excluded.updated_at""",
            (item_id, json.dumps(enrichment.to_dict()), _now()),
        )

    def mark_writing(self, item_id: str) -> None:
        self.db.execute(
            """INSERT INTO steps (item_id, writing, updated_at) VALUES (?, 1, ?)
               ON CONFLICT(item_id) DO UPDATE SET writing=1, updated_at=excluded.updated_at""",
            (item_id, _now()),
        )

    def mark_written(self, item_id: str) -> None:
        self.db.execute("DELETE FROM steps WHERE item_id = ?", (item_id,))

    def pending(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM steps").fetchone()[0])


def _enrichment(kept: str | None) -> Enrichment | None:
    """The kept enrichment, or None when it cannot be read back (another version's layout, damage).

    The item is then enriched again; the ``writing`` flag still holds, so a
    partial body is still repaired.
    """
    if not kept:
        return None
    try:
        return Enrichment.from_dict(json.loads(kept))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunLock:
    """An exclusive ``flock`` on a file; released when the process ends, even by kill -9."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")
        except OSError as exc:
            raise StoreError(f"cannot take the run lock {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise LockHeldError(
                f"another enrichment run is active (lock {self.path}{', held by ' + holder if holder else ''})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
