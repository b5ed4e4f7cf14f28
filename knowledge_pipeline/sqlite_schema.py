"""Append-only named schema migrations for the project's SQLite files.

Each file keeps a ``_migrations`` table of the names applied; a migration not
in it runs, in its own transaction, when the file is opened. Migrations are
never edited once released: a schema change is a new, later migration.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Sequence

from .sqlite_files import now_stamp, transaction

Migration = tuple[str, Callable[[sqlite3.Connection], None]]


def apply_migrations(db: sqlite3.Connection, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations ``db`` does not have yet (``db`` in autocommit mode); return their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied = []
    for name, migration in migrations:
        if name in done:
            continue
        with transaction(db):
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                continue  # another process applied it while this one waited for the lock
            migration(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now_stamp()))
            applied.append(name)
    return applied


def has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def pending_migrations(db: sqlite3.Connection, migrations: Sequence[Migration]) -> bool:
    """Whether ``db`` lacks any of ``migrations`` (read-only connections can ask too)."""
    if not has_table(db, "_migrations"):
        return True
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    return any(name not in done for name, _ in migrations)


def execute_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one (``executescript`` would commit the open transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
