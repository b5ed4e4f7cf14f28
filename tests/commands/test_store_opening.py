"""How ``list``, ``show`` and ``digest`` open the SQLite store: an older file is migrated once, in place; nothing is created."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from knowledge_pipeline.sources.sqlite import MIGRATIONS
from tests.commands.conftest import Cli
from tests.reading.library import build_library


def from_an_older_version(path: Path) -> dict[str, str]:
    """A store as the version before ``m008_store_id`` left it."""
    ids = build_library(path)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM _migrations WHERE name = 'm008_store_id'")
    db.execute("DROP TABLE meta")
    db.commit()
    db.close()
    return ids


def applied(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY name")]
    finally:
        db.close()


COMMANDS = {
    "list": lambda ids: ["list", "--json"],
    "show": lambda ids: ["show", ids["agents"]],
    "digest": lambda ids: ["digest", "--since", "2024-01-01"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_store_from_an_older_version_is_migrated_in_the_file_once(cli: Cli, tmp_path: Path, command: str) -> None:
    """Not copied into memory and migrated there on every command (a 250 MB store took 296 MB for `list --limit 5`)."""
    path = tmp_path / "sources.db"
    ids = from_an_older_version(path)
    first = cli(*COMMANDS[command](ids), SOURCES_DB_PATH=str(path))
    assert first.code == 0, first.err
    assert applied(path) == sorted(name for name, _ in MIGRATIONS)
    again = cli(*COMMANDS[command](ids), SOURCES_DB_PATH=str(path))
    assert (again.code, again.out) == (0, first.out)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_reading_a_project_without_a_store_creates_no_file(cli: Cli, tmp_path: Path, command: str) -> None:
    path = tmp_path / "data" / "sources.db"
    done = cli(*COMMANDS[command]({"agents": "0123abcd"}), SOURCES_DB_PATH=str(path))
    assert done.code == (1 if command == "show" else 0), done.err
    assert not path.parent.exists()
