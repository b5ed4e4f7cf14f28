"""One run in process against the fake Notion: what a run costs in requests before any item."""

from __future__ import annotations

import asyncio
from pathlib import Path

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.feeds.opml import FeedSpec, render_opml
from knowledge_pipeline.runner import EXIT_FAILED, EXIT_OK, FEED_TYPES, RunOptions, run_async
from knowledge_pipeline.telemetry import Telemetry

from .conftest import run_in_process
from .extract.support import Recorder
from .fakes.feed_server import FakeFeedServer, rss_document
from .fakes.notion_server import start_fake_notion
from .fakes.web_server import FakeWebServer


def test_no_hash_query_when_there_is_nothing_to_capture(tmp_path: Path):
    """Loading the known hashes reads the whole database: pointless when RSS_FEEDS is empty."""
    with start_fake_notion(database="full", rps=None) as notion:
        notion.seed_inbox(250, source_type="PDF")
        settings = load_settings(
            {**notion.env(), "PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000",
             "JOURNAL_PATH": str(tmp_path / "journal.db"), "LOG_DIR": str(tmp_path / "logs")},
            env_file=None,
        )
        options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="feeds")
        result = asyncio.run(run_async(settings, options, Telemetry("test")))
        queries = notion.stats()["by_endpoint"].get("data_sources.query", 0)
    assert result.exit_code == EXIT_OK
    assert queries == 2, "one count query and one Inbox query (no matching RSS/Website items), no hash scan"


def run_on(notion, tmp_path: Path, capture: str, **extra: str) -> tuple[int, Recorder]:
    result, recorder = run_in_process(
        {**notion.env(), "PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000",
         "JOURNAL_PATH": str(tmp_path / "journal.db"), "ALERT_FAILURE_RATE": "1", "ALLOW_PRIVATE_URLS": "true",
         **extra},
        capture=capture,
    )
    return result.exit_code, recorder


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
def _feed_settings(tmp_path: Path, feeds: list[str], **extra: str):
    if not (tmp_path / "feeds.opml").exists():
        (tmp_path / "feeds.opml").write_bytes(render_opml([]))
    return load_settings(
        {"RSS_FEEDS": ",".join(feeds), "RSS_WINDOW_DAYS": "0", "ALLOW_PRIVATE_URLS": "true", "RETRY_ATTEMPTS": "0",
         "SOURCES_DB_PATH": str(tmp_path / "sources.db"), "JOURNAL_PATH": str(tmp_path / "journal.db"),
         "FEED_STATE_PATH": str(tmp_path / "feeds.db"), "LOG_DIR": str(tmp_path / "logs"),
         "FEEDS_FILE": str(tmp_path / "feeds.opml"), **extra},
        env_file=None,
    )


def _run_feeds(settings) -> tuple[int, dict, list[tuple[str, dict]]]:
    events: list[tuple[str, dict]] = []
    telemetry = Telemetry("test")
    telemetry.add_observer(lambda kind, data: events.append((kind, data)))
    options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="feeds")
    result = asyncio.run(run_async(settings, options, telemetry))
    return result.exit_code, result.metrics, events


def test_a_run_in_which_every_feed_failed_exits_1_and_alerts(tmp_path: Path):
    with FakeFeedServer() as server:
        feeds = [server.gone("127.0.0.1", "/gone"), server.url("127.0.0.1", "/missing")]
        code, metrics, events = _run_feeds(_feed_settings(tmp_path, feeds))
        server.feed("127.0.0.1", "/missing", rss_document("news.test", 2))
        later = _run_feeds(_feed_settings(tmp_path, feeds))
    assert code == EXIT_FAILED
    assert (metrics["feeds_failing"], metrics["feeds_ok"], metrics["sources_total"], metrics["sources_failed"]) == (
        2, 0, 2, 2)
    alerts = [data for kind, data in events if kind == "alert"]
    assert len(alerts) == 1 and "every configured source failed (2 feed(s) failing)" in alerts[0]["reason"]
    assert later[0] == EXIT_FAILED, "the next run, with both feeds still backing off, still counts them as failing"


def test_one_working_feed_is_enough_for_a_successful_run(tmp_path: Path):
    with FakeFeedServer() as server:
        feeds = [server.gone("127.0.0.1", "/gone"), server.feed("127.0.0.1", "/rss", rss_document("news.test", 2, full_text=True))]
        code, metrics, events = _run_feeds(_feed_settings(tmp_path, feeds))
        again = _run_feeds(_feed_settings(tmp_path, feeds))
    assert code == EXIT_OK and metrics["feeds_ok"] == 1 and metrics["feeds_failing"] == 1
    assert not [kind for kind, _ in events if kind == "alert"]
    assert again[0] == EXIT_OK and again[1]["feeds_not_modified"] == 1 and again[1]["items_processed"] == 0


def test_all_feeds_unchanged_costs_no_notion_request_for_capture(tmp_path: Path):
    """A 304 for every feed: no hash scan, no page created; only the Inbox count and query."""
    with start_fake_notion(database="full", rps=None) as notion, FakeFeedServer() as server:
        feeds = [server.feed("127.0.0.1", f"/feed{n}", rss_document(f"site{n}.test", 3, full_text=True))
                 for n in range(3)]
        notion_env = {**notion.env(), "PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000"}
        (tmp_path / "feeds.opml").write_bytes(render_opml([FeedSpec(feeds[0], category="Chips")]))
        first = _run_feeds(_feed_settings(tmp_path, feeds[1:], **notion_env))
        before = notion.stats()["by_endpoint"]
        second = _run_feeds(_feed_settings(tmp_path, feeds[1:], **notion_env))
        after = notion.stats()["by_endpoint"]
        categories = sorted(str(notion.values(page["id"]).get("Category")) for page in notion.pages())
    assert first[0] == EXIT_OK and first[1]["feeds_ok"] == 3 and before.get("pages.create") == 9
    assert second[0] == EXIT_OK and second[1]["feeds_not_modified"] == 3
    spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    assert spent == {"databases.retrieve": 1, "data_sources.retrieve": 1, "data_sources.query": 2}, (
        "opening the store, the Inbox count and the Inbox query: nothing for capture"
    )
    assert categories == ["Chips"] * 3 + ["None"] * 6


def test_a_write_confirmed_only_in_the_store_leaves_no_journal_row_behind(tmp_path: Path):
    """A kill between the store's commit and the journal's confirmation left a 'writing' row for an item that
    is Enriched and never comes back through the Inbox; the next run drops it, and keeps the rows still needed."""
    from knowledge_pipeline.journal import Journal
    from knowledge_pipeline.models import Enrichment

    with start_fake_notion(database="full", rps=None) as notion:
        enriched, failed, elsewhere = notion.seed([
            {"Title": "written before the kill", "Status": "Enriched", "Source Type": "RSS", "Hash": "a"},
            {"Title": "failed mid-write", "Status": "Failed", "Source Type": "RSS", "Hash": "b"},
            {"Title": "set aside by hand", "Status": "Reading list", "Source Type": "RSS", "Hash": "c"},
        ])
        gone = "0" * 31 + "1"
        journal = Journal(tmp_path / "journal.db")
        journal.open()
        for page in (enriched, failed, elsewhere, gone):
            journal.record_enrichment(page, Enrichment("kept", "kept", "Article", (), None, ()))
            journal.mark_writing(page)
        journal.close()
        code, _ = run_on(notion, tmp_path, "feeds")
        reads = notion.stats()["by_endpoint"].get("pages.retrieve", 0)
        again, _ = run_on(notion, tmp_path, "feeds")
        reads_again = notion.stats()["by_endpoint"].get("pages.retrieve", 0) - reads
        statuses = {notion.values(p["id"])["Title"]: notion.values(p["id"])["Status"] for p in notion.pages()}
    journal = Journal(tmp_path / "journal.db")
    journal.open()
    left = sorted(journal.db.execute("SELECT item_id, writing FROM steps").fetchall())
    journal.close()
    assert (code, again) == (EXIT_OK, EXIT_OK)
    assert left == sorted([(failed, 1), (elsewhere, 1)]), \
        "a Failed page, or one given a Status of the user's, keeps its paid enrichment; only a gone page loses it"
    assert reads == 4 and reads_again == 0, "each row read back once, not on every run"
    assert statuses == {"written before the kill": "Enriched", "failed mid-write": "Failed",
                        "set aside by hand": "Reading list"}
