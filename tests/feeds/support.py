"""Feed capture against the fake feed server: the real Fetcher, a real SQLite store, a real state file."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from knowledge_pipeline.capture import CaptureReport
from knowledge_pipeline.capture.feeds import capture_feeds
from knowledge_pipeline.capture.known import KnownHashes
from knowledge_pipeline.extract.fetch import Fetcher
from knowledge_pipeline.feeds.opml import FeedSpec, render_opml
from knowledge_pipeline.models import Item
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.extract.support import Recorder, make_gateway, make_settings, make_telemetry
from tests.fakes.feed_server import FakeFeedServer

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


class CountingStore(SqliteStore):
    """The SQLite store, counting every request made to it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: Counter[str] = Counter()

    async def known_hashes(self) -> set[str]:
        self.calls["known_hashes"] += 1
        return await super().known_hashes()

    async def add(self, item: Any) -> Item:
        self.calls["add"] += 1
        return await super().add(item)


@dataclass
class Poll:
    reports: list[CaptureReport]
    items: list[Item]
    events: Recorder
    store_calls: Counter[str]

    def statuses(self) -> list[str]:
        return [event["status"] for event in self.events.of("capture_complete") if event.get("kind") == "feed"]


def write_list(tmp_path: Path, feeds: list[FeedSpec]) -> Path:
    path = tmp_path / "feeds.opml"
    path.write_bytes(render_opml(feeds))
    return path


def poll(
    tmp_path: Path,
    server: FakeFeedServer | None,
    feeds: list[str] = (),  # type: ignore[assignment]
    *,
    now: datetime = NOW,
    dry_run: bool = False,
    retries: int = 0,
    **env: Any,
) -> Poll:
    """One feed capture run (``RSS_FEEDS=feeds``; a feeds.opml in tmp_path is the feed list)."""
    env.setdefault("allow_private_urls", "true")
    env.setdefault("rss_window_days", "0")
    env.setdefault("feed_state_path", str(tmp_path / "feeds.db"))
    env.setdefault("sources_db_path", str(tmp_path / "sources.db"))
    if (tmp_path / "feeds.opml").exists():
        env.setdefault("feeds_file", str(tmp_path / "feeds.opml"))
    settings = make_settings(rss_feeds=",".join(feeds), **env)
    telemetry, recorder = make_telemetry()

    async def run() -> Poll:
        store = CountingStore(settings.sources_db_path)
        await store.open()
        options = {"resolver": server.resolver} if server is not None else {}
        fetcher = Fetcher(settings, make_gateway(telemetry, retries=retries), **options)
        try:
            reports = await capture_feeds(settings, store, fetcher, telemetry, known_hashes=KnownHashes(store),
                                          dry_run=dry_run, now=now)
            calls = Counter(store.calls)
            return Poll(reports, [item async for item in store.list_items()], recorder, calls)
        finally:
            await fetcher.close()
            await store.close()

    return asyncio.run(run())
