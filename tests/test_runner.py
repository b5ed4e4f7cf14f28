"""One run in process against the fake Notion: what a run costs in requests before any item."""

from __future__ import annotations

import asyncio
from pathlib import Path

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.runner import EXIT_OK, FEED_TYPES, RunOptions, run_async
from knowledge_pipeline.telemetry import Telemetry

from .fakes.notion_server import start_fake_notion


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
