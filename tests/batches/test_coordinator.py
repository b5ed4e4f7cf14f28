"""OPENAI_BATCH: backlogs through the Batch API, with the real openai SDK against the fake's files and batches."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from knowledge_pipeline.batches import BatchRun
from knowledge_pipeline.batches.state import state_path
from knowledge_pipeline.budget import Budget
from knowledge_pipeline.config import load_settings
from knowledge_pipeline.enrichers.analyses import ORIGINAL
from knowledge_pipeline.enrichers.openai import OpenAIEnricher
from knowledge_pipeline.enrichers.pricing import estimate_cost
from knowledge_pipeline.errors import EnrichmentDeferred
from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import BODY_TOGGLES, Item, SourceType, Taxonomy
from knowledge_pipeline.services import ServiceGateway
from knowledge_pipeline.telemetry import Telemetry
from tests.batches.support import body, env, run, seed, statuses
from tests.fakes.openai_server import start_fake_openai


def batch_lines(fake) -> list[list[dict]]:
    return [fake.batches.input_lines(batch_id) for batch_id in fake.batches.batches]


def state_rows(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(state_path(tmp_path / "data" / "journal.db")) as db:
        return db.execute("SELECT item_id, status FROM items").fetchall()


def test_a_backlog_goes_into_one_batch_and_the_next_run_writes_it_at_batch_prices(tmp_path: Path) -> None:
    ids = seed(tmp_path / "data" / "sources.db", 6)
    with start_fake_openai() as fake:
        environment = env(tmp_path, fake, BATCH_MIN_ITEMS="6")
        first = run(environment)
        assert fake.stats()["calls"] == 0, "no item was enriched directly"
        (lines,) = batch_lines(fake)
        second = run(environment)
        usage = [rq for rq in fake.batches.requests() if rq["endpoint"] == "batches.create"]
    (mode,) = first.of("batch_mode")
    assert mode["batching"] is True and "BATCH_MIN_ITEMS=6" in mode["reason"]
    assert first.result.metrics["items_deferred"] == 6 and first.result.metrics["items_processed"] == 0
    assert set(statuses(tmp_path).values()) == {"Enriched"}
    assert {line["custom_id"].split("|")[0] for line in lines} == set(ids)
    assert all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in lines)
    assert all(line["body"]["response_format"]["type"] == "json_schema" for line in lines)
    (submitted,) = first.of("batch_submitted")
    assert submitted["items"] == 6 and submitted["requests"] == 6 and len(usage) == 1
    (collected,) = second.of("batch_collected")
    assert collected["status"] == "completed" and collected["items_enriched"] == 6
    direct = estimate_cost("gpt-4.1-mini", collected["prompt_tokens"], collected["completion_tokens"],
                           collected["cached_tokens"])
    assert collected["estimated_cost_usd"] == pytest.approx(direct / 2)
    metrics = second.result.metrics
    assert metrics["cost_by_tier"] == {"batch": pytest.approx(direct / 2, abs=1e-6)}
    assert metrics["items_processed"] == 6 and metrics["tokens"]["prompt"] == collected["prompt_tokens"]
    assert all(body(tmp_path, i)[0] == BODY_TOGGLES[0] for i in ids)
    assert state_rows(tmp_path) == [], "written items leave no row behind"
    journal = Journal(tmp_path / "data" / "journal.db")
    journal.open()
    assert journal.pending() == 0, "each answer went through the journal and was written"
    journal.close()


def test_auto_stays_direct_below_the_threshold_or_without_a_batch_api(tmp_path: Path) -> None:
    seed(tmp_path / "data" / "sources.db", 3)
    with start_fake_openai(batch_api=False) as fake:
        without_api = run(env(tmp_path, fake, BATCH_MIN_ITEMS="2"))
        calls = fake.stats()["calls"]
    (mode,) = without_api.of("batch_mode")
    assert mode["batching"] is False and mode["reason"] == "the server has no Batch API"
    assert calls == 3 and set(statuses(tmp_path).values()) == {"Enriched"}


def test_below_batch_min_items_auto_enriches_directly(tmp_path: Path) -> None:
    seed(tmp_path / "data" / "sources.db", 3)
    with start_fake_openai() as fake:
        r = run(env(tmp_path, fake))
        assert fake.batches.requests() == [] and fake.stats()["calls"] == 3
    assert r.of("batch_mode")[0]["reason"].startswith("3 items to enrich, fewer than BATCH_MIN_ITEMS=50")


def test_items_held_by_an_open_batch_are_never_enriched_directly(tmp_path: Path) -> None:
    held = seed(tmp_path / "data" / "sources.db", 4)
    with start_fake_openai(batch_auto=False) as fake:
        run(env(tmp_path, fake, OPENAI_BATCH="always"))
        waiting = run(env(tmp_path, fake, OPENAI_BATCH="never"))
        assert fake.stats()["calls"] == 0, "the batch still runs: its items stay out of the direct path"
        (mode,) = waiting.of("batch_mode")
        assert mode["items_held"] == 4
        fake.batches.finish_batches()
        done = run(env(tmp_path, fake, OPENAI_BATCH="never"))
        assert fake.stats()["calls"] == 0
    assert done.of("batch_collected")[0]["items_enriched"] == 4
    assert {statuses(tmp_path)[i] for i in held} == {"Enriched"}


def test_failed_lines_are_enriched_directly_in_the_next_run(tmp_path: Path) -> None:
    ids = seed(tmp_path / "data" / "sources.db", 5)
    with start_fake_openai(batch_line_errors=[ids[1], ids[3]], batch_line_answers={ids[4]: "refusal"}) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        second = run(environment)
        direct = fake.requests()
    (collected,) = second.of("batch_collected")
    assert (collected["items_enriched"], collected["items_retry"]) == (2, 3)
    retried = {rq["messages"][1]["content"].split("\n")[0] for rq in direct}
    assert retried == {"Title: Report 1", "Title: Report 3", "Title: Report 4"}
    assert set(statuses(tmp_path).values()) == {"Enriched"}
    assert not second.of("item_deferred"), "a line that failed in a batch is not batched again"


@pytest.mark.parametrize("outcome", ["expired", "cancelled"])
def test_an_expired_or_cancelled_batch_keeps_its_answers_and_loses_no_item(tmp_path: Path, outcome: str) -> None:
    seed(tmp_path / "data" / "sources.db", 6)
    with start_fake_openai(batch_outcome=outcome, batch_partial=0.5) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        second = run(environment)
        direct_calls = fake.stats()["calls"]
    (collected,) = second.of("batch_collected")
    assert collected["status"] == outcome and (collected["items_enriched"], collected["items_retry"]) == (3, 3)
    assert direct_calls == 3
    assert set(statuses(tmp_path).values()) == {"Enriched"}


def test_a_batch_that_fails_validation_sends_every_item_the_direct_way(tmp_path: Path) -> None:
    seed(tmp_path / "data" / "sources.db", 4)
    with start_fake_openai(max_batch_requests=2) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        second = run(environment)
        direct_calls = fake.stats()["calls"]
    (collected,) = second.of("batch_collected")
    assert collected["status"] == "failed" and collected["items_retry"] == 4
    assert "more than 2 requests" in collected["errors"][0]
    assert direct_calls == 4 and set(statuses(tmp_path).values()) == {"Enriched"}


def test_long_documents_map_in_one_batch_and_reduce_in_the_next(tmp_path: Path) -> None:
    ids = seed(tmp_path / "data" / "sources.db", 3, long_every=2)
    with start_fake_openai() as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always", MAX_INPUT_TOKENS="4000")
        runs = [run(environment) for _ in range(3)]
        lines = batch_lines(fake)
        direct_calls = fake.stats()["calls"]
    first_batch, second_batch = lines
    steps = lambda batch, item: [line["custom_id"].split("|")[1] for line in batch if line["custom_id"].startswith(item)]  # noqa: E731
    assert set(steps(first_batch, ids[0])) == {"map"} and len(steps(first_batch, ids[0])) > 1
    assert steps(second_batch, ids[0]) == ["reduce"]
    assert steps(first_batch, ids[1]) == ["single"] and steps(second_batch, ids[1]) == []
    assert direct_calls == 0
    chunks = {e["item_id"]: e["chunks"] for r in runs for e in r.of("item_complete")}
    assert chunks[ids[0]] == len(steps(first_batch, ids[0])) and chunks[ids[1]] == 1
    assert set(statuses(tmp_path).values()) == {"Enriched"}


def test_analyses_split_over_lines_come_back_together(tmp_path: Path) -> None:
    ids = seed(tmp_path / "data" / "sources.db", 2)
    with start_fake_openai() as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always", ANALYSES="original", MAX_OUTPUT_TOKENS="1500")
        run(environment)
        run(environment)
        (lines,) = batch_lines(fake)
    assert {line["custom_id"].split("|")[1] for line in lines} == {"single", "analyses"}
    toggles = body(tmp_path, ids[0])
    assert [t for t in dict.fromkeys(toggles) if t not in BODY_TOGGLES] == [a.title for a in ORIGINAL]


def test_max_cost_limits_what_one_run_submits(tmp_path: Path) -> None:
    seed(tmp_path / "data" / "sources.db", 10)
    with start_fake_openai() as fake:
        r = run(env(tmp_path, fake, OPENAI_BATCH="always", MAX_COST_USD="0.0012", PARALLEL_MAX_WORKERS="1"))
        (lines,) = batch_lines(fake)
    assert 0 < len(lines) < 10 and r.of("budget_exhausted")
    assert r.result.metrics["estimated_cost_usd"] == 0, "nothing is paid before the batch is collected"


def test_one_run_splits_batches_at_the_apis_limits(tmp_path: Path) -> None:
    """With limits of 3 requests and 8 KB per batch (the fake enforces the same), 7 items make 3 batches."""
    with start_fake_openai(max_batch_requests=3, max_batch_bytes=8_000) as fake:
        settings = load_settings(env(tmp_path, fake, OPENAI_BATCH="always"), env_file=None)
        telemetry = Telemetry("test")
        gateway = ServiceGateway(telemetry)
        budget = Budget()
        journal = Journal(settings.journal_path)

        async def main() -> None:
            journal.open()
            enricher = OpenAIEnricher(settings, gateway, budget)
            batching = BatchRun(settings, gateway, budget, journal, enricher, max_requests=3, max_bytes=8_000)
            await batching.begin(Taxonomy(), 7)
            for n in range(7):
                item = Item(id=f"item-{n}", title=f"Item {n}", source_type=SourceType.RSS)
                with pytest.raises(EnrichmentDeferred):
                    await batching.enricher().enrich(item, f"Text number {n}. " * (40 + 60 * (n == 6)), Taxonomy())
            await batching.finish(submit=True)
            await batching.close()
            await enricher.close()
            journal.close()

        asyncio.run(main())
        lines = batch_lines(fake)
        statuses_ = [b["status"] for b in fake.batches.batches.values()]
    assert len(lines) >= 3 and all(len(batch) <= 3 for batch in lines)
    assert all(sum(len(json.dumps(line)) + 1 for line in batch) <= 8_000 for batch in lines)
    assert sorted(line["custom_id"] for batch in lines for line in batch) == sorted(f"item-{n}|single|0" for n in range(7))
    assert "failed" not in statuses_


def test_a_batch_stores_exactly_what_direct_calls_store(tmp_path: Path) -> None:
    """Same items, same answers: the Batch API path writes the same rows and bodies (titles found in the text too)."""
    from knowledge_pipeline.models import NewItem
    from knowledge_pipeline.sources.sqlite import SqliteStore

    def world(name: str) -> Path:
        root = tmp_path / name
        seed(root / "data" / "sources.db", 3)

        async def stand_in() -> None:  # an item known by its URL only: extraction gives it its own title
            store = SqliteStore(root / "data" / "sources.db")
            await store.open()
            await store.add(NewItem("https://example.com/agents", SourceType.RSS, "hash-url", url="https://example.com/agents",
                                    content="Agents Reach Production\n\nTeams at Microsoft moved agents into production."))
            await store.close()

        asyncio.run(stand_in())
        return root

    def rows(root: Path) -> list[tuple]:
        with sqlite3.connect(root / "data" / "sources.db") as db:
            items = db.execute("SELECT hash, title, status, summary, content_type, ai_primitives, vendor, "
                               "created_date, error FROM items ORDER BY hash").fetchall()
            blocks = db.execute("SELECT i.hash, b.toggle, b.position, b.text FROM blocks b JOIN items i "
                                "ON i.id = b.item_id ORDER BY i.hash, b.position").fetchall()
        return items + blocks

    direct, batched = world("direct"), world("batched")
    with start_fake_openai() as fake:
        run(env(direct, fake, OPENAI_BATCH="never"))
        run(env(batched, fake, OPENAI_BATCH="always"))
        run(env(batched, fake, OPENAI_BATCH="always"))
    assert rows(batched) == rows(direct)
    assert ("hash-url", "Agents Reach Production") in [(r[0], r[1]) for r in rows(direct)]


def test_enrich_first_items_go_through_the_batch_and_get_their_page_once_answered(tmp_path: Path) -> None:
    """Issue 15 with OPENAI_BATCH: a captured item is deferred pending (no page), held while its batch runs,
    and created complete by the run that collects it; never enriched directly, never captured twice."""
    from tests.enrich_first_support import Entry, article_text, write_feed

    feed = write_feed(tmp_path / "feed.xml", [Entry(f"Carried {n}", f"https://example.com/c/{n}",
                                                    content=article_text(n)) for n in range(4)])
    with start_fake_openai(batch_auto=False) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always", RSS_FEEDS=feed, RSS_WINDOW_DAYS="0",
                          CAPTURE_MODE="enrich-first")
        first = run(environment, capture="feeds")
        after_first = statuses(tmp_path)
        waiting = run(environment, capture="feeds")
        fake.batches.finish_batches()
        done = run(environment, capture="feeds")
        direct = fake.stats()["calls"]
    assert first.result.metrics["items_deferred"] == 4 and after_first == {}, "deferred items have no page yet"
    assert waiting.result.metrics["items_processed"] == 0 and waiting.of("batch_mode")[0]["items_held"] == 4
    assert sum(c["added"] for c in waiting.of("capture_complete") + done.of("capture_complete")) == 0
    assert done.of("batch_collected")[0]["items_enriched"] == 4 and done.result.metrics["items_processed"] == 4
    assert sorted(statuses(tmp_path).values()) == ["Enriched"] * 4 and direct == 0
    journal = Journal(tmp_path / "data" / "journal.db")
    journal.open()
    assert journal.pending() == 0
    journal.close()


def test_a_copy_of_an_item_sent_to_a_batch_is_a_duplicate_not_a_second_line(tmp_path: Path) -> None:
    """Two copies of one article in a backlog: the batch pays for one, the other is marked Duplicate of it."""
    from tests.batches.support import article

    async def seed_with_copy() -> list[str]:
        from knowledge_pipeline.models import NewItem
        from knowledge_pipeline.sources.sqlite import SqliteStore

        store = SqliteStore(tmp_path / "data" / "sources.db")
        await store.open()
        texts = [article(1), article(2), article(3), article(1)]
        ids = [(await store.add(NewItem(f"Report {n}", SourceType.RSS, f"hash-{n}", url=f"https://example.com/{n}",
                                        content=text))).id for n, text in enumerate(texts)]
        await store.close()
        return ids

    (tmp_path / "data").mkdir()
    ids = asyncio.run(seed_with_copy())
    with start_fake_openai() as fake:
        environment = env(tmp_path, fake, BATCH_MIN_ITEMS="4")
        first = run(environment)
        (lines,) = batch_lines(fake)
        after_first = statuses(tmp_path)
        run(environment)
        calls = fake.stats()["calls"]
    assert len(lines) == 3 and calls == 0, "one batch line per distinct article, nothing paid directly"
    (duplicate,) = first.of("item_duplicate")
    assert duplicate["item_id"] == ids[3] and duplicate["how"] == "same article, waiting in a Batch API batch"
    assert duplicate["duplicate_of"]["title"] == "Report 0"
    assert after_first[ids[3]] == "Duplicate"
    assert statuses(tmp_path) == {ids[0]: "Enriched", ids[1]: "Enriched", ids[2]: "Enriched", ids[3]: "Duplicate"}


@pytest.mark.parametrize("how", ["no Batch API", "batch unknown"])
def test_a_batch_the_server_no_longer_knows_is_lost_and_its_items_are_enriched_directly(tmp_path: Path, how: str) -> None:
    ids = seed(tmp_path / "data" / "sources.db", 3)
    with start_fake_openai(batch_auto=False) as fake:
        first = run(env(tmp_path, fake, OPENAI_BATCH="always"))
        (submitted,) = first.of("batch_submitted")
        if how == "no Batch API":  # OPENAI_BASE_URL now points at a local server
            fake.configure(batch_api=False)
        else:  # a key of another project
            fake.batches.batches.clear()
        second = run(env(tmp_path, fake, OPENAI_BATCH="never"))
        third = run(env(tmp_path, fake, OPENAI_BATCH="never"))
        direct = fake.stats()["calls"]
    assert second.result.exit_code == 0, second.result.error
    (lost,) = second.of("batch_discarded")
    assert lost["reason"] == "unknown_to_server" and lost["batch_id"] == submitted["batch_id"] and lost["items"] == 3
    assert second.result.metrics["items_processed"] == 3 and direct == 3
    assert {statuses(tmp_path)[i] for i in ids} == {"Enriched"}
    assert third.result.exit_code == 0 and not third.of("batch_discarded"), "a lost batch is not polled again"
    assert not any("OPENAI_MODEL" in e["error"] for e in second.of("api_call_error")), \
        "a batch the server does not know is not reported as a wrong model"


def test_a_batch_recovered_after_a_kill_on_a_server_without_the_batch_api_is_dropped(tmp_path: Path) -> None:
    ids = seed(tmp_path / "data" / "sources.db", 3)
    with start_fake_openai(batch_auto=False) as fake:
        run(env(tmp_path, fake, OPENAI_BATCH="always"))
        with sqlite3.connect(state_path(tmp_path / "data" / "journal.db")) as db:  # as a kill before the batch was recorded
            db.execute("UPDATE batches SET state = 'uploaded', remote_id = NULL")
        fake.configure(batch_api=False)
        second = run(env(tmp_path, fake, OPENAI_BATCH="never"))
    assert second.result.exit_code == 0, second.result.error
    assert second.of("batch_discarded")[0]["items"] == 3
    assert {statuses(tmp_path)[i] for i in ids} == {"Enriched"}


def test_a_collected_batch_leaves_no_file_on_the_server(tmp_path: Path) -> None:
    """The input file holds every item's full text: it is deleted once collected, with the output and error files."""
    ids = seed(tmp_path / "data" / "sources.db", 4)
    with start_fake_openai(batch_line_errors=[ids[0]]) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        assert len(fake.batches.files) == 1, "the input file waits while the batch runs"
        second = run(environment)
        left = dict(fake.batches.files)
    (collected,) = second.of("batch_collected")
    assert left == {} and collected["files_deleted"] == 3 and "files_kept" not in collected


def test_a_file_that_cannot_be_deleted_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    seed(tmp_path / "data" / "sources.db", 3)
    with start_fake_openai(batch_delete_fails=True) as fake:
        environment = env(tmp_path, fake, OPENAI_BATCH="always")
        run(environment)
        second = run(environment)
        left = set(fake.batches.files)
    assert second.result.exit_code == 0
    (collected,) = second.of("batch_collected")
    assert collected["items_enriched"] == 3 and set(collected["files_kept"]) == left and len(left) == 2
    assert set(statuses(tmp_path).values()) == {"Enriched"}
