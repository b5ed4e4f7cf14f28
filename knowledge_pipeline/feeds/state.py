"""Each feed's state and health in a small local SQLite file (``FEED_STATE_PATH``).

It is kept for every Sources backend, also with Notion, because it is
consulted for every feed on every run: the validators of the last download
(``ETag``, ``Last-Modified``, the body's hash), the error counter and the
time of the next attempt, the automatic pause, and a short history of new
items. Hosts that asked to be left alone (``Retry-After``) are remembered
here too, so the next cron run respects them.

Text that reaches the file (a feed's URL, its last error) passes through the
log redactor first, so a secret in a feed URL is never written to disk.

The validators are tied to the Sources store they were recorded for: when
the run writes to another store (SQLite to Notion, another database, a
deleted and recreated SQLite file), they are dropped once so every feed is
read in full into the new store.

Times are ISO 8601 strings in UTC.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

from ..logging_setup import Redactor
from ..sqlite_files import StateFile, connect, connect_readonly, transaction
from ..sqlite_schema import Migration, apply_migrations, execute_script

HISTORY_DAYS = 35


def _m001_feed_state(db: sqlite3.Connection) -> None:
    execute_script(
        db,
        """
        CREATE TABLE feeds (
            url TEXT PRIMARY KEY,
            fetch_url TEXT,
            title TEXT,
            etag TEXT,
            last_modified TEXT,
            last_hash TEXT,
            first_seen TEXT NOT NULL,
            last_attempt TEXT,
            last_success TEXT,
            last_status TEXT,
            last_error TEXT,
            last_error_kind TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT,
            paused INTEGER NOT NULL DEFAULT 0,
            entries_seen INTEGER NOT NULL DEFAULT 0,
            newest_entry TEXT,
            entries_per_day REAL,
            last_new_item TEXT
        );
        CREATE TABLE new_items (
            url TEXT NOT NULL,
            at TEXT NOT NULL,
            count INTEGER NOT NULL
        );
        CREATE INDEX new_items_url ON new_items(url, at);
        CREATE TABLE hosts (
            host TEXT PRIMARY KEY,
            paused_until TEXT NOT NULL,
            reason TEXT
        );
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )
        """,
    )


MIGRATIONS: list[Migration] = [("m001_feed_state", _m001_feed_state)]


@dataclass(frozen=True)
class FeedState:
    """One feed's row. ``url`` is the feed's key; ``fetch_url`` where it answers now, if it moved."""

    url: str
    first_seen: datetime
    fetch_url: str | None = None
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_hash: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    consecutive_errors: int = 0
    next_attempt: datetime | None = None
    paused: bool = False
    entries_seen: int = 0
    newest_entry: datetime | None = None
    entries_per_day: float | None = None
    last_new_item: datetime | None = None


_TIMES = {f.name for f in fields(FeedState) if "datetime" in str(f.type)}


@dataclass(frozen=True)
class Success:
    """What a successful poll learnt. ``changed`` is False for a 304 or an unchanged body."""

    changed: bool
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    entries: int = 0
    newest_entry: datetime | None = None
    entries_per_day: float | None = None
    new_items: int = 0
    keep_validators: bool = True


class FeedStateStore(StateFile):
    """The state file; ``read_only`` (dry runs) never creates or changes it."""

    what = "the feed state file"

    def __init__(self, path: Path, *, read_only: bool = False, secrets: Iterable[str] = ()) -> None:
        super().__init__(path)
        self.read_only = read_only
        self._redact = Redactor(secrets)

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            db = connect(self.path)
            db.execute("PRAGMA synchronous=NORMAL")
            return db
        db = sqlite3.connect(":memory:", isolation_level=None)  # a copy: never creates or changes the file
        source = connect_readonly(self.path)
        if source is not None:
            source.backup(db)
            source.close()
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.row_factory = sqlite3.Row
        apply_migrations(db, MIGRATIONS)

    # -- reading --------------------------------------------------------------

    def key(self, url: str) -> str:
        """How ``url`` is stored: redacted."""
        return self._redact(url)

    def get(self, url: str) -> FeedState | None:
        row = self.db.execute("SELECT * FROM feeds WHERE url = ?", (self.key(url),)).fetchone()
        return None if row is None else _state(row)

    def all(self) -> dict[str, FeedState]:
        return {row["url"]: _state(row) for row in self.db.execute("SELECT * FROM feeds")}

    def new_items_since(self, url: str, since: datetime) -> int:
        row = self.db.execute(
            "SELECT COALESCE(SUM(count), 0) FROM new_items WHERE url = ? AND at >= ?", (self.key(url), _text(since))
        ).fetchone()
        return int(row[0])

    def host_pauses(self, now: datetime) -> dict[str, datetime]:
        """Hosts still paused at ``now``, with the time their pause ends."""
        rows = self.db.execute("SELECT host, paused_until FROM hosts WHERE paused_until > ?", (_text(now),))
        return {row["host"]: _time(row["paused_until"]) for row in rows}  # type: ignore[misc]

    # -- writing ----------------------------------------------------------------

    def bind_store(self, identity: str) -> bool:
        """Tie the validators to the Sources store ``identity``; True if they were dropped for a new store."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'store'").fetchone()
        if row is not None and row[0] == identity:
            return False
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('store', ?)", (identity,))
            if row is not None:
                self.db.execute("UPDATE feeds SET etag = NULL, last_modified = NULL, last_hash = NULL")
        return row is not None

    def record_success(self, url: str, result: Success, now: datetime) -> FeedState:
        with self._transaction():
            self._ensure(url, now)
            assignments = {
                "last_attempt": now,
                "last_success": now,
                "last_status": "ok" if result.changed else "not_modified",
                "last_error": None,
                "last_error_kind": None,
                "consecutive_errors": 0,
                "next_attempt": None,
                "paused": 0,
            }
            if result.changed:
                assignments.update(entries_seen=result.entries)
                if result.title:
                    assignments["title"] = result.title
                if result.newest_entry is not None:
                    assignments["newest_entry"] = result.newest_entry
                if result.entries_per_day is not None:
                    assignments["entries_per_day"] = result.entries_per_day
            if result.keep_validators:
                if result.etag is not None or result.changed:
                    assignments["etag"] = result.etag
                if result.last_modified is not None or result.changed:
                    assignments["last_modified"] = result.last_modified
                if result.body_hash is not None:
                    assignments["last_hash"] = result.body_hash
            else:
                assignments.update(etag=None, last_modified=None, last_hash=None)
            if result.new_items:
                assignments["last_new_item"] = now
                self.db.execute(
                    "INSERT INTO new_items (url, at, count) VALUES (?, ?, ?)",
                    (self.key(url), _text(now), result.new_items),
                )
            self._update(url, assignments)
            self.db.execute("DELETE FROM new_items WHERE at < ?", (_text(now - timedelta(days=HISTORY_DAYS)),))
        return self.get(url)  # type: ignore[return-value]

    def record_failure(
        self, url: str, *, error: str, kind: str, next_attempt: datetime, pause_after: int, now: datetime
    ) -> tuple[FeedState, bool]:
        """Count one more failure; returns the new state and whether this failure paused the feed."""
        with self._transaction():
            before = self._ensure(url, now)
            errors = before.consecutive_errors + 1
            pausing = errors >= pause_after and not before.paused
            self._update(
                url,
                {
                    "last_attempt": now,
                    "last_status": "failing",
                    "last_error": error,
                    "last_error_kind": kind,
                    "consecutive_errors": errors,
                    "next_attempt": next_attempt,
                    "paused": 1 if (pausing or before.paused) else 0,
                },
            )
        return self.get(url), pausing  # type: ignore[return-value]

    def moved(self, url: str, fetch_url: str | None, now: datetime) -> None:
        """The feed now answers at ``fetch_url`` (None: at its own URL again)."""
        with self._transaction():
            self._ensure(url, now)
            self._update(url, {"fetch_url": fetch_url})

    def rename(self, old: str, new: str) -> None:
        """The feed's key changed (its URL was updated in the feed list); keep its state and history."""
        old, new = self.key(old), self.key(new)
        with self._transaction():
            if self.db.execute("SELECT 1 FROM feeds WHERE url = ?", (new,)).fetchone():
                self.db.execute("DELETE FROM feeds WHERE url = ?", (old,))
            else:
                self.db.execute("UPDATE feeds SET url = ?, fetch_url = NULL WHERE url = ?", (new, old))
            self.db.execute("UPDATE new_items SET url = ? WHERE url = ?", (new, old))

    def resume(self, url: str) -> bool:
        """Clear the automatic pause and the back-off; False if the feed has no state yet."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE feeds SET paused = 0, consecutive_errors = 0, next_attempt = NULL WHERE url = ?",
                (self.key(url),),
            )
        return cursor.rowcount > 0

    def forget(self, url: str) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM feeds WHERE url = ?", (self.key(url),))
            self.db.execute("DELETE FROM new_items WHERE url = ?", (self.key(url),))

    def pause_host(self, host: str, until: datetime, reason: str) -> None:
        with self._transaction():
            self.db.execute(
                """INSERT INTO hosts (host, paused_until, reason) VALUES (?, ?, ?)
                   ON CONFLICT(host) DO UPDATE SET paused_until = MAX(paused_until, excluded.paused_until),
                   reason = excluded.reason""",
                (host, _text(until), reason),
            )

    # -- internals ---------------------------------------------------------------

    def _ensure(self, url: str, now: datetime) -> FeedState:
        self.db.execute("INSERT OR IGNORE INTO feeds (url, first_seen) VALUES (?, ?)", (self.key(url), _text(now)))
        return self.get(url)  # type: ignore[return-value]

    def _update(self, url: str, values: dict[str, object]) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        params = [_text(v) if isinstance(v, datetime) else self._redact(v) if isinstance(v, str) else v
                  for v in values.values()]
        self.db.execute(f"UPDATE feeds SET {columns} WHERE url = ?", [*params, self.key(url)])

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)


def _state(row: sqlite3.Row) -> FeedState:
    values = {}
    for key in row.keys():
        value = row[key]
        values[key] = _time(value) if key in _TIMES else value
    values["paused"] = bool(values["paused"])
    return FeedState(**values)


def _text(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
