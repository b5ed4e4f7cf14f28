"""The report's feeds section, from the log of real feed runs."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.logging_setup import setup_logging
from knowledge_pipeline.report import build_runs, read_events, render_html, render_text, report_data
from knowledge_pipeline.runner import EXIT_OK, FEED_TYPES, RunOptions, run_async
from knowledge_pipeline.telemetry import Telemetry
from tests.fakes.feed_server import FakeFeedServer, rss_document


@pytest.fixture
def logged_runs(tmp_path: Path):
    """Two runs of the RSS script on a fresh stale feed and a gone one; returns (runs, ok url, gone url)."""
    old = datetime.now(timezone.utc) - timedelta(days=90)
    with FakeFeedServer() as server:
        ok = server.feed("127.0.0.1", "/rss", rss_document("news.test", 2, newest=old, full_text=True))
        gone = server.gone("127.0.0.1", "/gone")
        settings = load_settings(
            {"RSS_FEEDS": f"{ok},{gone}", "RSS_WINDOW_DAYS": "0", "ALLOW_PRIVATE_URLS": "true",
             "FEED_MAX_ERRORS": "1", "RETRY_ATTEMPTS": "0", "LOG_DIR": str(tmp_path / "logs"),
             "SOURCES_DB_PATH": str(tmp_path / "sources.db"), "JOURNAL_PATH": str(tmp_path / "journal.db"),
             "FEED_STATE_PATH": str(tmp_path / "feeds.db"), "FEEDS_FILE": str(tmp_path / "none.opml")},
            env_file=None,
        )
        (tmp_path / "none.opml").write_text("<opml version='2.0'><body/></opml>")
        setup_logging(settings, console="none")
        try:
            for _ in range(2):
                options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="feeds")
                assert asyncio.run(run_async(settings, options, Telemetry("enrich_rss_enhanced"))).exit_code == EXIT_OK
        finally:
            for handler in list(logging.getLogger().handlers):
                logging.getLogger().removeHandler(handler)
                handler.close()
    events, _ = read_events(tmp_path / "logs")
    return build_runs(events), ok, gone


def test_each_run_shows_its_feeds_and_the_section_lists_those_needing_attention(logged_runs):
    runs, ok, gone = logged_runs
    text = render_text(runs)
    assert "feeds: 1 ok, 1 paused" in text and "feeds: 1 not modified, 1 paused" in text
    assert "Feeds (latest state in the shown runs): 2 feeds, 1 not modified, 1 paused; 1 stale" in text
    lines = text.splitlines()
    paused = next(line for line in lines if line.strip().startswith("paused"))
    assert gone in paused and f"1 error(s): HTTP 410 for {gone}" in paused
    assert any(line.strip().startswith("stale (not modified)") and ok in line for line in lines)


def test_json_and_html_have_every_feed(logged_runs):
    runs, ok, gone = logged_runs
    feeds = report_data(runs)["feeds"]
    assert [(f["source"], f["status"], f["added"], f["stale"]) for f in feeds] == [
        (gone, "paused", 0, False), (ok, "not_modified", 2, True)]
    assert report_data(runs)["runs"][0]["feeds"] == {"ok": 1, "not_modified": 0, "failing": 0, "paused": 1,
                                                      "deferred": 0}
    page = render_html(runs)
    assert "<h2>Feeds</h2>" in page and "<table id='feeds'>" in page
    assert page.index(gone) < page.index(ok, page.index("<table id='feeds'>"))
