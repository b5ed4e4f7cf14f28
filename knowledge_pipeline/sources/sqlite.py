"""The embedded Sources store: one SQLite file, WAL mode, every write in a transaction.

It mirrors the Notion Sources database column for column; the page body lives
in ``blocks`` (toggle title, position, text). Schema changes are append-only
named migrations applied when the file is opened.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Collection

from ..errors import ItemError, StoreError
from ..models import Enrichment, Item, NewItem, SourceType, Status, Taxonomy
from ..enrichers.analyses import body_lines
from ..sqlite_files import connect, connect_readonly
from ..sqlite_schema import Migration, apply_migrations, execute_script, has_table, pending_migrations
from .base import BODY_TOGGLES

PAGE_SIZE = 100


def _m001_initial(db: sqlite3.Connection) -> None:
    execute_script(
        db,
        """
        CREATE TABLE items (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            status TEXT NOT NULL,
            source_type TEXT NOT NULL,
            url TEXT,
            pdf_path TEXT,
            hash TEXT UNIQUE,
            content TEXT,
            created_date TEXT,
            summary TEXT,
            content_type TEXT,
            ai_primitives TEXT NOT NULL DEFAULT '[]',
            vendor TEXT,
            error TEXT,
            archived INTEGER NOT NULL DEFAULT 0,
            added_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX items_status ON items(status, source_type);
        CREATE TABLE blocks (
            item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            toggle TEXT NOT NULL,
            position INTEGER NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (item_id, toggle, position)
        );
        """
    )


def _m002_item_warnings(db: sqlite3.Connection) -> None:
    """Partial reads kept with the item (JSON list of one-line warnings), see processing.py."""
    db.execute("ALTER TABLE items ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]'")


def _m003_sender(db: sqlite3.Connection) -> None:
    """Email items carry their sender (issue 16)."""
    db.execute("ALTER TABLE items ADD COLUMN sender TEXT")


def _m004_feed_category(db: sqlite3.Connection) -> None:
    """The category of the feed an item came from (the feed list's kp:category)."""
    db.execute("ALTER TABLE items ADD COLUMN category TEXT")


def _m005_store_id(db: sqlite3.Connection) -> None:
    """A random id of this store file: a deleted and recreated store is another store (feed state)."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?)", (uuid.uuid4().hex,))


MIGRATIONS: list[Migration] = [
    ("m001_initial", _m001_initial),
    ("m002_item_warnings", _m002_item_warnings),
    ("m003_sender", _m003_sender),
    ("m004_feed_category", _m004_feed_category),
    ("m005_store_id", _m005_store_id),
]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _types_clause(source_types: Collection[SourceType] | None) -> tuple[str, list[str]]:
    if not source_types:
        return "", []
    marks = ",".join("?" for _ in source_types)
    return f" AND source_type IN ({marks})", [SourceType(t).value for t in source_types]


def _row_to_item(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"],
        title=row["title"],
        source_type=SourceType(row["source_type"]),
        status=Status(row["status"]),
        url=row["url"],
        pdf_path=row["pdf_path"],
        hash=row["hash"],
        content=row["content"],
        created_date=date.fromisoformat(row["created_date"]) if row["created_date"] else None,
        summary=row["summary"],
        content_type=row["content_type"],
        ai_primitives=tuple(json.loads(row["ai_primitives"] or "[]")),
        vendor=row["vendor"],
        error=row["error"],
        archived=bool(row["archived"]),
        warnings=tuple(json.loads(row["warnings"] or "[]")),
        sender=row["sender"],
        category=row["category"],
    )


def body_blocks(enrichment: Enrichment, text: str) -> list[tuple[str, str]]:
    """The page body as (toggle, text) pairs, in order; the analyses' toggles follow the four standard ones."""
    blocks = [("Summary", enrichment.summary), ("Executive Summary", enrichment.executive_summary)]
    blocks += [("Key Insights", insight) for insight in enrichment.key_insights]
    blocks.append(("Raw", text))
    blocks += [(result.title, line) for result in enrichment.analyses for _, line in body_lines(result)]
    return blocks


class SqliteStore:
    """Sources in a local SQLite file (the embedded default)."""

    name = "sqlite"
    max_raw_chars: int | None = None  # the Raw body keeps the whole text

    def __init__(self, path: Path, taxonomy: Taxonomy | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._taxonomy = taxonomy or Taxonomy()
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the SQLite store is not open")
        return self._db

    async def open(self) -> None:
        if self.read_only:
            self._open_read_only()
            return
        try:
            db = connect(self.path)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        self._db = db
        self._migrate()

    def _open_read_only(self) -> None:
        """The file as it is, never written.

        No file yet: an empty store in memory. A file an older version wrote
        (migrations pending): a copy in memory, migrated there, never the file.
        """
        try:
            db = connect_readonly(self.path)
            if db is not None and pending_migrations(db, MIGRATIONS):
                copy = sqlite3.connect(":memory:", isolation_level=None)
                if has_table(db, "items"):
                    db.backup(copy)
                db.close()
                db = copy
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot read SQLite store {self.path}: {exc}") from exc
        self._db = db or sqlite3.connect(":memory:", isolation_level=None)
        self._migrate()
        self._db.row_factory = sqlite3.Row

    def _migrate(self) -> None:
        if not pending_migrations(self.db, MIGRATIONS):
            return
        try:
            apply_migrations(self.db, MIGRATIONS)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot update the schema of SQLite store {self.path}: {exc}") from exc

    def _transaction(self) -> _Transaction:
        if self.read_only:
            raise StoreError(f"the SQLite store {self.path} is open read-only (dry run): nothing is written")
        return _Transaction(self.db)

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def identity(self) -> str:
        """This store, as one string: its file and the random id it was created with."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        return f"sqlite:{self.path.resolve()}:{row[0]}"

    async def taxonomy(self) -> Taxonomy:
        return self._taxonomy

    async def known_hashes(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT hash FROM items WHERE hash IS NOT NULL")}

    async def add(self, item: NewItem) -> Item:
        item_id = uuid.uuid4().hex
        now = _now()
        try:
            cursor = self._insert(item_id, item, now)
        except sqlite3.Error as exc:
            raise ItemError(f"the SQLite store refused the item: {exc}") from exc
        if cursor.rowcount == 0:
            row = self.db.execute("SELECT * FROM items WHERE hash = ?", (item.hash,)).fetchone()
            return _row_to_item(row)
        return await self.get(item_id)

    def _insert(self, item_id: str, item: NewItem, now: str) -> sqlite3.Cursor:
        with self._transaction():
            return self.db.execute(
                """INSERT OR IGNORE INTO items (id, title, status, source_type, url, pdf_path, hash,
                   content, created_date, sender, category, added_at, updated_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    item_id,
                    item.title,
                    Status.INBOX.value,
                    item.source_type.value,
                    item.url,
                    item.pdf_path,
                    item.hash,
                    item.content,
                    item.created_date.isoformat() if item.created_date else None,
                    item.sender,
                    item.category,
                    now,
                    now,
                ),
            )

    async def get(self, item_id: str) -> Item:
        row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise ItemError(f"item {item_id} not found in the SQLite store")
        return _row_to_item(row)

    async def _stream(self, where: str, params: list) -> AsyncIterator[Item]:
        last = -1
        while True:
            rows = self.db.execute(
                f"SELECT rowid AS _rowid, * FROM items WHERE rowid > ?{where} ORDER BY rowid LIMIT {PAGE_SIZE}",
                [last, *params],
            ).fetchall()
            for row in rows:
                yield _row_to_item(row)
            if len(rows) < PAGE_SIZE:
                return
            last = rows[-1]["_rowid"]

    def inbox(self, source_types: Collection[SourceType] | None = None) -> AsyncIterator[Item]:
        clause, params = _types_clause(source_types)
        return self._stream(" AND status = ?" + clause, [Status.INBOX.value, *params])

    async def count_inbox(self, source_types: Collection[SourceType] | None = None) -> int:
        clause, params = _types_clause(source_types)
        row = self.db.execute(
            "SELECT COUNT(*) FROM items WHERE status = ?" + clause, [Status.INBOX.value, *params]
        ).fetchone()
        return int(row[0])

    def list_items(self, status: Status | None = None) -> AsyncIterator[Item]:
        if status is None:
            return self._stream("", [])
        return self._stream(" AND status = ?", [Status(status).value])

    async def write_enrichment(
        self, item: Item, enrichment: Enrichment, text: str, *, repair: bool = False
    ) -> None:
        """Body and properties in one transaction: a crash leaves the item untouched."""
        created = item.created_date or enrichment.published_date
        with self._transaction():
            exists = self.db.execute("SELECT 1 FROM items WHERE id = ?", (item.id,)).fetchone()
            if exists is None:
                raise ItemError(f"item {item.id} was deleted from the store")
            self.db.execute("DELETE FROM blocks WHERE item_id = ?", (item.id,))
            self.db.executemany(
                "INSERT INTO blocks (item_id, toggle, position, text) VALUES (?,?,?,?)",
                [(item.id, toggle, n, value) for n, (toggle, value) in enumerate(body_blocks(enrichment, text))],
            )
            self.db.execute(
                """UPDATE items SET status=?, summary=?, content_type=?, ai_primitives=?, vendor=?,
                   created_date=?, error=NULL, warnings=?, title=coalesce(?, title), updated_at=? WHERE id=?""",
                (
                    Status.ENRICHED.value,
                    enrichment.executive_summary,
                    enrichment.content_type,
                    json.dumps(list(enrichment.ai_primitives)),
                    enrichment.vendor,
                    created.isoformat() if created else None,
                    json.dumps(list(enrichment.warnings), ensure_ascii=False),
                    enrichment.title,
                    _now(),
                    item.id,
                ),
            )

    async def mark_failed(self, item: Item, reason: str) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE items SET status=?, error=?, updated_at=? WHERE id=?",
                (Status.FAILED.value, reason, _now(), item.id),
            )

    async def return_to_inbox(self, item: Item) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE items SET status=?, error=NULL, updated_at=? WHERE id=? AND status=?",
                (Status.INBOX.value, _now(), item.id, Status.FAILED.value),
            )

    async def retry_failed(
        self, reason: str | None = None, source_types: Collection[SourceType] | None = None
    ) -> int:
        clause, params = _types_clause(source_types)
        if reason:
            clause += " AND instr(lower(coalesce(error, '')), lower(?)) > 0"
            params.append(reason)
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE items SET status=?, updated_at=? WHERE status=?" + clause,
                [Status.INBOX.value, _now(), Status.FAILED.value, *params],
            )
        return cursor.rowcount

    async def body(self, item_id: str) -> dict[str, list[str]]:
        body: dict[str, list[str]] = {}
        for row in self.db.execute(
            "SELECT toggle, text FROM blocks WHERE item_id = ? ORDER BY position", (item_id,)
        ):
            body.setdefault(row["toggle"], []).append(row["text"])
        return {name: body[name] for name in BODY_TOGGLES if name in body} | {
            k: v for k, v in body.items() if k not in BODY_TOGGLES
        }


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
