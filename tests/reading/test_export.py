"""Exports: Markdown notes an Obsidian vault reads, CSV a spreadsheet cannot be tricked by, JSONL, RSS."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Awaitable, Callable

import feedparser
import yaml

from knowledge_pipeline.models import Enrichment, NewItem, SourceType
from knowledge_pipeline.reading import export
from knowledge_pipeline.sources.base import ItemQuery
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.conftest import with_store
from tests.reading.library import LONG_TITLE, XSS_TITLE, build_library


def with_sqlite(path: Path, work: Callable[[SqliteStore], Awaitable[Any]]) -> Any:
    return with_store(SqliteStore(path), work)


def notes(folder: Path) -> dict[str, tuple[dict, str]]:
    """File name -> (front matter, body) of every note."""
    out = {}
    for path in folder.iterdir():
        _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
        out[path.name] = (yaml.safe_load(front), body)
    return out


def test_markdown_one_note_per_item_with_front_matter(tmp_path: Path) -> None:
    ids = build_library(tmp_path / "s.db")
    report = with_sqlite(tmp_path / "s.db", lambda s: export.export_markdown(s, ItemQuery(), tmp_path / "vault"))
    assert (report.items, report.written, report.unchanged) == (6, 6, 0)
    found = notes(tmp_path / "vault")
    name = f"{LONG_TITLE} ({ids['router'][:12]}).md"
    front, body = found[name]
    assert front["id"] == ids["router"] and front["vendor"] == "Acme" and front["status"] == "Enriched"
    assert front["ai_primitives"] == ["Automation", "Coding"] and front["tags"] == ["vendor-capability",
                                                                                  "automation", "coding"]
    assert str(front["published"]) == "2024-05-01" and front["url"] == "https://example.com/router"
    assert f"# {LONG_TITLE}\n" in body and "## Key insights\n\n- Routing cut costs by 30%.\n" in body
    assert "## Full text\n\nFull text: routers send easy prompts" in body
    failed = next(f for f, _ in found.values() if f["status"] == "Failed")
    assert failed["error"].startswith("HTTP 404")
    _, agents = found[f"Agents that open pull requests ({ids['agents'][:12]}).md"]
    assert ("## SWOT\n\nS/W/O/T | Point\n\n- S | agents test their own code\n\n"
            "## Action Items\n\n- Try an agent on one repository.\n- Measure review time.\n\n## Full text") in agents


def test_note_names_are_safe_and_stay_in_the_folder(tmp_path: Path) -> None:
    build_library(tmp_path / "s.db")

    async def add_hostile(store: SqliteStore) -> None:
        for n, title in enumerate(["../../etc/passwd", "CON", "   ", "a" * 400, "日本語のタイトル" * 30, ".hidden"]):
            await store.add_enriched(NewItem(title, SourceType.RSS, f"x{n}", url=f"https://e.com/{n}"),
                                     Enrichment("s", "e", "Market News", (), None, ()), "t")
        await export.export_markdown(store, ItemQuery(), tmp_path / "vault")

    with_sqlite(tmp_path / "s.db", add_hostile)
    names = [p.name for p in (tmp_path / "vault").iterdir()]
    assert len(names) == 12 and all((tmp_path / "vault" / n).is_file() for n in names)
    for name in names:
        assert not set(name) & set('<>:"/\\|?*') and not name.startswith(".")
        assert len(name.encode("utf-8")) <= export.MAX_NAME_BYTES + 20
    assert any(n.startswith("etc passwd (") for n in names) and any(n.startswith("untitled (") for n in names)
    assert not (tmp_path / "etc").exists()
    assert any(n.startswith("script window.pwned = 1 script img src=x onerror= window.pwned=2 Hostile title (")
               for n in names)
    assert any(n.startswith("hidden (") for n in names) and any(n.startswith("CON (") for n in names)


def test_reexport_updates_in_place(tmp_path: Path) -> None:
    ids = build_library(tmp_path / "s.db")
    vault = tmp_path / "vault"
    with_sqlite(tmp_path / "s.db", lambda s: export.export_markdown(s, ItemQuery(), vault))
    before = {p.name: p.stat().st_mtime_ns for p in vault.iterdir()}

    async def rename_and_reexport(store: SqliteStore) -> export.ExportReport:
        store.db.execute("UPDATE items SET title = 'Renamed item' WHERE id = ?", (ids["agents"],))
        return await export.export_markdown(store, ItemQuery(), vault)

    report = with_sqlite(tmp_path / "s.db", rename_and_reexport)
    assert (report.written, report.unchanged, report.removed) == (1, 5, 1)
    after = {p.name: p.stat().st_mtime_ns for p in vault.iterdir()}
    assert f"Renamed item ({ids['agents'][:12]}).md" in after
    assert not any(name.startswith("Agents that open") for name in after), "the old name is gone"
    assert all(after[n] == before[n] for n in after if n in before), "unchanged notes are not rewritten"


def test_csv_cells_are_data_not_formulas(tmp_path: Path) -> None:
    build_library(tmp_path / "s.db")

    async def add_and_export(store: SqliteStore) -> str:
        await store.add_enriched(NewItem('=HYPERLINK("http://evil.example","click")', SourceType.RSS, "f",
                                         url="https://e.com/f"),
                                 Enrichment("s", "+1 exec", "Market News", (), "@vendor", ("-insight",)), "t")
        out = io.StringIO()
        await export.export_csv(store, ItemQuery(newest_first=True), out)
        return out.getvalue()

    rows = list(csv.DictReader(io.StringIO(with_sqlite(tmp_path / "s.db", add_and_export))))
    assert len(rows) == 7 and tuple(rows[0]) == export.CSV_COLUMNS
    first = rows[0]
    assert first["title"].startswith("'=HYPERLINK") and first["vendor"] == "'@vendor"
    assert first["executive_summary"] == "'+1 exec" and first["key_insights"] == "'-insight"
    router = next(r for r in rows if r["vendor"] == "Acme")
    assert router["key_insights"] == "Routing cut costs by 30%.\nLatency stayed flat."
    assert router["ai_primitives"] == "Automation; Coding"


def test_jsonl_has_one_complete_record_per_line(tmp_path: Path) -> None:
    ids = build_library(tmp_path / "s.db")
    out = io.StringIO()
    with_sqlite(tmp_path / "s.db", lambda s: export.export_jsonl(s, ItemQuery(), out))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in records] == list(ids.values())
    assert records[0]["body"]["text"].startswith("Full text: routers") and records[0]["hash"] == "hash-router"
    assert records[0]["body"]["analyses"] == []
    assert records[1]["body"]["analyses"] == [
        {"title": "SWOT", "lines": ["S/W/O/T | Point", "S | agents test their own code"]},
        {"title": "Action Items", "lines": ["Try an agent on one repository.", "Measure review time."]}]


def test_rss_is_a_valid_feed_of_enriched_items(tmp_path: Path) -> None:
    build_library(tmp_path / "s.db")
    out = io.StringIO()
    query = export.rss_query(ItemQuery())
    with_sqlite(tmp_path / "s.db", lambda s: export.export_rss(s, query, out, "http://127.0.0.1:8765/"))
    feed = feedparser.parse(out.getvalue())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.link == "http://127.0.0.1:8765/"
    assert [e.title for e in feed.entries] == [XSS_TITLE, "State of enterprise AI", "Agents that open pull requests",
                                               LONG_TITLE]
    agents = feed.entries[2]
    assert agents.link == "https://example.com/agents"
    assert agents.description == "Coding agents now open pull requests on their own."
    assert agents.id == "hash-agents" and [t.term for t in agents.tags] == ["Market News", "Coding"]
    assert "link" not in feed.entries[0] or not feed.entries[0].link.startswith("javascript")
    assert "<script>" not in out.getvalue()


def test_file_outputs_are_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    target.write_text("old")
    os.chmod(target, 0o640)
    try:
        with export.output_file(target) as out:
            out.write("half")
            raise RuntimeError("interrupted")
    except RuntimeError:
        pass
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["feed.xml"]
    with export.output_file(target) as out:
        out.write("new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640
