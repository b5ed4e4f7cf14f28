"""The pipeline's own SQLite files (the Sources store, the journal, its state): private and in WAL mode.

They hold full article texts and paid LLM answers, so they are created 0600
like the logs (SQLite gives the ``-wal`` and ``-shm`` files the main file's
mode), and an existing file of this user that others may read is tightened to
0600 when it is opened. A read-only connection (a dry run; ``list``, ``show``
and ``digest`` before any store exists) creates and changes no file at all.

Every one of them writes times the same way (:func:`stamp`) and groups its
writes in :func:`transaction`.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TypeVar
from urllib.request import pathname2url

from .errors import StoreError

PRIVATE = 0o600
_COMPANIONS = ("", "-wal", "-shm")


def connect(path: Path, *, timeout: float = 30) -> sqlite3.Connection:
    """Open (creating it 0600 if needed) a SQLite file in autocommit and WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NONBLOCK, PRIVATE)
    os.close(fd)
    make_private(path)
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        db.close()
        raise
    return db


def make_private(path: Path) -> None:
    """chmod 0600 the file and its -wal/-shm when this user owns them and others could read them."""
    for suffix in _COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            st = os.stat(companion)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(companion, PRIVATE)


def connect_readonly(path: Path, *, timeout: float = 30) -> sqlite3.Connection | None:
    """A connection that can neither create nor change a file; None when ``path`` does not exist.

    ``immutable`` keeps SQLite from creating ``-wal``/``-shm`` files beside a
    database that has none (a plain ``mode=ro`` would leave both behind).
    When a ``-wal`` exists (a run is writing, or one died), it is read too.
    """
    if not path.is_file():
        return None
    wal = path.with_name(path.name + "-wal").exists()
    uri = f"file:{pathname2url(str(path.resolve()))}?mode=ro" + ("" if wal else "&immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)


def stamp(moment: datetime) -> str:
    """How the files write a time: UTC, whole seconds, ISO 8601 (so text order is time order); naive is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def now_stamp() -> str:
    """The current time as :func:`stamp` writes it."""
    return stamp(datetime.now(timezone.utc))


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``with transaction(db):`` BEGIN IMMEDIATE ... COMMIT, rolled back on any error (a cancel, a failed COMMIT).

    ``db`` must be in autocommit mode (``isolation_level=None``), as :func:`connect` opens it.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


_File = TypeVar("_File", bound="StateFile")


class StateFile:
    """A SQLite file of the pipeline's own state (the journal, the dedup state, the text cache, the batches...).

    ``open()`` creates it 0600 in WAL mode and runs ``_prepare`` (its schema);
    any failure is one ``StoreError`` naming the file: ``cannot open <what> <path>: ...``.
    """

    what = "state file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def open(self: _File) -> _File:
        try:
            db = self._connect()
            self._prepare(db)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {self.what} {self.path}: {exc}") from exc
        self._db = db
        return self

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Create or update the tables (on the file's own connection)."""

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self: _File) -> _File:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"{self.what} {self.path} is not open")
        return self._db
