"""One run in process against the fake Notion: what a run costs in requests before any item."""

from __future__ import annotations

import asyncio
from pathlib import Path

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.runner import EXIT_OK, FEED_TYPES, PDF_TYPES, RunOptions, run_async
from knowledge_pipeline.telemetry import Telemetry

from .extract.support import Recorder
from .fakes.notion_server import start_fake_notion
from .fakes.web_server import FakeWebServer


def test_no_hash_query_when_there_is_nothing_to_capture(tmp_path: Path):
    """Loading the known hashes reads the whole database: pointless when RSS_FEEDS is empty."""
    with start_fake_notion(database="full", rps=None) as notion:
        notion.seed_inbox(250, source_type="PDF")
        settings = load_settings(
            {"SOURCES_BACKEND": "notion", "NOTION_TOKEN": notion.token, "NOTION_SOURCES_DB": notion.database_id,
             "NOTION_BASE_URL": notion.url, "PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000",
             "JOURNAL_PATH": str(tmp_path / "journal.db"), "LOG_DIR": str(tmp_path / "logs")},
            env_file=None,
        )
        options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="feeds")
        result = asyncio.run(run_async(settings, options, Telemetry("test")))
        queries = notion.stats()["by_endpoint"].get("data_sources.query", 0)
    assert result.exit_code == EXIT_OK
    assert queries == 2, "one count query and one Inbox query (no matching RSS/Website items), no hash scan"


def run_on(notion, tmp_path: Path, capture: str, **extra: str) -> tuple[int, Recorder]:
    settings = load_settings(
        {"SOURCES_BACKEND": "notion", "NOTION_TOKEN": notion.token, "NOTION_SOURCES_DB": notion.database_id,
         "NOTION_BASE_URL": notion.url, "PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000",
         "JOURNAL_PATH": str(tmp_path / "journal.db"), "ALERT_FAILURE_RATE": "1", "ALLOW_PRIVATE_URLS": "true",
         **extra},
        env_file=None,
    )
    telemetry, recorder = Telemetry("test"), Recorder()
    telemetry.add_observer(recorder)
    options = RunOptions(script="test", source_types=FEED_TYPES if capture == "feeds" else PDF_TYPES,
                         capture=capture)
    return asyncio.run(run_async(settings, options, telemetry)).exit_code, recorder


def test_inbox_pages_with_nothing_to_read_are_failed_with_the_reason(tmp_path: Path):
    """No Article URL (RSS, Website), no PDF location, or no Source Type at all: Failed, logged, not ignored."""
    with start_fake_notion(database="full", rps=None) as notion, FakeWebServer() as web:
        web.page("/ok", "<html><body><article>" + "<p>Agents and models shipped this week. </p>" * 30
                 + "</article></body></html>")
        notion.seed([
            {"Title": "rss without url", "Status": "Inbox", "Source Type": "RSS", "Hash": "a"},
            {"Title": "website without url", "Status": "Inbox", "Source Type": "Website", "Hash": "b"},
            {"Title": "pdf without location", "Status": "Inbox", "Source Type": "PDF", "Hash": "c"},
            {"Title": "no source type", "Status": "Inbox", "Hash": "d"},
            {"Title": "healthy", "Status": "Inbox", "Source Type": "RSS", "Article URL": f"{web.url}/ok", "Hash": "e"},
        ])
        feeds, feed_events = run_on(notion, tmp_path, "feeds")
        feed_queries = notion.stats()["by_endpoint"]["data_sources.query"]
        pdfs, _ = run_on(notion, tmp_path, "pdfs")
        rows = {notion.values(p["id"])["Title"]: notion.values(p["id"]) for p in notion.pages()}
    assert (feeds, pdfs) == (EXIT_OK, EXIT_OK)
    assert {title: row["Status"] for title, row in rows.items()} == {
        "rss without url": "Failed", "website without url": "Failed", "pdf without location": "Failed",
        "no source type": "Failed", "healthy": "Enriched"}
    assert all("nothing to extract" in rows[t]["Error"] for t in rows if t != "healthy")
    assert {e["title"] for e in feed_events.of("item_error")} == {"rss without url", "website without url",
                                                                   "no source type"}
    assert feed_queries == 2, "one count and one Inbox query: no request per healthy item to find the broken ones"
