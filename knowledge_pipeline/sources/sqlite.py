"""The embedded Sources store: one SQLite file, WAL mode, every write in a transaction.

It mirrors the Notion Sources database column for column; the page body lives
in ``blocks`` (toggle title, position, text). Schema changes are append-only
named migrations applied when the file is opened. The full-text index
(``search_index.py``) is updated in the same transaction as every write that
changes indexed text.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from contextlib import AbstractContextManager
from typing import AsyncIterator, Collection

from ..errors import ItemError, ItemNotFound, StoreError
from ..enrichers.analyses import body_lines
from ..models import Enrichment, Item, NewItem, SourceType, Status, Taxonomy
from ..sqlite_files import connect, connect_readonly, now_stamp, stamp, transaction
from ..sqlite_schema import Migration, apply_migrations, execute_script, has_table, pending_migrations
from . import search_index
from .base import BODY_TOGGLES, ItemContent, ItemQuery, as_query

PAGE_SIZE = 100
ITEM_COLUMNS = (
    "id", "title", "status", "source_type", "url", "pdf_path", "hash", "created_date", "summary", "content_type",
    "ai_primitives", "vendor", "error", "archived", "added_at", "updated_at", "warnings", "sender", "category",
)
LISTED = ", ".join(f"i.{c}" for c in ITEM_COLUMNS) + ", NULL AS content"


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


READING_INDEX = "items_reading"


def _m004_reading_indexes(db: sqlite3.Connection) -> None:
    """Newest-first pages, counts and filter lists read from one covering index, never the fat rows.

    Led by ``added_at`` (the order of ``list`` and the reading page) and holding every
    column a filter tests, so a filtered count scans a few MB of index instead of the
    table, and a page of 20 stops as soon as it has them. The second, led by ``id``,
    lets a filtered search test each hit's labels without reading its row.
    """
    db.execute(
        f"CREATE INDEX {READING_INDEX} ON items(added_at, status, source_type, content_type, vendor, updated_at, "
        "ai_primitives)"
    )
    db.execute(
        "CREATE INDEX items_filters_by_id ON items(id, status, source_type, content_type, vendor, added_at, "
        "updated_at, ai_primitives)"
    )


def _m006_notion_copy(db: sqlite3.Connection) -> None:
    """Which Notion page each row copies, as last seen (``sync --from notion``), and sync watermarks."""
    db.execute(
        "CREATE TABLE notion_copy (item_id TEXT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE, "
        "page_id TEXT NOT NULL UNIQUE, edited_at TEXT, synced_at TEXT NOT NULL)"
    )
    db.execute("CREATE TABLE sync_marks (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _m007_feed_category(db: sqlite3.Connection) -> None:
    """The category of the feed an item came from (the feed list's kp:category)."""
    db.execute("ALTER TABLE items ADD COLUMN category TEXT")


def _m008_store_id(db: sqlite3.Connection) -> None:
    """A random id of this store file: a deleted and recreated store is another store (feed state)."""
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?)", (uuid.uuid4().hex,))


MIGRATIONS: list[Migration] = [
    ("m001_initial", _m001_initial),
    ("m002_item_warnings", _m002_item_warnings),
    ("m003_sender", _m003_sender),
    ("m004_reading_indexes", _m004_reading_indexes),
    ("m005_search_index", search_index.create),
    ("m006_notion_copy", _m006_notion_copy),
    ("m007_feed_category", _m007_feed_category),
    ("m008_store_id", _m008_store_id),
]


def _parse_time(value: str | None) -> datetime | None:
    """A stored time; None for one that is not ISO 8601 (an old or hand-edited row must still list)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _where(query: ItemQuery) -> tuple[str, list]:
    """`` AND ...`` clauses (on alias ``i``) and their parameters for a query's filters."""
    clauses: list[str] = []
    params: list = []
    if query.status is not None:
        clauses.append("i.status = ?")
        params.append(Status(query.status).value)
    if query.source_type is not None:
        clauses.append("i.source_type = ?")
        params.append(SourceType(query.source_type).value)
    if query.content_type:
        clauses.append("i.content_type = ? COLLATE NOCASE")
        params.append(query.content_type)
    if query.vendor:
        clauses.append("i.vendor = ? COLLATE NOCASE")
        params.append(query.vendor)
    if query.primitive:
        clauses.append("EXISTS (SELECT 1 FROM json_each(i.ai_primitives) p WHERE p.value = ? COLLATE NOCASE)")
        params.append(query.primitive)
    for column, operator, moment in (
        ("added_at", ">=", query.added_since), ("added_at", "<", query.added_before),
        ("updated_at", ">=", query.updated_since),
    ):
        if moment is not None:
            clauses.append(f"i.{column} {operator} ?")
            params.append(stamp(moment))
    return "".join(f" AND {c}" for c in clauses), params


def _types_clause(source_types: Collection[SourceType] | None) -> tuple[str, list[str]]:
    if not source_types:
        return "", []
    marks = ",".join("?" for _ in source_types)
    return f" AND source_type IN ({marks})", [SourceType(t).value for t in source_types]


def _row_to_item(row: sqlite3.Row) -> Item:
    return Item(
        added_at=_parse_time(row["added_at"]),
        updated_at=_parse_time(row["updated_at"]),
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

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(f"the SQLite store {self.path} is open read-only (dry run): nothing is written")
        return transaction(self.db)

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

    def _insert(self, item: NewItem, item_id: str, now: str, status: Status = Status.INBOX,
                error: str | None = None) -> bool:
        """The item's row (Inbox unless told), unless its hash is known; call inside a transaction."""
        with search_index.reindexed(self.db, item_id):
            cursor = self.db.execute(
                """INSERT OR IGNORE INTO items (id, title, status, source_type, url, pdf_path, hash,
                   content, created_date, sender, category, error, added_at, updated_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    item_id,
                    item.title,
                    status.value,
                    item.source_type.value,
                    item.url,
                    item.pdf_path,
                    item.hash,
                    item.content,
                    item.created_date.isoformat() if item.created_date else None,
                    item.sender,
                    item.category,
                    error,
                    now,
                    now,
                ),
            )
        return cursor.rowcount > 0

    def check_new(self, item: NewItem) -> None:
        """Nothing a row could not hold: refusals come from the database itself, at the write."""

    async def add(self, item: NewItem) -> Item:
        return await self._add(item, Status.INBOX)

    async def _add(self, item: NewItem, status: Status, error: str | None = None) -> Item:
        item_id = uuid.uuid4().hex
        try:
            with self._transaction():
                added = self._insert(item, item_id, now_stamp(), status, error)
        except sqlite3.Error as exc:
            raise ItemError(f"the SQLite store refused the item: {exc}") from exc
        if not added:
            row = self.db.execute("SELECT * FROM items WHERE hash = ?", (item.hash,)).fetchone()
            return _row_to_item(row)
        return await self.get(item_id)

    async def add_enriched(self, item: NewItem, enrichment: Enrichment, text: str) -> Item:
        """Row, body and index in one transaction; an item whose hash is known is returned unchanged."""
        item_id = uuid.uuid4().hex
        with self._transaction():
            if self._insert(item, item_id, now_stamp()):
                self._write_enrichment(item_id, item.created_date, enrichment, text)
            else:
                item_id = self.db.execute("SELECT id FROM items WHERE hash = ?", (item.hash,)).fetchone()[0]
        return await self.get(item_id)

    async def add_failed(self, item: NewItem, reason: str, *, status: Status = Status.FAILED) -> Item:
        """The item, Failed (or Duplicate) with ``reason``, in one transaction (unchanged when its hash is known)."""
        if status not in (Status.FAILED, Status.DUPLICATE):
            raise ValueError(f"expected Failed or Duplicate, not {status.value}")
        return await self._add(item, status, reason)

    async def find_by_hash(self, item_hash: str) -> Item | None:
        row = self.db.execute("SELECT * FROM items WHERE hash = ?", (item_hash,)).fetchone()
        return _row_to_item(row) if row is not None else None

    async def get(self, item_id: str) -> Item:
        """By id, or by a unique prefix of one (what ``list`` shows)."""
        row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None and item_id:
            rows = self.db.execute(
                "SELECT * FROM items WHERE id >= ? AND id < ? LIMIT 2", (item_id, item_id + "\U0010ffff")
            ).fetchall()
            if len(rows) > 1:
                raise ItemError(f"several items have an id starting with {item_id!r}: give more characters")
            row = rows[0] if rows else None
        if row is None:
            raise ItemNotFound(f"item {item_id} not found in the SQLite store")
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

    async def list_items(self, selection: ItemQuery | Status | None = None) -> AsyncIterator[Item]:
        """Pages of 100 rows by keyset (capture order, or newest first); feed text is not loaded."""
        query = as_query(selection)
        where, params = _where(query)
        if query.newest_first:
            order, after = "i.added_at DESC, i.rowid DESC", " AND (i.added_at < ? OR (i.added_at = ? AND i.rowid < ?))"
            source = f"items i INDEXED BY {READING_INDEX}"
        else:
            order, after = "i.rowid", " AND i.rowid > ?"
            source = "items i"
        remaining = query.limit
        offset = query.offset
        last: sqlite3.Row | None = None
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            keyset, keys = "", []
            if last is not None:
                keyset = after
                keys = [last["added_at"], last["added_at"], last["_rowid"]] if query.newest_first else [last["_rowid"]]
            rows = self.db.execute(
                f"SELECT i.rowid AS _rowid, {LISTED} FROM {source} WHERE 1{where}{keyset} "
                f"ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, *keys, size, offset],
            ).fetchall()
            offset = 0
            for row in rows:
                yield _row_to_item(row)
            if len(rows) < size:
                return
            if remaining is not None:
                remaining -= len(rows)
            last = rows[-1]

    async def count_items(self, selection: ItemQuery | Status | None = None) -> int:
        where, params = _where(as_query(selection))
        return int(self.db.execute(
            f"SELECT COUNT(*) FROM items i INDEXED BY {READING_INDEX} WHERE 1{where}", params).fetchone()[0])

    async def search(self, text: str, selection: ItemQuery | None = None) -> search_index.SearchPage:
        """Items matching an FTS5 query, best first (bm25), each with a highlighted snippet."""
        query = as_query(selection)
        where, params = _where(query)
        limit = query.limit if query.limit is not None else -1
        try:
            rows = self.db.execute(
                search_index.match_sql(where), [text, *params, limit, query.offset, text]
            ).fetchall()
            if rows and rows[0]["candidates"] < search_index.RANKED_MATCHES:
                total = int(rows[0]["candidates"])
            else:
                total = int(self.db.execute(search_index.count_sql(where), [text, *params]).fetchone()[0])
            more = bool(where) and total > search_index.COUNTED_MATCHES
        except sqlite3.OperationalError as exc:
            mapped = search_index.query_error(text, exc)
            if mapped is not None:
                raise mapped from None
            raise StoreError(f"search failed: {exc}") from exc
        hits = [search_index.SearchHit(_row_to_item(row), row["snippet"] or "", float(row["score"])) for row in rows]
        return search_index.SearchPage(hits, min(total, search_index.COUNTED_MATCHES) if more else total, more)

    async def facets(self) -> dict[str, list[tuple[str, int]]]:
        """The labels in use with their counts (filters of the reading page), most used first.

        Read from the covering index; AI primitives are counted per distinct list
        (a few hundred at most), not by parsing every row's JSON.
        """
        db = self.db
        facets = {
            column: [(r[0], r[1]) for r in db.execute(
                f"SELECT {column}, COUNT(*) AS n FROM items INDEXED BY {READING_INDEX} "
                f"WHERE {column} IS NOT NULL AND {column} != '' GROUP BY {column} ORDER BY n DESC, {column}"
            )]
            for column in ("content_type", "vendor", "source_type", "status")
        }
        primitives: dict[str, int] = {}
        for labels, n in db.execute(
            f"SELECT ai_primitives, COUNT(*) FROM items INDEXED BY {READING_INDEX} GROUP BY ai_primitives"
        ):
            for label in dict.fromkeys(json.loads(labels or "[]")):
                primitives[label] = primitives.get(label, 0) + n
        facets["ai_primitive"] = sorted(primitives.items(), key=lambda kv: (-kv[1], kv[0]))
        return facets

    async def write_enrichment(
        self, item: Item, enrichment: Enrichment, text: str, *, repair: bool = False
    ) -> None:
        """Body, properties and search index in one transaction: a crash leaves the item untouched."""
        with self._transaction():
            exists = self.db.execute("SELECT 1 FROM items WHERE id = ?", (item.id,)).fetchone()
            if exists is None:
                raise ItemError(f"item {item.id} was deleted from the store")
            self._write_enrichment(item.id, item.created_date, enrichment, text)

    def _write_enrichment(self, item_id: str, created_date: date | None, enrichment: Enrichment, text: str) -> None:
        created = created_date or enrichment.published_date
        with search_index.reindexed(self.db, item_id):
            self.db.execute("DELETE FROM blocks WHERE item_id = ?", (item_id,))
            self.db.executemany(
                "INSERT INTO blocks (item_id, toggle, position, text) VALUES (?,?,?,?)",
                [(item_id, toggle, n, value) for n, (toggle, value) in enumerate(body_blocks(enrichment, text))],
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
                    now_stamp(),
                    item_id,
                ),
            )

    async def mark_failed(self, item: Item, reason: str) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE items SET status=?, error=?, updated_at=? WHERE id=?",
                (Status.FAILED.value, reason, now_stamp(), item.id),
            )

    async def mark_duplicate(self, item: Item, note: str) -> None:
        """Status Duplicate, and in ``error`` what it duplicates (inbox-first; not a failure)."""
        with self._transaction():
            self.db.execute(
                "UPDATE items SET status=?, error=?, updated_at=? WHERE id=?",
                (Status.DUPLICATE.value, note, now_stamp(), item.id),
            )

    async def return_to_inbox(self, item: Item) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE items SET status=?, error=NULL, updated_at=? WHERE id=? AND status=?",
                (Status.INBOX.value, now_stamp(), item.id, Status.FAILED.value),
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
                [Status.INBOX.value, now_stamp(), Status.FAILED.value, *params],
            )
        return cursor.rowcount

    # -- the local copy of a Notion database (sync --from notion) ---------------------------

    async def copy_state(self, page_id: str) -> tuple[str | None, str] | None:
        """(last_edited_time, synced_at) of the page as last copied, or None when never copied."""
        row = self.db.execute("SELECT edited_at, synced_at FROM notion_copy WHERE page_id = ?", (page_id,)).fetchone()
        return None if row is None else (row["edited_at"], row["synced_at"])

    async def put_copy(self, item: Item, content: ItemContent | None, *, synced_at: datetime) -> bool:
        """Insert or replace the row copying Notion page ``item`` (with its body); True when it is new.

        The row is found by page id, else by hash (an item that came from this
        store); a new row takes the page id as its id. Row, body, search index
        and copy state change in one transaction.
        """
        with self._transaction():
            row = self.db.execute("SELECT item_id FROM notion_copy WHERE page_id = ?", (item.id,)).fetchone()
            if row is None and item.hash:
                row = self.db.execute("SELECT id AS item_id FROM items WHERE hash = ?", (item.hash,)).fetchone()
            local_id = row["item_id"] if row is not None else item.id
            with search_index.reindexed(self.db, local_id):
                self.db.execute(
                    """INSERT INTO items (id, title, status, source_type, url, pdf_path, hash, created_date, summary,
                       content_type, ai_primitives, vendor, error, archived, added_at, updated_at, warnings, sender,
                       category)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT(id) DO UPDATE SET title=excluded.title, status=excluded.status,
                       source_type=excluded.source_type, url=excluded.url, pdf_path=excluded.pdf_path,
                       hash=excluded.hash, created_date=excluded.created_date, summary=excluded.summary,
                       content_type=excluded.content_type, ai_primitives=excluded.ai_primitives,
                       vendor=excluded.vendor, error=excluded.error, archived=excluded.archived,
                       added_at=excluded.added_at, updated_at=excluded.updated_at, warnings=excluded.warnings,
                       sender=excluded.sender, category=excluded.category""",
                    (
                        local_id, item.title, item.status.value, item.source_type.value, item.url, item.pdf_path,
                        item.hash, item.created_date.isoformat() if item.created_date else None,
                        (content.executive_summary if content else "") or item.summary, item.content_type,
                        json.dumps(list(item.ai_primitives)), item.vendor, item.error, int(item.archived),
                        stamp(item.added_at or synced_at), stamp(item.updated_at or synced_at),
                        json.dumps(list(item.warnings), ensure_ascii=False), item.sender, item.category,
                    ),
                )
                self.db.execute("DELETE FROM blocks WHERE item_id = ?", (local_id,))
                if content is not None:
                    blocks = body_blocks(content.enrichment(item), content.text)
                    self.db.executemany(
                        "INSERT INTO blocks (item_id, toggle, position, text) VALUES (?,?,?,?)",
                        [(local_id, toggle, n, value) for n, (toggle, value) in enumerate(blocks)],
                    )
            self.db.execute(
                "INSERT OR REPLACE INTO notion_copy (item_id, page_id, edited_at, synced_at) VALUES (?,?,?,?)",
                (local_id, item.id, stamp(item.updated_at) if item.updated_at else None, stamp(synced_at)),
            )
        return row is None

    async def sync_mark(self, name: str) -> datetime | None:
        row = self.db.execute("SELECT value FROM sync_marks WHERE name = ?", (name,)).fetchone()
        return _parse_time(row["value"]) if row else None

    async def set_sync_mark(self, name: str, moment: datetime) -> None:
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO sync_marks VALUES (?, ?)", (name, stamp(moment)))

    async def body(self, item_id: str) -> dict[str, list[str]]:
        body: dict[str, list[str]] = {}
        for row in self.db.execute(
            "SELECT toggle, text FROM blocks WHERE item_id = ? ORDER BY position", (item_id,)
        ):
            body.setdefault(row["toggle"], []).append(row["text"])
        return {name: body[name] for name in BODY_TOGGLES if name in body} | {
            k: v for k, v in body.items() if k not in BODY_TOGGLES
        }
