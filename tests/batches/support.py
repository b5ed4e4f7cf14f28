"""Helpers for the Batch API tests: a SQLite Inbox of items with their text, runs in process."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge_pipeline.models import NewItem, SourceType
from knowledge_pipeline.runner import FEED_TYPES, RunResult
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.conftest import run_in_process
from tests.enrichers.test_openai import long_text
from tests.prose import sentences


def article(n: int) -> str:
    return (f"Report {n} about Automation at Microsoft, published 2025-01-{n % 28 + 1:02d}. "
            f"Engineers measured a {n}% gain. Teams move pilots into production. Budgets keep growing. "
            + sentences(n, 2))


def long_article(n: int, chars: int) -> str:
    """A long document of its own (two long ones would otherwise be duplicates, skipped since issue 15)."""
    text = long_text(chars)
    return "\n\n".join(f"{part} {sentences(n * 1000 + k, 1)}" for k, part in enumerate(text.split("\n\n")))[:chars]


def seed(path: Path, count: int, *, long_every: int = 0, start: int = 0) -> list[str]:
    """``count`` Inbox items (numbered from ``start``) with their text (no fetch); every ``long_every``-th long."""
    async def main() -> list[str]:
        store = SqliteStore(path)
        await store.open()
        ids = []
        for n in range(start, start + count):
            text = long_article(n, 40_000) if long_every and n % long_every == 0 else article(n)
            item = await store.add(NewItem(f"Report {n}", SourceType.RSS, f"hash-{n}", url=f"https://example.com/{n}",
                                           content=text))
            ids.append(item.id)
        await store.close()
        return ids

    return asyncio.run(main())


def env(tmp_path: Path, fake: Any, **extra: str) -> dict[str, str]:
    return {
        **fake.env(), "OPENAI_CONTEXT_TOKENS": "128000", "PARALLEL_RATE_LIMIT": "0", "RETRY_ATTEMPTS": "1",
        "SOURCES_DB_PATH": str(tmp_path / "data" / "sources.db"), "JOURNAL_PATH": str(tmp_path / "data" / "journal.db"),
        "LOG_DIR": str(tmp_path / "logs"), **extra,
    }


@dataclass
class Run:
    result: RunResult
    events: list[tuple[str, dict]] = field(default_factory=list)

    def of(self, event_type: str) -> list[dict]:
        return [data for kind, data in self.events if kind == event_type]


def run(environment: dict[str, str], *, capture: str = "none") -> Run:
    result, recorder = run_in_process(environment, capture=capture, source_types=FEED_TYPES,
                                      script="enrich_rss_enhanced.py", parallel=True)
    return Run(result, recorder.events)


def statuses(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "data" / "sources.db") as db:
        return dict(db.execute("SELECT id, status FROM items"))


def body(tmp_path: Path, item_id: str) -> list[str]:
    with sqlite3.connect(tmp_path / "data" / "sources.db") as db:
        return [row[0] for row in db.execute("SELECT toggle FROM blocks WHERE item_id = ? ORDER BY position", (item_id,))]


def submit_backlog(settings: Any, count: int, chars: int) -> int:
    """Put ``count`` items of ``chars`` characters each into batches and submit them, with the real SDK; returns
    the bytes of their request lines. Built without the Inbox, so a large backlog is quick to make."""
    from knowledge_pipeline.batches import BatchRun
    from knowledge_pipeline.batches.state import BatchState, state_path
    from knowledge_pipeline.budget import Budget
    from knowledge_pipeline.enrichers.openai import OpenAIEnricher
    from knowledge_pipeline.errors import EnrichmentDeferred
    from knowledge_pipeline.journal import Journal
    from knowledge_pipeline.models import Item, Taxonomy
    from knowledge_pipeline.services import ServiceGateway
    from knowledge_pipeline.telemetry import Telemetry

    async def main() -> None:
        gateway, budget, journal = ServiceGateway(Telemetry("test")), Budget(), Journal(settings.journal_path)
        journal.open()
        enricher = OpenAIEnricher(settings, gateway, budget)
        batching = BatchRun(settings, gateway, budget, journal, enricher)
        await batching.begin(Taxonomy(), count)
        text = long_article(1, chars)
        for n in range(count):
            item = Item(id=f"item-{n:06d}", title=f"Item {n}", source_type=SourceType.RSS)
            try:
                await batching.enricher().enrich(item, f"Item {n}. {text}", Taxonomy())
            except EnrichmentDeferred:
                pass
        await batching.finish(submit=True)
        await batching.close()
        await enricher.close()
        journal.close()

    asyncio.run(main())
    state = BatchState(state_path(settings.journal_path))
    state.open()
    size = sum(batch.bytes for batch in state.batches())
    state.close()
    return size


def collect_batches(settings: Any, run_class: Any = None) -> list[tuple[str, dict]]:
    """A run's start (:meth:`BatchRun.begin`: poll and collect what is finished); the events it reported."""
    from knowledge_pipeline.batches import BatchRun
    from knowledge_pipeline.budget import Budget
    from knowledge_pipeline.enrichers.openai import OpenAIEnricher
    from knowledge_pipeline.journal import Journal
    from knowledge_pipeline.models import Taxonomy
    from knowledge_pipeline.services import ServiceGateway
    from knowledge_pipeline.telemetry import Telemetry

    events: list[tuple[str, dict]] = []
    telemetry = Telemetry("test")
    telemetry.add_observer(lambda kind, data: events.append((kind, data)))

    async def main() -> None:
        gateway, budget, journal = ServiceGateway(telemetry), Budget(), Journal(settings.journal_path)
        journal.open()
        enricher = OpenAIEnricher(settings, gateway, budget)
        batching = (run_class or BatchRun)(settings, gateway, budget, journal, enricher)
        await batching.begin(Taxonomy(), 0)
        await batching.close()
        await enricher.close()
        journal.close()

    asyncio.run(main())
    return events
