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

In enrich-first mode (``CAPTURE_MODE``) a new item has no page yet: capture
records it here as *pending* (its row holds the captured item, under the
stand-in id ``new:<hash>``) before it is queued, and the same steps follow.
Creating its page is the commit point; a row still ``writing`` after a crash
means the create may have landed, so the next run looks the page up by hash
before creating it. A pending item that fails keeps its row (enrichment and
all) under the id of the Failed page created for it, like any failed item.

A lock file beside the journal (``flock``) keeps two enrich processes from
working at the same time, whether started by cron or by hand.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Iterator

from .errors import LockHeldError, StoreError
from .models import Enrichment, Item, NewItem, SourceType, pending_item
from .sqlite_files import StateFile, connect_readonly, now_stamp, transaction

PENDING_PAGE = 100


@dataclass(frozen=True)
class JournalEntry:
    item_id: str
    enrichment: Enrichment | None
    writing: bool


class Journal(StateFile):
    what = "journal"

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute(
            """CREATE TABLE IF NOT EXISTS steps (
                   item_id TEXT PRIMARY KEY,
                   enrichment TEXT,
                   writing INTEGER NOT NULL DEFAULT 0,
                   updated_at TEXT NOT NULL)"""
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(steps)")}
        for column in ("item", "hash", "checked_at"):  # issue 15: pending items (enrich-first); interrupted writes
            if column not in columns:
                db.execute(f"ALTER TABLE steps ADD COLUMN {column} TEXT")
        db.execute("CREATE INDEX IF NOT EXISTS steps_pending ON steps(hash) WHERE item IS NOT NULL")

    def get(self, item_id: str) -> JournalEntry | None:
        row = self.db.execute("SELECT enrichment, writing FROM steps WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            return None
        return JournalEntry(item_id, _enrichment(row[0]), bool(row[1]))

    def record_enrichment(self, item_id: str, enrichment: Enrichment) -> None:
        self.db.execute(
            """INSERT INTO steps (item_id, enrichment, writing, updated_at) VALUES (?, ?, 0, ?)
               ON CONFLICT(item_id) DO UPDATE SET enrichment=excluded.enrichment, updated_at=excluded.updated_at,
                                                  checked_at=NULL""",
            (item_id, json.dumps(enrichment.to_dict()), now_stamp()),
        )

    def mark_writing(self, item_id: str) -> None:
        self.db.execute(
            """INSERT INTO steps (item_id, writing, updated_at) VALUES (?, 1, ?)
               ON CONFLICT(item_id) DO UPDATE SET writing=1, updated_at=excluded.updated_at, checked_at=NULL""",
            (item_id, now_stamp()),
        )

    def mark_written(self, item_id: str) -> None:
        self.db.execute("DELETE FROM steps WHERE item_id = ?", (item_id,))

    def interrupted_writes(self, limit: int) -> list[str]:
        """Store items whose write was begun and never confirmed here (a kill between the two), not yet looked
        at since (see :meth:`looked_at`)."""
        rows = self.db.execute(
            "SELECT item_id FROM steps WHERE writing = 1 AND item IS NULL AND checked_at IS NULL LIMIT ?", (limit,))
        return [row[0] for row in rows]

    def looked_at(self, item_id: str) -> None:
        """The store still needs this row (the item is Failed or in the Inbox): not read back again until the
        row changes, so a Failed item waiting for ``--retry-failed`` costs no request per run."""
        self.db.execute("UPDATE steps SET checked_at = ? WHERE item_id = ?", (now_stamp(), item_id))

    def pending(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM steps").fetchone()[0])

    # -- enrich-first: items captured but not in the store yet ------------------------

    def add_pending(self, new: NewItem) -> Item:
        """Record a captured item before anything else happens to it; its stand-in Item."""
        item = pending_item(new)
        self.db.execute(
            "INSERT OR IGNORE INTO steps (item_id, writing, updated_at, item, hash) VALUES (?, 0, ?, ?, ?)",
            (item.id, now_stamp(), json.dumps(_new_item_dict(new), ensure_ascii=False), new.hash),
        )
        return item

    def pending_hashes(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT hash FROM steps WHERE item IS NOT NULL")}

    def count_pending(self, source_types: frozenset[SourceType] | None = None) -> int:
        return sum(1 for _ in self.pending_items(source_types))

    def pending_items(self, source_types: frozenset[SourceType] | None = None) -> Iterator[Item]:
        """The pending items (of these types), oldest first, read 100 rows at a time."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT rowid, item FROM steps WHERE item IS NOT NULL AND rowid > ? ORDER BY rowid LIMIT ?",
                (last, PENDING_PAGE),
            ).fetchall()
            for rowid, data in rows:
                new = _new_item(data)
                if new is None:  # unreadable (another version wrote it): capture finds the item again
                    self.db.execute("DELETE FROM steps WHERE rowid = ?", (rowid,))
                elif not source_types or new.source_type in source_types:
                    yield pending_item(new)
            if len(rows) < PENDING_PAGE:
                return
            last = rows[-1][0]

    def settle(self, item_id: str, page_id: str) -> None:
        """A pending item's page now exists, Failed: a paid enrichment stays, under the page's id
        (``--retry-failed`` then neither pays again nor skips the repair); a row without one goes."""
        with transaction(self.db) as db:
            db.execute("DELETE FROM steps WHERE item_id = ? OR (item_id = ? AND enrichment IS NULL)",
                       (page_id, item_id))
            db.execute("UPDATE steps SET item_id = ?, item = NULL, hash = NULL, updated_at = ? WHERE item_id = ?",
                       (page_id, now_stamp(), item_id))


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


def pending_read_only(path: Path, source_types: frozenset[SourceType] | None = None, limit: int = 1000) -> list[Item]:
    """The pending items of the journal at ``path`` without writing anything (a dry run); [] when there is none."""
    items: list[Item] = []
    try:
        db = connect_readonly(path)
        if db is None:
            return []
        try:
            for (data,) in db.execute("SELECT item FROM steps WHERE item IS NOT NULL ORDER BY rowid"):
                new = _new_item(data)
                if new is not None and (not source_types or new.source_type in source_types):
                    items.append(pending_item(new))
                    if len(items) == limit:
                        break
        finally:
            db.close()
    except sqlite3.Error:  # no such table or column yet: nothing pending
        return []
    return items


def _new_item_dict(new: NewItem) -> dict:
    data = dataclasses.asdict(new)
    data["source_type"] = new.source_type.value
    data["created_date"] = new.created_date.isoformat() if new.created_date else None
    return data


def _new_item(kept: str) -> NewItem | None:
    """The captured item of a pending row; None when it cannot be read back (another version's layout)."""
    try:
        data = json.loads(kept)
        data["source_type"] = SourceType(data["source_type"])
        data["created_date"] = date.fromisoformat(data["created_date"]) if data.get("created_date") else None
        return NewItem(**data)
    except (ValueError, TypeError, KeyError):
        return None


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
