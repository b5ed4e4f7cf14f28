"""Concurrent feed reading: FEED_CONCURRENCY in all, never more than two requests to one host."""

from __future__ import annotations

import asyncio

from knowledge_pipeline.capture.feeds import capture_feeds
from knowledge_pipeline.capture.known import KnownHashes
from knowledge_pipeline.extract.fetch import Fetcher
from knowledge_pipeline.feeds.gate import HostGate
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.extract.support import make_gateway, make_settings, make_telemetry
from tests.fakes.feed_server import FakeFeedServer, rss_document
from tests.feeds.support import NOW, poll


def test_feeds_are_read_concurrently_but_at_most_two_per_host(tmp_path):
    with FakeFeedServer(latency=0.1) as server:
        shared = [server.feed("big.test", f"/feed{n}", rss_document("big.test", 1, version=n)) for n in range(10)]
        single = [server.feed(f"site{n}.test", "/rss", rss_document(f"site{n}.test", 1)) for n in range(8)]
        result = poll(tmp_path, server, shared + single, feed_concurrency="5")
        stats = server.stats()
    assert stats["hosts"]["big.test"]["max_in_flight"] == 2, "two at a time on the shared host, not more"
    assert stats["max_in_flight_per_host"] == 2
    assert 3 <= stats["max_in_flight"] <= 5, "several hosts at once, FEED_CONCURRENCY at most"
    assert result.statuses().count("ok") == 18 and len(result.items) == 18


def test_one_at_a_time_when_feed_concurrency_is_1(tmp_path):
    with FakeFeedServer(latency=0.02) as server:
        feeds = [server.feed(f"site{n}.test", "/rss", rss_document(f"site{n}.test", 1)) for n in range(6)]
        poll(tmp_path, server, feeds, feed_concurrency="1")
        assert server.stats()["max_in_flight"] == 1


def test_each_feed_is_handed_over_as_soon_as_it_is_done(tmp_path):
    """A slow feed does not hold back the others' new items (capture and enrichment can overlap): each item
    reaches the store's ``add`` (in enrich-first, the engine's queue) while the slow feed still loads."""
    with FakeFeedServer() as server:
        slow = server.feed("slow.test", "/rss", rss_document("slow.test", 2))
        server.slow("slow.test", 1.5)
        fast = [server.feed(f"fast{n}.test", "/rss", rss_document(f"fast{n}.test", 2)) for n in range(3)]
        settings = make_settings(allow_private_urls="true", rss_window_days="0", feed_state_path=str(tmp_path / "f.db"),
                                 rss_feeds=",".join([slow, *fast]))
        telemetry, _ = make_telemetry()
        handed: list[tuple[str, int]] = []

        class Watching(SqliteStore):
            async def add(self, item):
                handed.append((item.url.split("/")[2].split(":")[0],
                               server.stats()["hosts"]["slow.test"]["statuses"].get(200, 0)))
                return await super().add(item)

        async def run() -> list[str]:
            store = Watching(tmp_path / "sources.db")
            await store.open()
            fetcher = Fetcher(settings, make_gateway(telemetry, retries=0), resolver=server.resolver)
            try:
                reports = await capture_feeds(settings, store, fetcher, telemetry, known_hashes=KnownHashes(store),
                                              now=NOW)
            finally:
                await fetcher.close()
                await store.close()
            return [report.source for report in reports]

        sources = asyncio.run(run())
    assert sources == [slow, *fast], "the reports still come back in the configured order"
    assert len(handed) == 8 and {host for host, _ in handed[:6]} == {"fast0.test", "fast1.test", "fast2.test"}
    assert all(slow_done == 0 for _, slow_done in handed[:6]), "the fast feeds' items were handed over first"


def test_the_gate_takes_a_host_turn_before_a_shared_slot():
    async def run() -> tuple[int, int]:
        gate = HostGate(3, per_host=2)
        active: dict[str, int] = {}
        peak = {"all": 0, "host": 0}

        async def work(host: str) -> None:
            async with gate.slot(host):
                active[host] = active.get(host, 0) + 1
                peak["host"] = max(peak["host"], active[host])
                peak["all"] = max(peak["all"], sum(active.values()))
                await asyncio.sleep(0.01)
                active[host] -= 1

        await asyncio.gather(*(work("a") for _ in range(6)), *(work(f"h{n}") for n in range(4)))
        return peak["all"], peak["host"]

    assert asyncio.run(run()) == (3, 2)


def test_a_shutdown_request_starts_no_new_feed(tmp_path):
    with FakeFeedServer() as server:
        feeds = [server.feed(f"site{n}.test", "/rss", rss_document(f"site{n}.test", 1)) for n in range(5)]
        settings = make_settings(allow_private_urls="true", feed_state_path=str(tmp_path / "f.db"),
                                 rss_feeds=",".join(feeds))
        telemetry, recorder = make_telemetry()

        async def run() -> None:
            store = SqliteStore(tmp_path / "sources.db")
            await store.open()
            fetcher = Fetcher(settings, make_gateway(telemetry, retries=0), resolver=server.resolver)
            stop = asyncio.Event()
            stop.set()
            try:
                await capture_feeds(settings, store, fetcher, telemetry, known_hashes=KnownHashes(store), stop=stop)
            finally:
                await fetcher.close()
                await store.close()

        asyncio.run(run())
        assert server.stats()["requests"] == 0
    complete = recorder.of("capture_complete")
    assert [(c["status"], c["source_failed"]) for c in complete] == [("cancelled", None)] * 5
