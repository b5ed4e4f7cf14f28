"""The pipeline's own SQLite files (the Sources store, the journal): private and in WAL mode.

They hold full article texts and paid LLM answers, so they are created 0600
like the logs (SQLite gives the ``-wal`` and ``-shm`` files the main file's
mode), and an existing file of this user that others may read is tightened to
0600 when it is opened. A read-only connection (a dry run, ``list``) creates
and changes no file at all.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from urllib.request import pathname2url

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
