"""The local record of OpenAI batches: a small SQLite file next to the journal.

Every step of a submission is written here *before* the remote action it
prepares, so a run killed at any point leaves enough to finish the job
without losing a batch or submitting one twice:

``collecting``  lines are being added; nothing exists remotely yet (a killed
                run's collecting batch is simply discarded: its items are free)
``uploading``   the JSONL upload may have happened: look for the file by its
                name (``<local id>.jsonl``) before uploading again
``uploaded``    the file exists; the batch may have been created: look for a
                batch whose ``metadata.kp_batch`` is the local id before
                creating it
``submitted``   the batch exists remotely; every run polls it
``finished``    its results were collected (or it failed); kept for the
                ``batches`` command

Items have a row while the Batch API path owns them: ``in_batch`` (held: never
enriched directly), ``ready`` (the answer is in the journal, waiting to be
written), ``next`` (a long document's map step is done; its summaries wait
for the reduce step) and ``retry`` (its line failed: enrich it directly).
The row keeps the item's extracted text (zlib), so the write and the next
step need no second fetch.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
import zlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Collection, Iterator

from ..sqlite_files import StateFile, now_stamp, stamp, transaction

COLLECTING, UPLOADING, UPLOADED, SUBMITTED, FINISHED = "collecting", "uploading", "uploaded", "submitted", "finished"
OPEN_STATES = (UPLOADING, UPLOADED, SUBMITTED)
IN_BATCH, READY, NEXT, RETRY = "in_batch", "ready", "next", "retry"
FORGET_AFTER = timedelta(days=30)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS batches (
        local_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        model TEXT NOT NULL,
        remote_id TEXT,
        remote_status TEXT,
        input_file_id TEXT,
        output_file_id TEXT,
        error_file_id TEXT,
        requests INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0,
        completed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        items_enriched INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL,
        error TEXT,
        created_at TEXT NOT NULL,
        submitted_at TEXT,
        finished_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS lines (
        local_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        custom_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (local_id, position))""",
    """CREATE TABLE IF NOT EXISTS items (
        item_id TEXT PRIMARY KEY,
        source_type TEXT,
        status TEXT NOT NULL,
        local_id TEXT,
        phase TEXT,
        text BLOB NOT NULL,
        extra TEXT,
        parts TEXT,
        chunks INTEGER NOT NULL DEFAULT 1,
        failures INTEGER NOT NULL DEFAULT 0,  -- no longer written or read; kept for files of earlier versions
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS items_batch ON items(local_id)",
    "CREATE INDEX IF NOT EXISTS lines_item ON lines(local_id, item_id, position)",  # one item's lines at collection
)


@dataclass(frozen=True)
class BatchRecord:
    local_id: str
    state: str
    model: str
    remote_id: str | None
    remote_status: str | None
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    requests: int
    bytes: int
    items: int
    completed: int
    failed: int
    items_enriched: int
    cost_usd: float | None
    error: str | None
    created_at: str
    submitted_at: str | None
    finished_at: str | None

    @property
    def filename(self) -> str:
        return f"{self.local_id}.jsonl"


@dataclass(frozen=True)
class ItemRecord:
    """``extra``: what extraction found besides the text (``title``, ``warnings`` as PartialRead fields)."""

    item_id: str
    status: str
    local_id: str | None
    phase: str | None
    text: str
    extra: dict[str, Any]
    parts: list[str] | None
    chunks: int


def state_path(journal_path: Path) -> Path:
    """``data/journal.db`` -> ``data/journal.batches.db``."""
    return journal_path.with_name(journal_path.stem + ".batches.db")


class BatchState(StateFile):
    what = "the batch state"

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.row_factory = sqlite3.Row
        for statement in _SCHEMA:
            db.execute(statement)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    # --- batches -------------------------------------------------------------------------

    def new_batch(self, model: str) -> str:
        local_id = "kp-" + uuid.uuid4().hex[:20]
        self.db.execute("INSERT INTO batches (local_id, state, model, created_at) VALUES (?, ?, ?, ?)",
                        (local_id, COLLECTING, model, now_stamp()))
        return local_id

    def batch(self, local_id: str) -> BatchRecord | None:
        row = self.db.execute("SELECT * FROM batches WHERE local_id = ?", (local_id,)).fetchone()
        return _batch(row) if row else None

    def find(self, some_id: str) -> BatchRecord | None:
        """A batch by its local id or its OpenAI id."""
        row = self.db.execute("SELECT * FROM batches WHERE local_id = ? OR remote_id = ?", (some_id, some_id)).fetchone()
        return _batch(row) if row else None

    def batches(self, *states: str) -> list[BatchRecord]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self.db.execute(f"SELECT * FROM batches WHERE state IN ({marks}) ORDER BY created_at", states)
        else:
            rows = self.db.execute("SELECT * FROM batches ORDER BY created_at DESC")
        return [_batch(row) for row in rows]

    def update(self, local_id: str, **fields: Any) -> None:
        if not fields:
            return
        names = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(f"UPDATE batches SET {names} WHERE local_id = ?", (*fields.values(), local_id))

    def lines(self, local_id: str) -> Iterator[str]:
        """The JSONL lines of a batch, in order, read page by page."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT position, body FROM lines WHERE local_id = ? AND position > ? ORDER BY position LIMIT 500",
                (local_id, last)).fetchall()
            for row in rows:
                yield row["body"]
            if len(rows) < 500:
                return
            last = rows[-1]["position"]

    def line_items(self, local_id: str) -> list[str]:
        """The items that have lines in a batch, in the order of their first line."""
        rows = self.db.execute("SELECT item_id FROM lines WHERE local_id = ? GROUP BY item_id ORDER BY MIN(position)",
                               (local_id,))
        return [row[0] for row in rows]

    def item_lines(self, local_id: str, item_id: str) -> list[tuple[str, str]]:
        """One item's (custom_id, JSONL line) in a batch, in order."""
        rows = self.db.execute("SELECT custom_id, body FROM lines WHERE local_id = ? AND item_id = ? ORDER BY position",
                               (local_id, item_id))
        return [(row[0], row[1]) for row in rows]

    def item_ids(self, local_id: str) -> list[str]:
        """The items a batch holds."""
        rows = self.db.execute("SELECT item_id FROM items WHERE local_id = ? ORDER BY item_id", (local_id,))
        return [row[0] for row in rows]

    def add_item(
        self, local_id: str, item_id: str, lines: list[tuple[str, str]], text: str, *, phase: str,
        parts: list[str] | None, chunks: int, extra: dict[str, Any] | None = None, source_type: str | None = None,
    ) -> None:
        """Put one item's request lines into a collecting batch, atomically."""
        size = sum(len(body.encode("utf-8")) + 1 for _, body in lines)
        with self._transaction() as db:
            start = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM lines WHERE local_id = ?",
                               (local_id,)).fetchone()[0]
            db.executemany("INSERT INTO lines (local_id, position, custom_id, item_id, body) VALUES (?, ?, ?, ?, ?)",
                           [(local_id, start + n, custom_id, item_id, body) for n, (custom_id, body) in enumerate(lines)])
            db.execute("UPDATE batches SET requests = requests + ?, bytes = bytes + ?, items = items + 1 "
                       "WHERE local_id = ?", (len(lines), size, local_id))
            db.execute(
                """INSERT INTO items (item_id, source_type, status, local_id, phase, text, extra, parts, chunks,
                   updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(item_id) DO UPDATE SET status=excluded.status, local_id=excluded.local_id,
                   phase=excluded.phase, text=excluded.text, extra=COALESCE(excluded.extra, extra),
                   parts=excluded.parts, chunks=excluded.chunks, updated_at=excluded.updated_at""",
                (item_id, source_type, IN_BATCH, local_id, phase, _pack(text), _json(extra), _json(parts), chunks,
                 now_stamp()),
            )

    def discard(self, local_id: str) -> int:
        """Drop a batch that never reached OpenAI; its items are free again (map summaries kept). Returns items."""
        with self._transaction() as db:
            items = db.execute("SELECT COUNT(*) FROM items WHERE local_id = ?", (local_id,)).fetchone()[0]
            db.execute("UPDATE items SET status = ?, local_id = NULL, updated_at = ? WHERE local_id = ? "
                       "AND parts IS NOT NULL", (NEXT, now_stamp(), local_id))
            db.execute("DELETE FROM items WHERE local_id = ?", (local_id,))
            db.execute("DELETE FROM lines WHERE local_id = ?", (local_id,))
            db.execute("DELETE FROM batches WHERE local_id = ?", (local_id,))
        return int(items)

    def finish(self, local_id: str, outcomes: dict[str, tuple[str, list[str] | None]], **fields: Any) -> None:
        """Record a collected batch: each item's new status (and summaries), the batch finished, in one transaction."""
        with self._transaction() as db:
            for item_id, (status, parts) in outcomes.items():
                db.execute(
                    "UPDATE items SET status = ?, local_id = NULL, parts = COALESCE(?, parts), "
                    "updated_at = ? WHERE item_id = ? AND local_id = ?",
                    (status, _json(parts), now_stamp(), item_id, local_id),
                )
            db.execute("DELETE FROM lines WHERE local_id = ?", (local_id,))
            names = ", ".join(f"{name} = ?" for name in ("state", "finished_at", *fields))
            db.execute(f"UPDATE batches SET {names} WHERE local_id = ?",
                       (FINISHED, now_stamp(), *fields.values(), local_id))

    # --- items -----------------------------------------------------------------------------

    def item(self, item_id: str) -> ItemRecord | None:
        row = self.db.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            return None
        return ItemRecord(row["item_id"], row["status"], row["local_id"], row["phase"], _unpack(row["text"]),
                          json.loads(row["extra"]) if row["extra"] else {},
                          json.loads(row["parts"]) if row["parts"] else None, row["chunks"])

    def held(self, source_types: Collection[str] | None = None) -> set[str]:
        """Items in a batch not yet collected (of these Source Types): never enriched directly."""
        rows = self.db.execute("SELECT item_id, source_type FROM items WHERE status = ?", (IN_BATCH,))
        return {row[0] for row in rows if not source_types or row[1] in source_types}

    def forget(self, item_id: str) -> None:
        """The item was written (or no longer needs the batch path): drop its row, unless a batch holds it."""
        self.db.execute("DELETE FROM items WHERE item_id = ? AND status != ?", (item_id, IN_BATCH))

    def forget_stale(self) -> int:
        """Rows of items written elsewhere long ago (a kill between the write and its event)."""
        cutoff = stamp(datetime.now(timezone.utc) - FORGET_AFTER)
        cursor = self.db.execute("DELETE FROM items WHERE status != ? AND updated_at < ?", (IN_BATCH, cutoff))
        return cursor.rowcount


def _batch(row: sqlite3.Row) -> BatchRecord:
    return BatchRecord(**{key: row[key] for key in row.keys()})


def _pack(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 6)


def _unpack(blob: bytes) -> str:
    return zlib.decompress(blob).decode("utf-8")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)
