"""``export`` from the command line, and its memory staying flat however big the store is."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest

from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.commands.conftest import Cli
from tests.conftest import ROOT, clean_env
from tests.reading.library import build_library


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    build_library(tmp_path / "sources.db")
    return {"SOURCES_DB_PATH": str(tmp_path / "sources.db")}


def test_markdown_to_a_folder_then_again(cli: Cli, env: dict[str, str], tmp_path: Path) -> None:
    first = cli("export", "--format", "markdown", "vault", **env)
    assert first.code == 0, first.err
    assert first.out.strip() == "Exported 6 items to vault: 6 written, 0 unchanged"
    assert len(list((tmp_path / "vault").glob("*.md"))) == 6
    again = cli("export", "--format", "markdown", "vault", **env)
    assert again.out.strip() == "Exported 6 items to vault: 0 written, 6 unchanged"


def test_filters_apply_and_rss_and_csv_go_to_files_or_stdout(cli: Cli, env: dict[str, str], tmp_path: Path) -> None:
    done = cli("export", "--format", "rss", "public/feed.xml", "--since", "2024-06-02", **env)
    assert done.code == 0 and done.out.strip() == "Wrote 3 items to public/feed.xml (rss)"
    feed = feedparser.parse((tmp_path / "public" / "feed.xml").read_text())
    assert len(feed.entries) == 3 and not feed.bozo
    csv_out = cli("export", "--format", "csv", "-", "--vendor", "acme", **env)
    assert csv_out.code == 0 and [r["vendor"] for r in csv.DictReader(io.StringIO(csv_out.out))] == ["Acme"]
    one = cli("export", "--format", "csv", "acme.csv", "--vendor", "acme", **env)
    assert one.out.strip() == "Wrote 1 item to acme.csv (csv)"
    jsonl = cli("export", "--format", "jsonl", "-", "--status", "failed", **env)
    assert [json.loads(line)["status"] for line in jsonl.out.splitlines()] == ["Failed"]


def test_bad_destinations_are_one_line(cli: Cli, env: dict[str, str], tmp_path: Path) -> None:
    stdout_md = cli("export", "--format", "markdown", "-", **env)
    assert stdout_md.code == 2 and "give a folder" in stdout_md.err
    (tmp_path / "a-file").write_text("not a folder")
    blocked = cli("export", "--format", "csv", "a-file/out.csv", **env)
    assert blocked.code == 1 and blocked.err.startswith("export: cannot write") and len(blocked.err.splitlines()) == 1
    vault = cli("export", "--format", "markdown", "a-file", **env)
    assert vault.code == 1 and vault.err.startswith("export: cannot write") and len(vault.err.splitlines()) == 1


MEMORY_PROBE = """
import sys
from knowledge_pipeline.__main__ import main
import importlib
from knowledge_pipeline.__main__ import COMMAND_MODULES


def high_water_kb():  # VmHWM, the child's own: ru_maxrss starts at pytest's RSS (Linux carries it over the spawn)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


for command in COMMAND_MODULES:  # what main() imports, so the baseline holds every library loaded
    importlib.import_module(f"knowledge_pipeline.commands.{command}")
before = high_water_kb()
code = main(sys.argv[1:])
after = high_water_kb()
print(f"RSS_GROWTH_KB={after - before}", file=sys.stderr)
sys.exit(code)
"""
TEXT_KB = 40


def _big_store(path: Path, items: int) -> None:
    """``items`` enriched rows with 40 KB of text each, written straight into the tables (fast)."""
    import asyncio

    async def schema() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    text = ("All work and no play makes a long article. " * (TEXT_KB * 1024 // 43))[: TEXT_KB * 1024]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO items (id, title, status, source_type, url, hash, summary, content_type, ai_primitives, "
            "added_at, updated_at) VALUES (?, ?, 'Enriched', 'RSS', ?, ?, 'An executive summary.', 'Market News', "
            "'[\"Research\"]', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00')",
            [(f"{n:032x}", f"Item {n}", f"https://example.com/{n}", f"h{n}") for n in range(items)])
        db.executemany("INSERT INTO blocks VALUES (?, 'Raw', 3, ?)", [(f"{n:032x}", text) for n in range(items)])


@pytest.mark.parametrize("fmt, dest", [("jsonl", "out.jsonl"), ("markdown", "vault")])
def test_memory_stays_bounded_while_exporting(tmp_path: Path, fmt: str, dest: str) -> None:
    items = 2500  # 100 MB of text: held in memory it would add far more than the bound below
    _big_store(tmp_path / "big.db", items)
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, "export", "--format", fmt, dest], cwd=tmp_path, capture_output=True,
        text=True, timeout=300, env=clean_env(SOURCES_DB_PATH=str(tmp_path / "big.db"), PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 0, done.stderr
    growth_mb = int(done.stderr.split("RSS_GROWTH_KB=")[1].split()[0]) / 1024
    assert f"{items} items" in done.stdout
    print(f"{fmt}: {items} items, RSS grew {growth_mb:.1f} MB")
    assert growth_mb < 30, f"export grew the process by {growth_mb:.0f} MB for {items * TEXT_KB / 1024:.0f} MB of text"
