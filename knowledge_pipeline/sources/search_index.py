"""The full-text index of the SQLite store (FTS5), kept in step by the store's own writes.

Layout:

- ``item_search`` gives every item a stable integer ``doc_id`` (``items`` has a
  text key, and SQLite may renumber the rowids of such a table on VACUUM);
- ``item_search_docs`` is the view FTS5 reads: title, executive summary,
  summary, key insights and full text of each item;
- ``items_fts`` is an *external content* FTS5 table over that view: it holds
  the index only, the text is not stored twice.

External content means FTS5 must be told what it indexed before a change.
:func:`reindexed` does that around a write, inside the caller's transaction:
it removes the item's entry (read from the view as it still is), lets the
write happen, and indexes the item as it now is. Every store method that
changes an indexed column goes through it, so a crash leaves index and text
in agreement (both roll back).

Queries use FTS5's own syntax (``"exact phrase"``, ``agent*``, ``AND``/``OR``/
``NOT``, ``NEAR``, ``title: word``); words are stemmed (porter) and accents
ignored. Results are ranked by bm25 with the title weighing most.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ..errors import SearchQueryError
from ..models import Item

COLUMNS: tuple[str, ...] = ("title", "executive_summary", "summary", "key_insights", "full_text")
WEIGHTS: tuple[float, ...] = (10.0, 5.0, 3.0, 3.0, 1.0)
HIT_START, HIT_END = "\x02", "\x03"
ELLIPSIS = "\u2026"
SNIPPET_TOKENS = 24


@dataclass(frozen=True)
class SearchHit:
    """One result: the item, the best passage with each match between HIT_START and HIT_END, the bm25 score."""

    item: Item
    snippet: str
    score: float


@dataclass(frozen=True)
class SearchPage:
    """A page of hits; ``total`` is exact unless ``more`` (then at least that many match)."""

    hits: list[SearchHit]
    total: int
    more: bool = False

    @property
    def reachable(self) -> int:
        """How many hits paging can reach (the ranked ones)."""
        return min(self.total, RANKED_MATCHES)


_VIEW = """
CREATE VIEW item_search_docs AS
SELECT s.doc_id AS doc_id,
       i.title AS title,
       i.summary AS executive_summary,
       (SELECT group_concat(text, char(10)) FROM blocks b WHERE b.item_id = i.id AND b.toggle = 'Summary') AS summary,
       (SELECT group_concat(text, char(10)) FROM blocks b WHERE b.item_id = i.id AND b.toggle = 'Key Insights')
           AS key_insights,
       (SELECT group_concat(text, char(10)) FROM blocks b WHERE b.item_id = i.id AND b.toggle = 'Raw') AS full_text
FROM item_search s JOIN items i ON i.id = s.item_id
"""
_COLUMN_LIST = ", ".join(COLUMNS)


def create(db: sqlite3.Connection) -> None:
    """The migration body: tables, view, index, built from what the store already holds."""
    db.execute(
        "CREATE TABLE item_search (doc_id INTEGER PRIMARY KEY, "
        "item_id TEXT NOT NULL UNIQUE REFERENCES items(id) ON DELETE CASCADE)"
    )
    db.execute(_VIEW)
    db.execute(
        f"CREATE VIRTUAL TABLE items_fts USING fts5({_COLUMN_LIST}, content='item_search_docs', "
        "content_rowid='doc_id', tokenize='porter unicode61 remove_diacritics 2')"
    )
    weights = ", ".join(f"{w:g}" for w in WEIGHTS)
    db.execute("INSERT INTO items_fts(items_fts, rank) VALUES ('rank', ?)", (f"bm25({weights})",))
    db.execute("INSERT INTO item_search (item_id) SELECT id FROM items ORDER BY rowid")
    rebuild(db)


def rebuild(db: sqlite3.Connection) -> None:
    """Index every item from scratch (the migration; a repair if the index was ever damaged)."""
    db.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")


def check(db: sqlite3.Connection) -> None:
    """Raise sqlite3.DatabaseError when the index disagrees with the text it indexes."""
    db.execute("INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)")


def _doc_id(db: sqlite3.Connection, item_id: str) -> int | None:
    row = db.execute("SELECT doc_id FROM item_search WHERE item_id = ?", (item_id,)).fetchone()
    return None if row is None else int(row[0])


def _forget(db: sqlite3.Connection, doc_id: int) -> None:
    db.execute(
        f"INSERT INTO items_fts(items_fts, rowid, {_COLUMN_LIST}) "
        f"SELECT 'delete', doc_id, {_COLUMN_LIST} FROM item_search_docs WHERE doc_id = ?",
        (doc_id,),
    )


def _index(db: sqlite3.Connection, doc_id: int) -> None:
    db.execute(
        f"INSERT INTO items_fts(rowid, {_COLUMN_LIST}) SELECT doc_id, {_COLUMN_LIST} "
        "FROM item_search_docs WHERE doc_id = ?",
        (doc_id,),
    )


@contextmanager
def reindexed(db: sqlite3.Connection, item_id: str) -> Iterator[None]:
    """Around a write to one item (in an open transaction): unindex it as it was, reindex it as it is.

    The item may not exist yet (an insert): it is then only indexed after.
    """
    before = _doc_id(db, item_id)
    if before is not None:
        _forget(db, before)
    yield
    if db.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone() is None:
        return
    if before is None:
        db.execute("INSERT INTO item_search (item_id) VALUES (?)", (item_id,))
    after = _doc_id(db, item_id)
    if after is not None:
        _index(db, after)


QUERY_ERRORS = ("fts5:", "no such column", "unknown special query", "unterminated string")


def query_error(text: str, exc: sqlite3.OperationalError) -> SearchQueryError | None:
    """The user's error when FTS5 rejected the query itself (None for any other database error)."""
    message = str(exc)
    if not message.startswith(QUERY_ERRORS):
        return None
    return SearchQueryError(
        f"cannot search for {text!r}: FTS5 does not accept it ({message}); "
        'put words with punctuation in double quotes, e.g. "GPT-4" or "C++"'
    )


RANKED_MATCHES = 5_000
COUNTED_MATCHES = 10_000
_FILTERED = " CROSS JOIN item_search s ON s.doc_id = f.rowid CROSS JOIN items i ON i.id = s.item_id"


def match_sql(where: str) -> str:
    """A page of the best hits of ``items_fts MATCH ?``, each with its item and a highlighted snippet.

    bm25 is computed for the newest RANKED_MATCHES matches only (those that pass the
    filters): ranking every match of a word that is in every item would cost a
    second per query on 100,000 items, and such a word's bm25 is near zero
    anyway. Below that many matches the ranking is exact. The matches are walked
    newest first by the index itself (no sort), the filters read through the
    CROSS JOINs in that order, and the snippet is made for the returned page only.
    Each row also says how many candidates there were: fewer than RANKED_MATCHES
    is the exact count, so no second pass is needed to count them.
    """
    join = _FILTERED if where else ""
    return f"""
        WITH candidates AS MATERIALIZED (
            SELECT f.rowid AS doc_id, f.rank AS score
            FROM items_fts f{join}
            WHERE items_fts MATCH ?{where}
            ORDER BY f.rowid DESC LIMIT {RANKED_MATCHES}
        ), page AS (
            SELECT doc_id, score FROM candidates ORDER BY score LIMIT ? OFFSET ?
        )
        SELECT i.*, page.score AS score, (SELECT count(*) FROM candidates) AS candidates,
               (SELECT snippet(items_fts, -1, '{HIT_START}', '{HIT_END}', '{ELLIPSIS}', {SNIPPET_TOKENS})
                FROM items_fts WHERE items_fts MATCH ? AND rowid = page.doc_id) AS snippet
        FROM page JOIN item_search s ON s.doc_id = page.doc_id JOIN items i ON i.id = s.item_id
        ORDER BY page.score
    """


def count_sql(where: str) -> str:
    """How many items match: exact from the index alone, or with filters counted up to COUNTED_MATCHES + 1."""
    if not where:
        return "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?"
    return (f"SELECT count(*) FROM (SELECT 1 FROM items_fts f{_FILTERED} WHERE items_fts MATCH ?{where} "
            f"LIMIT {COUNTED_MATCHES + 1})")
