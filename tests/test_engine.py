"""The scheduler: bounded memory, isolation of failures, shutdown, sequential == parallel."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


from knowledge_pipeline.budget import Budget
from knowledge_pipeline.config import load_settings
from knowledge_pipeline.engine import ParallelEnricher
from knowledge_pipeline.enrichers.local import LocalEnricher
from knowledge_pipeline.errors import ExtractionError, ServiceError
from knowledge_pipeline.extract import TextExtractor
from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import Item, NewItem, SourceType, Status, Taxonomy, sha256_text
from knowledge_pipeline.processing import Deps
from knowledge_pipeline.services import RetryPolicy, ServiceGateway
from knowledge_pipeline.sources.sqlite import SqliteStore
from knowledge_pipeline.telemetry import RunMetrics, Telemetry
from knowledge_pipeline.extract import Extracted

from .conftest import ROOT, clean_env
from .prose import sentences

ARTICLE = (
    "NVIDIA announced a new inference chip on March 3, 2026. The chip doubles throughput for large "
    "language models. Analysts expect strong demand from cloud providers in the next quarter. "
    "Microsoft and Google are among the first customers according to the company. "
    "The release also includes software for automation of data center workflows. "
    "Pricing was not disclosed but shipments start in the second half of the year."
)


class CountingInbox:
    """An Inbox of ``total`` items generated lazily; records how many were pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def stream(self):
        for n in range(self.total):
            self.pulled += 1
            yield Item(id=f"i{n}", title=f"Item {n}", source_type=SourceType.RSS, content=ARTICLE)


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self.enriched: dict[str, object] = {}
        self.failed: dict[str, str] = {}

    async def write_enrichment(self, item, enrichment, text, *, repair=False):
        self.enriched[item.id] = enrichment

    async def mark_failed(self, item, reason):
        self.failed[item.id] = reason


class FakeExtractor:
    def __init__(self, fail_ids=(), delay: float = 0.0) -> None:
        self.fail_ids = set(fail_ids)
        self.delay = delay

    async def read(self, item: Item, *, title: bool = False) -> Extracted:
        if self.delay:
            await asyncio.sleep(self.delay)
        if item.id in self.fail_ids:
            raise ExtractionError(f"no article text found for {item.id}")
        return Extracted(item.content or "")


def memory_deps(tmp_path: Path, extractor=None, store=None) -> Deps:
    journal = Journal(tmp_path / "journal.db")
    journal.open()
    return Deps(store or MemoryStore(), LocalEnricher(), extractor or FakeExtractor(), journal,
                Telemetry("test"), Taxonomy())


def test_a_huge_inbox_is_pulled_as_workers_free_up_never_materialised(tmp_path: Path):
    inbox = CountingInbox(100_000)
    deps = memory_deps(tmp_path)
    metrics = RunMetrics()
    deps.telemetry.add_observer(metrics)
    stop = asyncio.Event()
    pulled_when_stopped = []

    def stop_after_200(event_type: str, data: dict) -> None:
        if event_type == "item_complete" and metrics.succeeded == 200 and not stop.is_set():
            pulled_when_stopped.append(inbox.pulled)
            stop.set()

    deps.telemetry.add_observer(stop_after_200)
    engine = ParallelEnricher(deps, max_workers=8, metrics=metrics, stop=stop)
    asyncio.run(engine.run(inbox.stream(), inbox.total))
    assert pulled_when_stopped[0] <= 200 + 2 * 8 + 1, "only a bounded queue ahead of the workers"
    assert inbox.pulled < 300


def test_one_failing_item_never_stops_the_others(tmp_path: Path):
    inbox = CountingInbox(30)
    store = MemoryStore()
    deps = memory_deps(tmp_path, extractor=FakeExtractor(fail_ids={"i3", "i17"}), store=store)
    metrics = RunMetrics()
    deps.telemetry.add_observer(metrics)
    asyncio.run(ParallelEnricher(deps, max_workers=4, metrics=metrics).run(inbox.stream(), 30))
    assert set(store.failed) == {"i3", "i17"}
    assert "no article text" in store.failed["i3"]
    assert len(store.enriched) == 28
    assert metrics.summary()["items_failed"] == 2


def test_workers_really_run_concurrently(tmp_path: Path):
    inbox = CountingInbox(20)
    deps = memory_deps(tmp_path, extractor=FakeExtractor(delay=0.05))
    started = time.monotonic()
    asyncio.run(ParallelEnricher(deps, max_workers=10).run(inbox.stream(), 20))
    assert time.monotonic() - started < 20 * 0.05 / 2


def test_budget_exhausted_stops_new_items(tmp_path: Path):
    inbox = CountingInbox(50)
    store = MemoryStore()
    deps = memory_deps(tmp_path, store=store)
    budget = Budget(0.01)
    seen = []
    deps.telemetry.add_observer(lambda e, d: seen.append(e))
    deps.telemetry.add_observer(lambda e, d: budget.add(0.004) if e == "item_complete" else None)
    result = asyncio.run(ParallelEnricher(deps, max_workers=1, budget=budget).run(inbox.stream(), 50, mode="sequential"))
    assert result.budget_exhausted and "budget_exhausted" in seen
    assert len(store.enriched) == 3


class RateLimitedReads:
    """Reads each item through the gateway; the first attempt for the ids in ``limited`` is a 429 (Retry-After 0.5 s).

    ``most`` is the largest number of items reading at once, the Retry-After waits included.
    """

    def __init__(self, limited: set[str]) -> None:
        self.gateway = ServiceGateway(Telemetry("test"), spacing=0.0, notion_max_rps=None,
                                      retry=RetryPolicy(retries=2))
        self.limited = set(limited)
        self.active = self.most = 0

    async def read(self, item: Item, *, title: bool = False) -> Extracted:
        async def fetch() -> Extracted:
            if item.id in self.limited:
                self.limited.discard(item.id)
                raise ServiceError("web", "web: too many requests (429)", status_code=429, retryable=True,
                                   retry_after=0.5)
            await asyncio.sleep(0.05)
            return Extracted(item.content or "")

        self.active += 1
        self.most = max(self.most, self.active)
        try:
            return await self.gateway.call("web", "GET", fetch, classify=lambda exc: ServiceError("web", str(exc)))
        finally:
            self.active -= 1


def _run_limited(tmp_path: Path, limited: set[str], mode: str, items: int = 8) -> tuple[RateLimitedReads, MemoryStore]:
    reads, store = RateLimitedReads(limited), MemoryStore()
    asyncio.run(ParallelEnricher(memory_deps(tmp_path, extractor=reads, store=store), max_workers=4)
                .run(CountingInbox(items).stream(), items, mode=mode))
    return reads, store


def test_an_item_waiting_out_a_429_lends_its_slot_to_the_next_item(tmp_path: Path):
    """Every one of 20 items gets a 429 asking for 0.5 s: while they wait, more start, up to twice the workers."""
    reads, store = _run_limited(tmp_path, {f"i{n}" for n in range(20)}, "parallel", items=20)
    assert len(store.enriched) == 20 and not store.failed
    assert reads.most == 8, "waiting items lend their slots, and no more than twice the workers' items run at once"


def test_without_429s_or_in_sequential_mode_no_slot_is_lent(tmp_path: Path):
    (tmp_path / "p").mkdir()
    (tmp_path / "s").mkdir()
    plain, _ = _run_limited(tmp_path / "p", set(), "parallel")
    sequential, store = _run_limited(tmp_path / "s", {"i0", "i1"}, "sequential")
    assert plain.most == 4
    assert sequential.most == 1 and len(store.enriched) == 8


async def _fill_store(store: SqliteStore, n: int) -> None:
    await store.open()
    for i in range(n):
        text = ARTICLE.replace("NVIDIA", ["NVIDIA", "OpenAI", "Anthropic"][i % 3]) + f" Item number {i}."
        await store.add(NewItem(title=f"Article {i}", source_type=SourceType.RSS, hash=sha256_text(f"h{i}"),
                                url=f"https://example.com/{i}", content=text))


async def _run_mode(path: Path, mode: str, n: int) -> list[tuple]:
    settings = load_settings({}, env_file=None)
    store = SqliteStore(path / "sources.db")
    await _fill_store(store, n)
    journal = Journal(path / "journal.db")
    journal.open()
    telemetry = Telemetry("test")
    deps = Deps(store, LocalEnricher(), TextExtractor(settings, ServiceGateway(telemetry)), journal, telemetry,
                await store.taxonomy())
    await ParallelEnricher(deps, max_workers=5).run(store.inbox(), n, mode=mode)
    rows = []
    async for item in store.list_items():
        rows.append((item.title, item.status, item.summary, item.content_type, item.ai_primitives, item.vendor,
                     item.created_date, tuple(sorted((await store.body(item.id)).items()))))
    await store.close()
    return sorted(rows)


def test_sequential_and_parallel_store_identical_results(tmp_path: Path):
    (tmp_path / "s").mkdir()
    (tmp_path / "p").mkdir()
    sequential = asyncio.run(_run_mode(tmp_path / "s", "sequential", 12))
    parallel = asyncio.run(_run_mode(tmp_path / "p", "parallel", 12))
    assert sequential == parallel
    assert all(row[1] is Status.ENRICHED for row in parallel)


class _SlowArticles(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 0.3

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        time.sleep(self.delay)
        own = sentences(sum(map(ord, self.path)) * 31 + len(self.path), 6)  # each post its own text (no duplicates)
        body = f"<html><body><article><h1>Post</h1><p>{ARTICLE}</p><p>{own} {self.path}</p></article></body></html>"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_sigterm_finishes_in_flight_items_and_leaves_the_rest_in_inbox(tmp_path: Path):
    """A real enhanced run as a process; SIGTERM mid-run; summary written, exit non-zero."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowArticles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    feed = tmp_path / "feed.xml"
    entries = "".join(f"<item><title>Post {i}</title><link>{base}/p{i}</link></item>" for i in range(40))
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>t</title><link>https://example.com</link><description>d</description>{entries}</channel></rss>"
    )
    env = clean_env(
        RSS_FEEDS=str(feed), RSS_WINDOW_DAYS="0", LOG_DIR=str(tmp_path / "logs"),
        SOURCES_DB_PATH=str(tmp_path / "sources.db"), JOURNAL_PATH=str(tmp_path / "journal.db"),
        PARALLEL_MAX_WORKERS="2", PARALLEL_RATE_LIMIT="0", SHUTDOWN_GRACE_SECONDS="5",
        ALLOW_PRIVATE_URLS="true",
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "enrich_rss_enhanced.py"), "--parallel"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    log = tmp_path / "logs" / "pipeline.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count('"item_complete"') >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    server.shutdown()
    server.server_close()
    assert proc.returncode == 130, err
    from .conftest import events, list_items, pending_titles

    summaries = events(tmp_path / "logs", "pipeline_summary")
    assert len(summaries) == 1
    statuses = [i["status"] for i in list_items(tmp_path, env)]
    assert statuses.count("Enriched") == summaries[0]["metrics"]["items_processed"]
    left = statuses.count("Inbox") + len(pending_titles(tmp_path / "journal.db"))
    assert 0 < left and statuses.count("Failed") == 0, "the rest waits for the next run (enrich-first: in the journal)"
    assert events(tmp_path / "logs", "shutdown_requested")
