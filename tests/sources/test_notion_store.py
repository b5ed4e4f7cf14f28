"""The Notion store on the real AsyncClient against the fake Notion server.

What a user relies on beyond the store contract: the original schema works
unchanged, requests stay few and within Notion's limits, retries never
duplicate a write, and errors fail one item (or the run, for credentials)
without leaking the token.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import date
from typing import Any, Awaitable, Callable

import pytest

from knowledge_pipeline.errors import FatalRunError, ItemError, ServiceError, StoreError
from knowledge_pipeline.models import Enrichment, Item, NewItem, SourceType, Status, Taxonomy
from knowledge_pipeline.sources.base import BODY_TOGGLES
from knowledge_pipeline.sources.notion import NotionStore, select_name
from tests.fakes.notion_server import FakeNotion, sources_schema, start_fake_notion
from tests.conftest import with_store
from tests.sources.notion_support import notion_store

ENRICHMENT = Enrichment(
    summary="What the article says, in two paragraphs.\n\nThe second one.",
    executive_summary="A short executive summary.",
    content_type="Market News",
    ai_primitives=("Research",),
    vendor="Acme",
    key_insights=("One insight.", "Another insight."),
    published_date=date(2024, 2, 1),
)


def run(store: NotionStore, scenario: Callable[[NotionStore], Awaitable[Any]]) -> Any:
    return with_store(store, scenario)


async def first_inbox_item(store: NotionStore) -> Item:
    async for item in store.inbox():
        return item
    raise AssertionError("empty inbox")


def toggles(fake: FakeNotion, page_id: str) -> list[str]:
    return [b["toggle"]["rich_text"][0]["plain_text"] for b in fake.blocks_of(page_id) if b["type"] == "toggle"]


def article(paragraphs: int, seed: int = 1) -> str:
    """A long article: paragraphs of varied length, with accents, CJK and emoji."""
    rng = random.Random(seed)
    words = ["model", "router", "latency", "café", "naïve", "数据", "分析", "\U0001F680", "enterprise", "cost"]
    return "\n\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(20, 160))) for _ in range(paragraphs))


# -- schema and opening -----------------------------------------------------------------


def test_original_schema_works_unchanged_without_the_error_property() -> None:
    with start_fake_notion(database="original", rps=None) as fake:
        fake.seed_inbox(2)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            items = [i async for i in store.inbox()]
            await store.write_enrichment(items[0], ENRICHMENT, "text")
            await store.mark_failed(items[1], "Fetch failed")
            with pytest.raises(StoreError, match="no Error property"):
                await store.retry_failed("Fetch")
            return items, await store.retry_failed()

        items, retried = run(store, scenario)
        assert fake.values(items[0].id)["Status"] == "Enriched"
        assert "Error" not in fake.values(items[1].id)
        assert retried == 1 and fake.values(items[1].id)["Status"] == "Inbox"
        warnings = events.of("notion_schema_warning")
        assert [w["property"] for w in warnings] == ["Error", "Warnings"]
        assert {w["severity"] for w in warnings} == {"recommended"}


def test_status_may_be_a_notion_status_property() -> None:
    with start_fake_notion(status_type="status", rps=None) as fake:
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            added = await store.add(NewItem(title="T", source_type=SourceType.RSS, hash="h", url="https://e.com/1"))
            item = await first_inbox_item(store)
            await store.write_enrichment(item, ENRICHMENT, "text")
            return added, [i.status async for i in store.list_items(Status.ENRICHED)]

        added, enriched = run(store, scenario)
        assert enriched == [Status.ENRICHED]
        assert fake.page(added.id)["properties"]["Status"]["status"]["name"] == "Enriched"


def test_a_data_source_id_works_as_well_as_a_database_id() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, events = notion_store(fake, notion_sources_db=fake.data_source_id)
        assert len(run(store, lambda s: _inbox(s))) == 1
        assert events.notion_calls()[:2] == ["databases.retrieve", "data_sources.retrieve"]
        assert events.of("api_call_error")[0]["status_code"] == 404


async def _inbox(store: NotionStore) -> list[Item]:
    return [i async for i in store.inbox()]


def test_an_unknown_database_stops_the_run_with_the_fix() -> None:
    with start_fake_notion(rps=None) as fake:
        store, _ = notion_store(fake, notion_sources_db="0" * 32)
        with pytest.raises(FatalRunError, match="share the database with the integration"):
            run(store, lambda s: _inbox(s))


def test_a_missing_core_property_stops_the_run_and_points_to_notion_check() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.set_property("Hash", None)
        store, _ = notion_store(fake)
        with pytest.raises(FatalRunError, match="Hash missing.*notion check"):
            run(store, lambda s: _inbox(s))


def test_taxonomy_comes_from_the_schema_options() -> None:
    with start_fake_notion(rps=None, database=None) as fake:
        fake.create_sources_database(content_types=("News", "Opinion"), ai_primitives=("Agents",))
        store, events = notion_store(fake)
        assert run(store, lambda s: s.taxonomy()) == Taxonomy(("News", "Opinion"), ("Agents",))
        assert not events.of("taxonomy_fallback")


def test_taxonomy_falls_back_to_the_default_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.set_property("Content-Type", None)
        store, events = notion_store(fake)
        with caplog.at_level(logging.WARNING, logger="tests.notion"):
            assert run(store, lambda s: s.taxonomy()) == Taxonomy()
        assert [e["property"] for e in events.of("taxonomy_fallback")] == ["Content-Type"]
        warned = [r for r in caplog.records if r.extra_fields["event_type"] == "taxonomy_fallback"]
        assert [r.levelno for r in warned] == [logging.WARNING]


def test_configurable_property_names() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.set_property("Article URL", {"name": "Link"})
        fake.set_property("Drive URL", {"name": "File"})
        fake.set_property("Created Date", {"name": "Published"})
        store, _ = notion_store(fake, rss_url_prop="Link", pdf_url_prop="File", created_prop="Published")

        async def scenario(store: NotionStore) -> Any:
            await store.add(NewItem(title="A", source_type=SourceType.RSS, hash="a", url="https://e.com/a",
                                    created_date=date(2024, 1, 5)))
            await store.add(NewItem(title="P", source_type=SourceType.PDF, hash="p", pdf_path="/srv/p.pdf"))
            return [i async for i in store.inbox()]

        feed, paper = run(store, scenario)
        assert (feed.url, feed.created_date) == ("https://e.com/a", date(2024, 1, 5))
        assert paper.pdf_path == "file:///srv/p.pdf"
        assert fake.values(paper.id)["File"] == "file:///srv/p.pdf"


@pytest.mark.parametrize("kind", ["select", "multi_select"])
def test_a_feed_category_goes_into_the_category_property_of_either_kind(kind: str) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.set_property("Category", None)
        fake.set_property("Topic", {"type": kind, kind: {"options": []}})
        store, _ = notion_store(fake, category_prop="Topic")

        async def scenario(store: NotionStore) -> Any:
            await store.add(NewItem(title="A", source_type=SourceType.RSS, hash="a", url="https://e.com/a",
                                    category="Tech/AI, chips"))
            await store.add(NewItem(title="B", source_type=SourceType.RSS, hash="b", url="https://e.com/b"))
            return [i async for i in store.inbox()]

        first, second = run(store, scenario)
        stored = fake.values(first.id)["Topic"]
        assert stored == ("Tech/AI chips" if kind == "select" else ["Tech/AI chips"])
        assert first.category == "Tech/AI chips" and second.category is None


def test_without_a_category_property_the_category_is_left_out_silently(caplog: pytest.LogCaptureFixture) -> None:
    with start_fake_notion(database="original", rps=None) as fake:
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            await store.add(NewItem(title="A", source_type=SourceType.RSS, hash="a", url="https://e.com/a",
                                    category="News"))
            return [i async for i in store.inbox()]

        (item,) = run(store, scenario)
        assert "Category" not in fake.values(item.id) and item.category is None
        assert "Category" not in [w["property"] for w in events.of("notion_schema_warning")]


# -- reading: streamed, paginated, filtered --------------------------------------------------


def test_inbox_is_streamed_one_query_per_hundred_pages() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(250)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            stream = store.inbox()
            first = await stream.__anext__()
            after_first = events.notion_calls().count("data_sources.query")
            rest = [i async for i in stream]
            return first, after_first, rest

        first, after_first, rest = run(store, scenario)
        assert first.title == "Item 0" and len(rest) == 249
        assert after_first == 1, "only the first page is read before the first item is handed out"
        assert events.notion_calls().count("data_sources.query") == 3


def test_inbox_needs_status_inbox_and_the_type_not_a_url() -> None:
    """An item with nothing to read is listed too, so the run can mark it Failed (issue 12, point 10)."""
    with start_fake_notion(rps=None) as fake:
        fake.seed([
            {"Title": "ok rss", "Status": "Inbox", "Source Type": "RSS", "Article URL": "https://e.com/1", "Hash": "1"},
            {"Title": "no url", "Status": "Inbox", "Source Type": "RSS", "Hash": "2"},
            {"Title": "done", "Status": "Enriched", "Source Type": "RSS", "Article URL": "https://e.com/3", "Hash": "3"},
            {"Title": "ok pdf", "Status": "Inbox", "Source Type": "PDF", "Drive URL": "file:///x.pdf", "Hash": "4"},
            {"Title": "website", "Status": "Inbox", "Source Type": "Website", "Article URL": "https://e.com/5"},
        ])
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            return ([i.title for i in await _inbox(store)],
                    [i.title async for i in store.inbox([SourceType.PDF])],
                    [i.title async for i in store.inbox([SourceType.RSS])],
                    await store.count_inbox(), await store.known_hashes())

        every, pdfs, feeds, count, hashes = run(store, scenario)
        assert every == ["ok rss", "no url", "ok pdf", "website"]
        assert (pdfs, feeds, count) == (["ok pdf"], ["ok rss", "no url"], 4)
        assert hashes == {"1", "2", "3", "4"}


def test_known_hashes_and_count_cost_one_request_per_hundred_pages() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(201)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            events.clear()
            hashes = await store.known_hashes()
            count = await store.count_inbox()
            return hashes, count

        hashes, count = run(store, scenario)
        assert len(hashes) == 201 and count == 201
        assert events.notion_calls() == ["data_sources.query"] * 6


def test_archived_pages_in_query_results_are_flagged() -> None:
    with start_fake_notion(rps=None) as fake:
        live, gone = fake.seed_inbox(2)
        fake.trash_page(gone, still_listed=True)
        store, _ = notion_store(fake)
        items = run(store, lambda s: _inbox(s))
        assert [(i.id, i.archived) for i in items] == [(live, False), (gone, True)]


# -- writing: requests, limits, idempotency ------------------------------------------------


def test_enriching_a_normal_item_costs_two_requests() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Item:
            item = await first_inbox_item(store)
            events.clear()
            await store.write_enrichment(item, ENRICHMENT, article(30))
            return item

        item = run(store, scenario)
        assert events.notion_calls() == ["blocks.children.append", "pages.update"]
        assert toggles(fake, item.id) == list(BODY_TOGGLES)
        assert fake.values(item.id)["Status"] == "Enriched"


@pytest.mark.parametrize("text", [
    pytest.param(article(400, seed=7)[:60_000], id="60k-paragraphs"),
    pytest.param(("x" * 59_999) + "!", id="60k-one-paragraph"),
    pytest.param("\n\n".join(["short line"] * 5000)[:60_000], id="60k-short-lines"),
])
def test_a_60k_article_is_written_within_limits_and_round_trips(text: str) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            item = await first_inbox_item(store)
            await store.write_enrichment(item, ENRICHMENT, text)
            return item, await store.body(item.id)

        item, body = run(store, scenario)
        assert not events.of("api_call_error") and not events.of("api_call_retry")
        assert fake.stats()["by_status"].keys() == {"200"}
        assert "\n\n".join(body["Raw"]) == text
        assert toggles(fake, item.id) == list(BODY_TOGGLES)


def test_a_text_beyond_one_request_is_appended_in_follow_ups_and_round_trips() -> None:
    text = article(900, seed=3)
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, events = notion_store(fake, notion_max_raw_chars=len(text))

        async def scenario(store: NotionStore) -> Any:
            item = await first_inbox_item(store)
            events.clear()
            await store.write_enrichment(item, ENRICHMENT, text)
            return item, await store.body(item.id)

        item, body = run(store, scenario)
        appends = events.notion_calls().count("blocks.children.append")
        assert appends >= 3 and not events.of("api_call_error")
        assert "\n\n".join(body["Raw"]) == text
        assert toggles(fake, item.id) == list(BODY_TOGGLES)


def test_raw_text_is_cut_to_notion_max_raw_chars() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, _ = notion_store(fake, notion_max_raw_chars=1000)

        async def scenario(store: NotionStore) -> Any:
            item = await first_inbox_item(store)
            await store.write_enrichment(item, ENRICHMENT, article(50))
            return await store.body(item.id)

        assert "\n\n".join(run(store, scenario)["Raw"]) == article(50)[:1000]


def test_properties_are_cut_and_sanitised_to_notion_rules() -> None:
    long_summary = "word " * 900
    messy = Enrichment(summary="s", executive_summary=long_summary, content_type="News, Analysis",
                       ai_primitives=("Research", "Research", "Data, Analysis"), vendor="V" * 150, key_insights=())
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            item = await first_inbox_item(store)
            await store.write_enrichment(item, messy, "text")
            return item, await store.body(item.id)

        item, body = run(store, scenario)
        values = fake.values(item.id)
        assert len(values["Summary"]) <= 2000 and values["Summary"].endswith("\u2026")
        assert long_summary.startswith(values["Summary"][:-1])
        assert "\n\n".join(body["Executive Summary"]) == long_summary, "the body keeps it whole"
        assert values["Content-Type"] == "News Analysis"
        assert values["AI-Primitive"] == ["Research", "Data Analysis"]
        assert values["Vendor"] == "V" * 100
        assert values["Created Date"] is None


def test_select_name() -> None:
    assert select_name("Acme, Inc.") == "Acme Inc."
    assert select_name(" , ") is None
    assert select_name(None) is None


def test_repair_removes_toggles_a_cut_off_write_left() -> None:
    with start_fake_notion(rps=None) as fake:
        (page_id,) = fake.seed_inbox(1)
        fake.append_blocks(page_id, [
            {"type": "paragraph", "paragraph": {"rich_text": [{"text": {"content": "the user's own note"}}]}},
            {"type": "toggle", "toggle": {"rich_text": [{"text": {"content": "Summary"}}]}},
            {"type": "toggle", "toggle": {"rich_text": [{"text": {"content": "Executive Summary"}}]}},
        ])
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            await store.write_enrichment(await first_inbox_item(store), ENRICHMENT, "text", repair=True)

        run(store, scenario)
        kinds = [b["type"] for b in fake.blocks_of(page_id)]
        assert kinds == ["paragraph", "toggle", "toggle", "toggle", "toggle"]
        assert toggles(fake, page_id) == list(BODY_TOGGLES)


def test_a_lost_reply_to_the_append_does_not_duplicate_the_body() -> None:
    with start_fake_notion(rps=None) as fake:
        (page_id,) = fake.seed_inbox(1)
        fake.fail_next(502, method="PATCH", path="/children", after_apply=True)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            await store.write_enrichment(await first_inbox_item(store), ENRICHMENT, "text")

        run(store, scenario)
        assert toggles(fake, page_id) == list(BODY_TOGGLES)
        assert [e["operation"] for e in events.of("api_call_retry")] == ["blocks.children.append"]
        assert fake.values(page_id)["Status"] == "Enriched"


def test_a_lost_reply_to_a_follow_up_append_does_not_duplicate_it() -> None:
    text = article(900, seed=3)
    with start_fake_notion(rps=None) as fake:
        (page_id,) = fake.seed_inbox(1)
        store, events = notion_store(fake, notion_max_raw_chars=len(text))

        async def scenario(store: NotionStore) -> Any:
            item = await first_inbox_item(store)
            fake.fail_next(504, method="PATCH", path="/children", after_apply=True, skip=1)
            await store.write_enrichment(item, ENRICHMENT, text)
            return await store.body(item.id)

        body = run(store, scenario)
        assert "\n\n".join(body["Raw"]) == text
        assert toggles(fake, page_id) == list(BODY_TOGGLES)
        assert [e["operation"] for e in events.of("api_call_retry")] == ["blocks.children.append"]


def test_a_lost_reply_to_pages_create_does_not_duplicate_the_page() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(500, method="POST", path="/v1/pages", after_apply=True)
        store, events = notion_store(fake)
        new = NewItem(title="Once", source_type=SourceType.RSS, hash="once", url="https://e.com/once")
        item = run(store, lambda s: s.add(new))
        assert [p["id"] for p in fake.pages()] == [item.id]
        assert [e["operation"] for e in events.of("api_call_retry")] == ["pages.create"]


def test_a_failed_update_removes_the_half_written_body() -> None:
    with start_fake_notion(rps=None) as fake:
        (page_id,) = fake.seed_inbox(1)
        fake.fail_next(400, method="PATCH", path="/v1/pages/", message="Simulated validation failure.")
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            with pytest.raises(ItemError, match="Simulated validation failure"):
                await store.write_enrichment(await first_inbox_item(store), ENRICHMENT, "text")

        run(store, scenario)
        assert toggles(fake, page_id) == []
        assert fake.values(page_id)["Status"] == "Inbox"


def test_mark_failed_cuts_the_reason_to_2000_characters() -> None:
    with start_fake_notion(rps=None) as fake:
        (page_id,) = fake.seed_inbox(1)
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> Any:
            await store.mark_failed(await first_inbox_item(store), "reason " * 500)

        run(store, scenario)
        values = fake.values(page_id)
        assert values["Status"] == "Failed" and 1900 < len(values["Error"]) <= 2000


def test_retry_failed_skips_a_page_deleted_meanwhile() -> None:
    with start_fake_notion(rps=None) as fake:
        ids = fake.seed([{"Title": f"F{n}", "Status": "Failed", "Source Type": "RSS", "Error": "timeout",
                          "Article URL": f"https://e.com/{n}"} for n in range(3)])
        fake.fail_next(404, method="PATCH", path=ids[1],
                       message=f"Could not find page with ID: {ids[1]}.")
        store, events = notion_store(fake)
        assert run(store, lambda s: s.retry_failed("timeout")) == 2
        assert [e["item_id"] for e in events.of("retry_failed_skipped")] == [ids[1]]


# -- errors -------------------------------------------------------------------------------------


def test_a_bad_token_stops_the_run_without_showing_the_token() -> None:
    with start_fake_notion(rps=None) as fake:
        store, events = notion_store(fake, notion_token="ntn_wrong_secret_value")
        with pytest.raises(FatalRunError) as caught:
            run(store, lambda s: _inbox(s))
        assert "unauthorized" in str(caught.value) and "API token is invalid" in str(caught.value)
        assert "ntn_wrong_secret_value" not in str(caught.value)
        assert all("ntn_wrong_secret_value" not in repr(data) for _, data in events.records)


def test_a_token_revoked_mid_run_is_a_fatal_service_error() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> ServiceError:
            item = await first_inbox_item(store)
            fake.token = "rotated"
            with pytest.raises(ServiceError) as caught:
                await store.write_enrichment(item, ENRICHMENT, "text")
            return caught.value

        error = run(store, scenario)
        assert error.fatal and error.status_code == 401 and not error.retryable
        assert store.settings.notion_token not in str(error)


def test_restricted_resource_is_fatal() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> ServiceError:
            item = await first_inbox_item(store)
            fake.fail_next(403)
            with pytest.raises(ServiceError) as caught:
                await store.mark_failed(item, "x")
            return caught.value

        error = run(store, scenario)
        assert error.fatal and error.code == "restricted_resource"


def test_a_page_trashed_mid_run_fails_that_item_only() -> None:
    with start_fake_notion(rps=None) as fake:
        first, second = fake.seed_inbox(2)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> ItemError:
            a, b = await _inbox(store)
            fake.trash_page(first)
            with pytest.raises(ItemError) as caught:
                await store.write_enrichment(a, ENRICHMENT, "text")
            await store.write_enrichment(b, ENRICHMENT, "text")
            return caught.value

        error = run(store, scenario)
        assert "archived" in str(error) and not getattr(error, "fatal", False)
        assert events.notion_calls().count("blocks.children.append") == 2, "a 400 is not retried"
        assert fake.values(second)["Status"] == "Enriched"


def test_a_page_deleted_for_good_mid_run_fails_that_item_only() -> None:
    with start_fake_notion(rps=None) as fake:
        (page_id,) = fake.seed_inbox(1)
        store, _ = notion_store(fake)

        async def scenario(store: NotionStore) -> ItemError:
            item = await first_inbox_item(store)
            fake.purge_page(page_id)
            with pytest.raises(ItemError) as caught:
                await store.write_enrichment(item, ENRICHMENT, "text")
            return caught.value

        error = run(store, scenario)
        assert isinstance(error, ServiceError) and error.code == "object_not_found" and not error.fatal


def test_server_errors_are_retried_and_the_item_completes() -> None:
    with start_fake_notion(rps=None) as fake:
        (page_id,) = fake.seed_inbox(1)
        fake.fail_next(503, method="PATCH", path="/v1/pages/", count=2)
        store, events = notion_store(fake, retries=3)

        async def scenario(store: NotionStore) -> None:
            await store.write_enrichment(await first_inbox_item(store), ENRICHMENT, "text")

        run(store, scenario)
        retries = events.of("api_call_retry")
        assert [(r["operation"], r["status_code"]) for r in retries] == [("pages.update", 503)] * 2
        assert fake.values(page_id)["Status"] == "Enriched"


def test_a_timeout_is_retried_then_fails_the_item() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, events = notion_store(fake, retries=1, api_timeout=0.2)

        async def scenario(store: NotionStore) -> ServiceError:
            item = await first_inbox_item(store)
            fake.configure(latency=0.5)
            with pytest.raises(ServiceError) as caught:
                await store.mark_failed(item, "x")
            fake.configure(latency=0)
            return caught.value

        error = run(store, scenario)
        assert error.code == "timeout" and error.retryable and not error.fatal
        assert len(events.of("api_call_retry")) == 1


def test_rate_limited_requests_honour_retry_after_and_the_store_completes() -> None:
    with start_fake_notion(rps=3, burst=3) as fake:
        fake.seed_inbox(6)
        store, events = notion_store(fake, max_rps=50, retries=5)

        async def scenario(store: NotionStore) -> None:
            async for item in store.inbox():
                await store.mark_failed(item, "x")

        run(store, scenario)
        retries = [e for e in events.of("api_call_retry") if e.get("status_code") == 429]
        assert retries and all(e["wait"] >= 1.0 and e["wait"] == int(e["wait"]) for e in retries)
        assert fake.stats()["rate_limited"] == len(retries)
        assert all(v["Status"] == "Failed" for v in map(fake.values, [p["id"] for p in fake.pages()]))
        assert events.of("rate_limit_adjusted")


@pytest.mark.slow
def test_at_notion_max_rps_the_fake_never_rate_limits() -> None:
    with start_fake_notion(rps=3, burst=3) as fake:
        fake.seed_inbox(12)
        store, events = notion_store(fake, max_rps=3)

        async def scenario(store: NotionStore) -> None:
            async for item in store.inbox():
                await store.mark_failed(item, "x")

        run(store, scenario)
        stats = fake.stats()
        assert stats["rate_limited"] == 0 and stats["max_in_1s"] <= 4


def test_under_faults_and_concurrency_every_item_ends_with_one_page_and_one_body() -> None:
    """5xx and lost replies at random, five workers: nothing is lost or written twice."""
    with start_fake_notion(rps=None, seed=11) as fake:
        store, events = notion_store(fake, retries=10)
        texts = {n: article(3 + n % 4, seed=n) for n in range(24)}

        async def scenario(store: NotionStore) -> None:
            fake.configure(error_share=0.15, lost_reply_share=0.15)
            limit = asyncio.Semaphore(5)

            async def add(n: int) -> None:
                async with limit:
                    await store.add(NewItem(title=f"T{n}", source_type=SourceType.RSS, hash=f"h{n}",
                                            url=f"https://e.com/{n}"))

            async def enrich(item: Item) -> None:
                async with limit:
                    await store.write_enrichment(item, ENRICHMENT, texts[int(item.title[1:])])

            await asyncio.gather(*(add(n) for n in range(24)))
            await asyncio.gather(*[enrich(item) async for item in store.inbox()])
            fake.configure(error_share=0, lost_reply_share=0)
            for item in [i async for i in store.list_items()]:
                body = await store.body(item.id)
                assert "\n\n".join(body["Raw"]) == texts[int(item.title[1:])]

        run(store, scenario)
        pages = fake.pages()
        assert sorted(fake.values(p["id"])["Title"] for p in pages) == sorted(f"T{n}" for n in range(24))
        assert all(fake.values(p["id"])["Status"] == "Enriched" for p in pages)
        assert all(toggles(fake, p["id"]) == list(BODY_TOGGLES) for p in pages)
        assert len(events.of("api_call_retry")) > 10


def test_add_enriched_is_one_create_when_the_body_fits() -> None:
    with start_fake_notion(rps=None) as fake:
        store, events = notion_store(fake)
        new = NewItem(title="Complete", source_type=SourceType.RSS, hash="c1", url="https://e.com/c1")
        item = run(store, lambda s: s.add_enriched(new, ENRICHMENT, "Short text."))
        assert events.notion_calls()[-1:] == ["pages.create"] and events.notion_calls().count("pages.create") == 1
        assert item.status == Status.ENRICHED and fake.values(item.id)["Status"] == "Enriched"
        assert toggles(fake, item.id) == list(BODY_TOGGLES)


def test_add_enriched_with_a_long_body_creates_then_appends_and_sets_status_last() -> None:
    text = article(900, seed=5)
    with start_fake_notion(rps=None) as fake:
        store, events = notion_store(fake, notion_max_raw_chars=len(text))
        new = NewItem(title="Long", source_type=SourceType.RSS, hash="l1", url="https://e.com/l1")
        item, body = run(store, lambda s: _add_and_read(s, new, text))
        calls = events.notion_calls()
        assert calls.count("pages.create") == 1 and calls.count("blocks.children.append") >= 3
        writes = [c for c in calls if c in ("pages.create", "blocks.children.append", "pages.update")]
        assert writes[0] == "pages.create" and writes[-1] == "pages.update", "Status = Enriched is the last write"
        values = fake.values(item.id)
        assert (values["Status"], values["Error"]) == ("Enriched", "") and item.status == Status.ENRICHED
        assert "\n\n".join(body["Raw"]) == text and toggles(fake, item.id) == list(BODY_TOGGLES)


async def _add_and_read(store: NotionStore, new: NewItem, text: str) -> tuple[Item, dict]:
    item = await store.add_enriched(new, ENRICHMENT, text)
    return item, await store.body(item.id)


def test_a_database_with_two_data_sources_says_which_it_uses_and_how_to_choose() -> None:
    """NOTION_SOURCES_DB as the database: the first data source, with a warning naming both; as a data source id: that one."""
    with start_fake_notion(rps=None) as fake:
        archive = fake.add_data_source("Archive")
        fake.seed([{"Title": "in archive", "Status": "Inbox", "Source Type": "RSS", "Hash": "x",
                    "Article URL": "https://e.com/x"}], data_source_id=archive)

        async def inbox(store: NotionStore) -> list[str]:
            return [i.title async for i in store.inbox()]

        store, events = notion_store(fake)
        assert run(store, inbox) == []
        [warning] = events.of("notion_data_sources")
        assert warning["used"] == fake.data_source_id and warning["database_id"] == fake.database_id
        assert warning["data_sources"] == [{"id": fake.data_source_id, "name": "Sources"},
                                           {"id": archive, "name": "Archive"}]
        assert "set NOTION_SOURCES_DB to its data source id" in warning["fix"]

        chosen, chosen_events = notion_store(fake, notion_sources_db=archive)
        assert run(chosen, inbox) == ["in archive"]
        assert chosen_events.of("notion_data_sources") == []


# -- partial reads and titles found by extraction -----------------------------------------------------

def test_warnings_and_a_found_title_are_written_and_read_back() -> None:
    import dataclasses

    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1)
        store, _ = notion_store(fake)
        found = dataclasses.replace(ENRICHMENT, title="The page's own title",
                                    warnings=("9 of 23 pages read (damaged or truncated PDF)", "second line"))

        async def scenario(store: NotionStore) -> Any:
            item = await first_inbox_item(store)
            await store.write_enrichment(item, found, "text")
            return [i async for i in store.list_items()]

        [item] = run(store, scenario)
        values = fake.values(item.id)
        assert values["Title"] == "The page's own title" == item.title
        assert values["Warnings"] == "9 of 23 pages read (damaged or truncated PDF)\nsecond line"
        assert item.warnings == ("9 of 23 pages read (damaged or truncated PDF)", "second line")


def test_a_text_longer_than_the_raw_cap_is_an_item_warning_kept_in_notion(tmp_path) -> None:
    from knowledge_pipeline.enrichers.local import LocalEnricher
    from knowledge_pipeline.extract import Extracted
    from knowledge_pipeline.journal import Journal
    from knowledge_pipeline.processing import Deps, process_item

    text = " ".join(f"Sentence number {n} says that OpenAI and Anthropic compete on price." for n in range(400))

    class LongText:
        async def read(self, item, *, title=False):
            return Extracted(text)

    for schema in ("full", "original"):
        with start_fake_notion(database=schema, rps=None) as fake:
            fake.seed_inbox(1)
            store, events = notion_store(fake, notion_max_raw_chars=5000)
            journal = Journal(tmp_path / f"journal-{schema}.db")
            journal.open()

            async def scenario(store: NotionStore) -> Any:
                item = await first_inbox_item(store)
                deps = Deps(store, LocalEnricher(), LongText(), journal, store.telemetry, await store.taxonomy())
                return item, await process_item(item, deps)

            item, outcome = run(store, scenario)
            assert outcome.kind.value == "enriched"
            warning = f"5,000 of {len(text):,} characters kept in the Raw toggle (NOTION_MAX_RAW_CHARS)"
            assert [e["warning"] for e in events.of("item_warning")] == [warning]
            assert fake.values(item.id).get("Warnings") == (warning if schema == "full" else None)
            assert fake.values(item.id)["Status"] == "Enriched"


# -- enrich-first (issue 15): a new item's page in one request -----------------------------------------


NEW = NewItem(title="Fresh", source_type=SourceType.RSS, hash="fresh", url="https://e.com/fresh",
              created_date=date(2024, 1, 5))


def test_an_enriched_new_item_is_one_pages_create_with_every_property_and_the_body() -> None:
    with start_fake_notion(rps=None) as fake:
        store, events = notion_store(fake)
        item = run(store, lambda s: s.add_enriched(NEW, ENRICHMENT, article(30)))
        values = fake.values(item.id)
        assert [c for c in events.notion_calls() if c.startswith(("pages.", "blocks."))] == ["pages.create"]
        assert values["Status"] == "Enriched" and values["Summary"] == ENRICHMENT.executive_summary
        assert (values["Vendor"], values["Content-Type"], values["Hash"]) == ("Acme", "Market News", "fresh")
        assert toggles(fake, item.id) == list(BODY_TOGGLES)


def test_a_body_over_one_request_is_created_failed_then_appended_with_enriched_last() -> None:
    text = article(900, seed=3)
    with start_fake_notion(rps=None) as fake:
        store, events = notion_store(fake, notion_max_raw_chars=len(text))

        async def scenario(store: NotionStore) -> Any:
            events.clear()
            item = await store.add_enriched(NEW, ENRICHMENT, text)
            return item, await store.body(item.id)

        item, body = run(store, scenario)
        calls = [c for c in events.notion_calls() if c.startswith(("pages.", "blocks.children.append"))]
        assert calls[0] == "pages.create" and calls[-1] == "pages.update" and calls.count("blocks.children.append") >= 3
        assert "\n\n".join(body["Raw"]) == text and toggles(fake, item.id) == list(BODY_TOGGLES)
        assert fake.values(item.id)["Status"] == "Enriched" and not fake.values(item.id)["Error"]


def test_a_lost_reply_to_the_complete_create_is_found_by_hash_not_created_twice() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(502, method="POST", path="/v1/pages", after_apply=True)
        store, events = notion_store(fake)
        item = run(store, lambda s: s.add_enriched(NEW, ENRICHMENT, "text"))
        assert [p["id"] for p in fake.pages()] == [item.id] and fake.values(item.id)["Status"] == "Enriched"
        assert [e["operation"] for e in events.of("api_call_retry")] == ["pages.create"]
        assert "data_sources.query" in events.notion_calls(), "looked up by Hash before sending again"


def test_a_failed_new_item_is_one_create_with_its_reason() -> None:
    with start_fake_notion(rps=None) as fake:
        store, events = notion_store(fake)
        item = run(store, lambda s: s.add_failed(NEW, "HTTP 404 for https://e.com/fresh"))
        assert [c for c in events.notion_calls() if c.startswith("pages.")] == ["pages.create"]
        values = fake.values(item.id)
        assert (values["Status"], values["Error"]) == ("Failed", "HTTP 404 for https://e.com/fresh")


@pytest.mark.parametrize(("status_type", "options", "expected"), [
    ("select", None, "Duplicate"),
    ("status", None, "Failed"),
    ("status", ("Inbox", "Enriched", "Failed", "Duplicate"), "Duplicate"),
])
def test_a_duplicate_is_marked_duplicate_where_the_schema_allows_else_failed_with_the_note(
        status_type: str, options: tuple[str, ...] | None, expected: str) -> None:
    with start_fake_notion(database=None, rps=None) as fake:
        schema = sources_schema("full", status_type)
        if options:
            schema["Status"] = {"status": {"options": [{"name": n} for n in options]}}
        fake.create_sources_database(properties=schema)
        fake.seed_inbox(1)
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> Item:
            item = await first_inbox_item(store)
            await store.mark_duplicate(item, 'Duplicate of "Original" (https://e.com/1): same text')
            return item

        item = run(store, scenario)
        values = fake.values(item.id)
        assert values["Status"] == expected
        assert values["Error"] == 'Duplicate of "Original" (https://e.com/1): same text'
        warned = [w for w in events.of("notion_schema_warning") if "Duplicate" in w["problem"]]
        assert bool(warned) == (expected == "Failed"), "notion check and the run say how to get the Duplicate status"


def test_a_url_over_notions_limit_is_refused_before_anything_is_sent() -> None:
    with start_fake_notion(rps=None) as fake:
        store, events = notion_store(fake)

        async def scenario(store: NotionStore) -> None:
            events.clear()
            with pytest.raises(ItemError, match="longer than 2000"):
                store.check_new(NewItem(title="Long", source_type=SourceType.RSS, hash="l",
                                        url="https://e.com/?q=" + "x" * 2100))

        run(store, scenario)
        assert events.notion_calls() == []


def test_an_inbox_email_whose_text_the_local_cache_holds_is_not_read_back_from_its_page() -> None:
    """Issue 15: the Email toggle stays the durable copy; reading it back (two requests) only when needed."""
    email = NewItem(title="Issue 7", source_type=SourceType.EMAIL, hash="mail-7", content="The newsletter's text.")
    with start_fake_notion(rps=None) as fake:
        capture, _ = notion_store(fake)
        run(capture, lambda s: s.add(email))
        results = {}
        for kept in (True, False):
            later, events = notion_store(fake)
            later.text_kept = lambda item, kept=kept: kept and item.hash == "mail-7"

            async def scenario(store: NotionStore) -> Any:
                events.clear()
                return [i async for i in store.inbox([SourceType.EMAIL])]

            [item] = run(later, scenario)
            results[kept] = (item.content, events.notion_calls().count("blocks.children.list"))
    assert results[True] == (None, 0), "left for the extractor, which reads the cache"
    assert results[False] == ("The newsletter's text.", 2)
