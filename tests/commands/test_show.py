"""``show ID``: one item whole, from SQLite and from Notion (real notion-client, fake server)."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest

from knowledge_pipeline.models import Enrichment, NewItem, SourceType
from tests.commands.conftest import Cli
from tests.fakes.notion_server import start_fake_notion
from tests.reading.library import WARNING, build_library
from tests.sources.notion_support import notion_store


@pytest.fixture
def library(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    path = tmp_path / "sources.db"
    return build_library(path), {"SOURCES_DB_PATH": str(path)}


def test_an_enriched_item_whole(cli: Cli, library: tuple[dict, dict]) -> None:
    ids, env = library
    done = cli("show", ids["router"], **env)
    assert done.code == 0, done.err
    out = done.out
    for expected in (
        "A long headline on model routers", f"ID:            {ids['router']}", "Status:        Enriched",
        "Link:          https://example.com/router", "Published:     2024-05-01", "Added:         2024-06-01 09:00 UTC",
        "Content type:  Vendor Capability", "AI primitives: Automation, Coding", "Vendor:        Acme",
        "Executive summary\n  Acme ships a model router", "Summary\n  Summary: Acme ships",
        "Key insights\n  • Routing cut costs by 30%.\n  • Latency stayed flat.",
    ):
        assert expected in out
    assert "Zeppelin" not in out and "Full text" not in out
    assert "Zeppelin appears only here" in cli("show", ids["router"], "--raw", **env).out


def test_warnings_of_a_partial_read_are_shown(cli: Cli, library: tuple[dict, dict]) -> None:
    ids, env = library
    assert f"Warnings\n  - {WARNING}" in cli("show", ids["report"], **env).out
    assert json.loads(cli("show", ids["report"], "--json", **env).out)["warnings"] == [WARNING]
    listed = {i["id"]: i["warnings"] for i in json.loads(cli("list", "--json", **env).out)}
    assert listed[ids["report"]] == [WARNING] and listed[ids["agents"]] == []


def test_a_failed_item_shows_its_error_and_a_prefix_is_enough(cli: Cli, library: tuple[dict, dict]) -> None:
    ids, env = library
    done = cli("show", ids["failed"][:6], **env)
    assert done.code == 0 and "Error\n  HTTP 404 from example.com: the page does not exist any more" in done.out


def test_json_carries_properties_and_body(cli: Cli, library: tuple[dict, dict]) -> None:
    ids, env = library
    record = json.loads(cli("show", ids["agents"], "--json", "--raw", **env).out)
    assert record["id"] == ids["agents"] and record["vendor"] == "Globex" and record["warnings"] == []
    assert record["body"] == {"summary": "Summary: Coding agents now open pull requests on their own.",
                              "executive_summary": "Coding agents now open pull requests on their own.",
                              "key_insights": ["Review time fell by half."],
                              "analyses": [{"title": "SWOT", "lines": ["S/W/O/T | Point",
                                                                       "S | agents test their own code"]},
                                           {"title": "Action Items", "lines": ["Try an agent on one repository.",
                                                                               "Measure review time."]}],
                              "text": "Full text: agentic coding tools plan, edit and test."}


def test_an_unknown_or_ambiguous_id_is_one_line(cli: Cli, library: tuple[dict, dict]) -> None:
    _, env = library
    missing = cli("show", "nope", **env)
    assert missing.code == 1 and missing.err.strip() == "show: item nope not found in the SQLite store"
    ambiguous = cli("show", "", **env)
    assert ambiguous.code == 1 and len(ambiguous.err.strip().splitlines()) == 1


def test_terminal_escapes_from_the_web_are_not_printed(cli: Cli, tmp_path: Path) -> None:
    from knowledge_pipeline.sources.sqlite import SqliteStore

    async def add() -> str:
        store = SqliteStore(tmp_path / "esc.db")
        await store.open()
        try:
            item = await store.add_enriched(
                NewItem(title="Title \x1b[2J\x1b]0;pwned\x07 end", source_type=SourceType.RSS, hash="h",
                        url="https://example.com/\x1b[31mred"),
                Enrichment("Sum\x1b[5m", "Exec \u202eevil", "Market News", ("Research",), None, ("In\x08sight",)),
                "text")
            return item.id
        finally:
            await store.close()

    item_id = asyncio.run(add())
    out = cli("show", item_id, "--raw", SOURCES_DB_PATH=str(tmp_path / "esc.db")).out
    assert "\x1b" not in out and "\x07" not in out and "\x08" not in out and "\u202e" not in out
    assert "Title [2J ]0;pwned end" in out


def test_show_and_list_on_the_notion_backend(cli: Cli) -> None:
    with start_fake_notion(rps=None) as fake:
        store, _ = notion_store(fake)

        async def fill() -> list[str]:
            await store.open()
            try:
                first = await store.add(NewItem("Older", SourceType.RSS, "h-old", url="https://example.com/old"))
                second = await store.add_enriched(
                    NewItem("Newer", SourceType.RSS, "h-new", url="https://example.com/new",
                            created_date=date(2024, 3, 1)),
                    Enrichment("Long summary.", "Short executive summary.", "Market News", ("Research",), "Acme",
                               ("One insight.",)), "The whole text.")
                return [first.id, second.id]
            finally:
                await store.close()

        older, newer = asyncio.run(fill())
        env = dict(NOTION_TOKEN=fake.token, NOTION_SOURCES_DB=fake.database_id, NOTION_BASE_URL=fake.url,
                   NOTION_MAX_RPS="1000", PARALLEL_RATE_LIMIT="0")
        listed = cli("list", "--json", **env)
        assert listed.code == 0, listed.err
        assert [i["id"] for i in json.loads(listed.out)] == [newer, older], "newest first on Notion too"
        limited = cli("list", "--limit", "1", **env)
        assert limited.out.splitlines()[-1] == "1 of 2 items: 1 Enriched"
        shown = cli("show", newer.replace("-", "")[:8], "--raw", **env)
        assert shown.code == 0, shown.err
        for expected in ("Newer", "Vendor:        Acme", "Executive summary\n  Short executive summary.",
                         "Summary\n  Long summary.", "Key insights\n  • One insight.", "Full text\n  The whole text."):
            assert expected in shown.out
        assert cli("show", "0" * 32, **env).err.strip().startswith("show: item 00000000")
