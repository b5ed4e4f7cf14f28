"""Calls whose answer was lost are billed: their prompt tokens count, estimated (issue 12, point 13)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.enrichers.accounting import Meter, unanswered_usage
from knowledge_pipeline.enrichers.transport import Usage
from knowledge_pipeline.models import NewItem, SourceType
from knowledge_pipeline.runner import EXIT_OK, FEED_TYPES, RunOptions, RunResult, run_async
from knowledge_pipeline.budget import Budget
from knowledge_pipeline.sources.sqlite import SqliteStore
from knowledge_pipeline.telemetry import Telemetry
from tests.enrichers.test_openai import Doc, long_text, run
from tests.fakes.openai_server import start_fake_openai


def test_a_timed_out_call_counts_its_prompt_tokens_estimated_toward_cost_and_budget() -> None:
    doc = Doc(text=long_text(12_000))
    with start_fake_openai(script=[{"latency": 1.5}]) as fake:
        r = run(fake, [doc], api_timeout=0.5)
        lost, answered = fake.requests()
    (retry,) = r.of("api_call_retry")
    (complete,) = r.calls()
    assert "timed out" in retry["error"]
    assert retry["tokens_estimated"] is True
    # the fake saw the whole request: the estimate is what the server counted, within rounding
    assert retry["prompt_tokens"] == pytest.approx(lost["usage"]["prompt_tokens"], rel=0.05)
    assert retry["completion_tokens"] == 0
    assert retry["estimated_cost_usd"] == pytest.approx(retry["prompt_tokens"] * 0.40 / 1e6)
    assert "tokens_estimated" not in complete
    assert r.budget.spent_usd == pytest.approx(retry["estimated_cost_usd"] + complete["estimated_cost_usd"])


def test_a_connection_refused_is_not_billed() -> None:
    """Nothing reached the server: no tokens, no cost."""
    with start_fake_openai() as fake:
        url = fake.url
    r = run(type("Gone", (), {"api_key": "sk-x", "url": url})(), retries=0, api_timeout=1.0)
    (error,) = r.of("api_call_error")
    assert "connection failed" in error["error"]
    assert "prompt_tokens" not in error and r.budget.spent_usd == 0


def run_long_items(tmp_path: Path, fake, items: int, **env: str) -> tuple[RunResult, list[tuple[str, dict]]]:
    """An enrich run in process over ``items`` Inbox items of 20,000 characters each, against ``fake``."""
    settings = load_settings(
        {**fake.env(), "OPENAI_CONTEXT_TOKENS": "128000", "PARALLEL_RATE_LIMIT": "0", "ALERT_FAILURE_RATE": "1",
         "SOURCES_DB_PATH": str(tmp_path / "sources.db"), "JOURNAL_PATH": str(tmp_path / "journal.db"),
         "LOG_DIR": str(tmp_path / "logs"), **env},
        env_file=None,
    )

    async def seed() -> None:
        store = SqliteStore(settings.sources_db_path)
        await store.open()
        for n in range(items):
            await store.add(NewItem(f"Item {n}", SourceType.RSS, f"h{n}", url=f"https://example.com/{n}",
                                    content=long_text(20_000)))
        await store.close()

    asyncio.run(seed())
    events: list[tuple[str, dict]] = []
    telemetry = Telemetry("test")
    telemetry.add_observer(lambda kind, data: events.append((kind, data)))
    options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="none")
    return asyncio.run(run_async(settings, options, telemetry)), events


def test_lost_answers_alone_exhaust_max_cost_and_show_in_the_summary(tmp_path: Path) -> None:
    """Every call times out: before, nothing was counted and every item was tried; now the budget stops the run."""
    with start_fake_openai(latency=1.0) as fake:
        result, events = run_long_items(tmp_path, fake, 3, API_TIMEOUT="0.3", RETRY_ATTEMPTS="1",
                                        MAX_COST_USD="0.003")
        sent = len(fake.requests())
    assert result.exit_code == EXIT_OK
    assert sent == 2, "one item, two attempts, then the budget is spent"
    assert [kind for kind, _ in events].count("budget_exhausted") == 1
    metrics = result.metrics
    assert metrics["items_failed"] == 1 and metrics["items_total"] == 3
    assert metrics["unanswered_calls"]["count"] == 2
    assert metrics["tokens"]["estimated"] == metrics["tokens"]["prompt"] > 9_000
    assert metrics["estimated_cost_usd"] == pytest.approx(metrics["unanswered_calls"]["estimated_cost_usd"])
    assert metrics["estimated_cost_usd"] > 0.003
    assert metrics["api_calls"]["openai"]["tokens"]["estimated"] == metrics["tokens"]["estimated"]


def test_a_call_cut_off_by_item_timeout_is_billed_as_sent(tmp_path: Path) -> None:
    """ITEM_TIMEOUT cancels the call while the server works on it: the provider bills it, so the run counts it."""
    with start_fake_openai(latency=2.0) as fake:
        result, events = run_long_items(tmp_path, fake, 2, API_TIMEOUT="10", ITEM_TIMEOUT="0.7", RETRY_ATTEMPTS="0")
        time.sleep(2.2)  # the fake logs a request once it has answered it
        sent = fake.requests()
    assert len(sent) == 2
    cut = [data for kind, data in events if kind == "api_call_error"]
    assert [e["error_type"] for e in cut] == ["cancelled", "cancelled"]
    assert all(e["tokens_estimated"] is True and e["service"] == "openai" for e in cut)
    server_counted = sum(rq["usage"]["prompt_tokens"] for rq in sent)
    metrics = result.metrics
    assert metrics["items_failed"] == 2
    assert metrics["unanswered_calls"]["count"] == 2
    assert metrics["unanswered_calls"]["prompt_tokens"] == pytest.approx(server_counted, rel=0.05)
    assert metrics["tokens"]["estimated"] == metrics["tokens"]["prompt"]
    assert metrics["estimated_cost_usd"] == pytest.approx(server_counted * 0.40 / 1e6, rel=0.05)


def test_the_meter_prices_per_provider_and_tier_and_marks_estimates() -> None:
    telemetry = Telemetry("test")
    budget = Budget()
    openai = Meter("openai", budget, telemetry)
    batch = Meter("openai", budget, telemetry, tier="batch")
    anthropic = Meter("anthropic", budget, telemetry)
    usage = Usage(prompt=1_000_000, completion=100_000, cached=200_000)
    direct_fields = openai.charge("gpt-4.1-mini", usage)
    assert direct_fields["estimated_cost_usd"] == pytest.approx(0.8 * 0.40 + 0.2 * 0.10 + 0.1 * 1.60)
    assert batch.charge("gpt-4.1-mini", usage)["estimated_cost_usd"] == pytest.approx(direct_fields["estimated_cost_usd"] / 2)
    claude = anthropic.charge("claude-haiku-4-5-20251001", Usage(prompt=1_000_000, cached=500_000, cache_write=100_000))
    assert claude["estimated_cost_usd"] == pytest.approx(0.4 * 1.00 + 0.5 * 0.10 + 0.1 * 1.25)
    assert claude["cache_write_tokens"] == 100_000
    lost = openai.charge("gpt-4.1-mini", unanswered_usage(1_000))
    assert lost["tokens_estimated"] is True and lost["prompt_tokens"] == 1_000
