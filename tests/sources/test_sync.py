"""Sync between the SQLite store and Notion, with the real notion-client against the fake Notion server."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from knowledge_pipeline.errors import FatalRunError
from knowledge_pipeline.models import AnalysisResult, Enrichment, NewItem, SourceType, Status
from knowledge_pipeline.sources.base import BODY_TOGGLES, INCOMPLETE_BODY, ItemContent
from knowledge_pipeline.sources.notion import NotionStore
from knowledge_pipeline.sources.sqlite import SqliteStore
from knowledge_pipeline.sources.sync import SyncReport, from_notion, to_notion
from knowledge_pipeline.telemetry import Telemetry
from tests.conftest import with_store
from tests.fakes.notion_server import FakeNotion, start_fake_notion
from tests.sources.notion_support import Events, notion_store

ENRICHMENT = Enrichment(
    summary="First paragraph.\n\nSecond paragraph.", executive_summary="Acme ships a model router.",
    content_type="Vendor Capability", ai_primitives=("Automation", "Research"), vendor="Acme",
    key_insights=("Costs fell by a third.", "Latency stayed flat."), published_date=date(2024, 3, 9),
)
# The optional analyses (ANALYSES): an original one (a table) and one of the user's ANALYSES_FILE.
ANALYSES = (
    AnalysisResult("swot", "SWOT", "table", ("S/W/O/T | Point", "S | cheap requests", "W | a new vendor")),
    AnalysisResult("pitch", "Pitch", "paragraph", ("Acme routes prompts.\n\nIt saves a third.", "Try it.")),
)
ANALYSED = replace(ENRICHMENT, analyses=ANALYSES)
TEXT = "The whole article.\n\nWith a second paragraph about zeppelins."
CATEGORY = "Research feeds"


def new(n: int) -> NewItem:
    return NewItem(title=f"Article {n}", source_type=SourceType.RSS, hash=f"hash-{n}",
                   url=f"https://example.com/{n}", created_date=date(2024, 5, 1 + n % 27))


def analysed(n: int) -> NewItem:
    """An item of a feed with a category, to be enriched with analyses (what a sync must not lose)."""
    return replace(new(n), category=CATEGORY)


async def fill_local(store: SqliteStore, enriched: int = 3, inbox: int = 1, failed: int = 1,
                     enrichment: Enrichment = ENRICHMENT) -> None:
    n = 0
    for _ in range(enriched):
        await store.add_enriched(new(n), enrichment, TEXT)
        n += 1
    for _ in range(inbox):
        await store.add(new(n))
        n += 1
    for _ in range(failed):
        await store.mark_failed(await store.add(new(n)), "HTTP 404 from example.com")
        n += 1


def run_sync(direction: str, local_path: Path, fake: FakeNotion, *, fill: Any = None, max_rps: float = 1000.0,
             **overrides: Any) -> tuple[SyncReport, Events]:
    notion, events = notion_store(fake, max_rps=max_rps, **overrides)
    telemetry = Telemetry("tests.sync")
    telemetry.add_observer(events)

    async def main() -> SyncReport:
        local = SqliteStore(local_path)
        await local.open()
        await notion.open()
        try:
            if fill is not None:
                await fill(local)
            if direction == "to":
                return await to_notion(local, notion, telemetry)
            return await from_notion(notion, local, telemetry)
        finally:
            await notion.close()
            await local.close()

    return asyncio.run(main()), events


def page_toggles(fake: FakeNotion, page_id: str) -> dict[str, list[str]]:
    out = {}
    for block in fake.blocks_of(page_id):
        if block["type"] == "toggle":
            title = "".join(t["plain_text"] for t in block["toggle"]["rich_text"])
            out[title] = ["".join(t["plain_text"] for t in child[child["type"]]["rich_text"])
                          for child in block["children"]]
    return out


# -- to Notion ------------------------------------------------------------------------------


def test_to_notion_copies_complete_pages_one_create_each(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        report, events = run_sync("to", tmp_path / "s.db", fake, fill=fill_local)
        assert report.copied == {"Enriched": 3, "Inbox": 1, "Failed": 1} and report.failed == 0
        calls = events.notion_calls()
        assert calls.count("pages.create") == 5
        assert "blocks.children.append" not in calls, "an enriched page carries its body in the create"
        assert "pages.update" not in calls, "a Failed item too is one create, with its status and reason"
        pages = {fake.values(p["id"])["Hash"]: p for p in fake.pages()}
        enriched = fake.values(pages["hash-0"]["id"])
        assert enriched["Status"] == "Enriched" and enriched["Summary"] == "Acme ships a model router."
        assert (enriched["Content-Type"], enriched["Vendor"]) == ("Vendor Capability", "Acme")
        assert enriched["AI-Primitive"] == ["Automation", "Research"] and enriched["Created Date"] == "2024-05-01"
        assert enriched["Article URL"] == "https://example.com/0"
        body = page_toggles(fake, pages["hash-0"]["id"])
        assert list(body) == list(BODY_TOGGLES)
        assert body["Key Insights"] == list(ENRICHMENT.key_insights)
        assert "\n\n".join(body["Raw"]) == TEXT and "\n\n".join(body["Summary"]) == ENRICHMENT.summary
        assert fake.values(pages["hash-3"]["id"])["Status"] == "Inbox"
        failed = fake.values(pages["hash-4"]["id"])
        assert (failed["Status"], failed["Error"]) == ("Failed", "HTTP 404 from example.com")


def test_to_notion_again_copies_nothing_and_skips_hashes_notion_has(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(1, start=0)
        fake.seed([{"Title": "Captured in Notion", "Status": "Inbox", "Source Type": "RSS",
                    "Article URL": "https://example.com/1", "Hash": "hash-1"}])
        first, _ = run_sync("to", tmp_path / "s.db", fake, fill=fill_local)
        assert first.total_copied == 4 and first.unchanged == 1
        second, events = run_sync("to", tmp_path / "s.db", fake)
        assert second.total_copied == 0 and second.unchanged == 5
        assert set(events.notion_calls()) == {"data_sources.query", "databases.retrieve", "data_sources.retrieve"}
        hashes = [fake.values(p["id"])["Hash"] for p in fake.pages()]
        assert sorted(hashes) == sorted(set(hashes)), "no hash twice"


def test_failed_and_duplicate_items_are_never_inbox_pages_even_for_a_moment(tmp_path: Path) -> None:
    async def fill(local: SqliteStore) -> None:
        await fill_local(local, enriched=0, inbox=0, failed=1)
        await local.mark_duplicate(await local.add(new(1)), 'Duplicate of "Article 0" (https://example.com/0)')

    with start_fake_notion(rps=None) as fake:
        fake.fail_next(400, method="POST", path="/v1/pages", message="body failed validation")
        first, _ = run_sync("to", tmp_path / "s.db", fake, fill=fill)
        assert first.failed == 1 and first.copied == {"Duplicate": 1}
        assert [fake.values(p["id"])["Status"] for p in fake.pages()] == ["Duplicate"], (
            "a failed create leaves no page, so no Inbox page a Notion run would enrich")
        second, events = run_sync("to", tmp_path / "s.db", fake)
        values = {fake.values(p["id"])["Hash"]: fake.values(p["id"]) for p in fake.pages()}
    assert second.copied == {"Failed": 1} and second.unchanged == 1
    assert [c for c in events.notion_calls() if c.startswith("pages.")] == ["pages.create"]
    assert (values["hash-0"]["Status"], values["hash-0"]["Error"]) == ("Failed", "HTTP 404 from example.com")
    assert values["hash-1"]["Error"] == 'Duplicate of "Article 0" (https://example.com/0)'


def test_a_lost_reply_to_the_create_is_looked_up_by_hash_not_duplicated(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(500, method="POST", path="/v1/pages", after_apply=True, skip=1)
        report, events = run_sync("to", tmp_path / "s.db", fake, fill=fill_local)
        assert report.total_copied == 5 and report.failed == 0
        assert len(fake.pages()) == 5
        assert [e["operation"] for e in events.of("api_call_retry")] == ["pages.create"]


def test_a_long_body_cut_off_is_finished_by_the_next_sync(tmp_path: Path) -> None:
    many = Enrichment(**{**ENRICHMENT.to_dict(), "key_insights": tuple(f"Insight {n}." for n in range(150)),
                         "published_date": None, "ai_primitives": ("Research",)})
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(400, method="PATCH", path="/children", skip=1, message="body failed validation")

        async def fill(local: SqliteStore) -> None:
            await fill_local(local, enriched=1, inbox=0, failed=0, enrichment=many)

        first, events = run_sync("to", tmp_path / "s.db", fake, fill=fill)
        assert first.failed == 1 and first.total_copied == 0
        (page,) = fake.pages()
        assert fake.values(page["id"])["Status"] == "Failed"
        assert fake.values(page["id"])["Error"] == INCOMPLETE_BODY
        assert events.of("sync_item_failed")[0]["title"] == "Article 0"

        second, _ = run_sync("to", tmp_path / "s.db", fake)
        assert second.completed == 1 and second.failed == 0 and len(fake.pages()) == 1
        values = fake.values(page["id"])
        assert values["Status"] == "Enriched" and values["Error"] == ""
        body = page_toggles(fake, page["id"])
        assert list(body) == list(BODY_TOGGLES) and body["Key Insights"] == list(many.key_insights)


def test_a_bad_token_stops_the_sync(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(401, method="POST", path="/v1/pages")
        with pytest.raises(FatalRunError):
            run_sync("to", tmp_path / "s.db", fake, fill=fill_local)


def test_to_notion_stays_under_the_notion_rate_cap(tmp_path: Path) -> None:
    with start_fake_notion(rps=8, burst=8) as fake:

        async def fill(local: SqliteStore) -> None:
            await fill_local(local, enriched=20, inbox=0, failed=0)

        report, events = run_sync("to", tmp_path / "s.db", fake, fill=fill, max_rps=8)
        stats = fake.stats()
    assert report.total_copied == 20
    assert stats["rate_limited"] == 0 and not events.of("api_call_retry")


# -- from Notion ----------------------------------------------------------------------------


async def fill_notion(store: NotionStore) -> dict[str, str]:
    enriched = await store.add_enriched(new(0), ENRICHMENT, TEXT)
    inbox = await store.add(new(1))
    failed = await store.add(new(2))
    await store.mark_failed(failed, "PDF has no text")
    return {"enriched": enriched.id, "inbox": inbox.id, "failed": failed.id}


def notion_fill(fake: FakeNotion) -> dict[str, str]:
    return with_store(notion_store(fake)[0], fill_notion)


def local_view(path: Path) -> tuple[list, dict, Any]:
    async def main(store: SqliteStore) -> tuple[list, dict, Any]:
        items = [i async for i in store.list_items()]
        bodies = {i.id: await store.body(i.id) for i in items}
        return items, bodies, await store.search("zeppelins")

    return with_store(SqliteStore(path), main)


def test_from_notion_copies_properties_bodies_and_makes_them_searchable(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        ids = notion_fill(fake)
        report, _ = run_sync("from", tmp_path / "copy.db", fake)
    assert report.copied == {"Enriched": 1, "Inbox": 1, "Failed": 1} and report.failed == 0
    items, bodies, found = local_view(tmp_path / "copy.db")
    by_id = {i.id: i for i in items}
    assert set(by_id) == set(ids.values()), "a copied row keeps the page id as its id"
    enriched = by_id[ids["enriched"]]
    assert (enriched.status, enriched.content_type, enriched.vendor) == (Status.ENRICHED, "Vendor Capability", "Acme")
    assert enriched.summary == ENRICHMENT.executive_summary and enriched.hash == "hash-0"
    assert enriched.added_at is not None and enriched.updated_at is not None
    assert ItemContent.from_body(bodies[enriched.id]) == ItemContent(
        summary=ENRICHMENT.summary, executive_summary=ENRICHMENT.executive_summary,
        key_insights=ENRICHMENT.key_insights, text=TEXT)
    assert by_id[ids["failed"]].error == "PDF has no text" and bodies[ids["inbox"]] == {}
    assert [hit.item.id for hit in found.hits] == [ids["enriched"]]


def test_from_notion_later_fetches_only_what_changed(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        ids = notion_fill(fake)
        for page in fake.pages():
            fake.set_times(page["id"], last_edited_time="2024-01-01T10:00:00.000Z")
        first, _ = run_sync("from", tmp_path / "copy.db", fake)
        assert first.total_copied == 3
        with_store(notion_store(fake)[0], lambda store: store._api.update_page(
            ids["inbox"], properties={"Title": {"title": [{"text": {"content": "Renamed in Notion"}}]}}))
        second, events = run_sync("from", tmp_path / "copy.db", fake)
    assert (second.total_copied, second.updated, second.failed) == (0, 1, 0)
    calls = events.notion_calls()
    assert calls.count("data_sources.query") == 1 and "blocks.children.list" not in calls, (
        "only the edited page comes back, and an Inbox page has no body to read")
    titles = {i.id: i.title for i in local_view(tmp_path / "copy.db")[0]}
    assert titles[ids["inbox"]] == "Renamed in Notion"


def test_a_page_edited_in_the_minute_of_a_sync_is_fetched_again(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        notion_fill(fake)
        first, _ = run_sync("from", tmp_path / "copy.db", fake)
        second, _ = run_sync("from", tmp_path / "copy.db", fake)
    assert first.total_copied == 3
    assert second.updated == 3 and second.unchanged == 0, "Notion's minute-wide times cannot tell these apart"


async def fill_with_analyses(local: SqliteStore) -> None:
    await fill_local(local)
    await local.add_enriched(analysed(10), ANALYSED, TEXT)


def test_a_round_trip_through_notion_keeps_every_item(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        run_sync("to", tmp_path / "mine.db", fake, fill=fill_with_analyses)
        run_sync("from", tmp_path / "copy.db", fake)
    original, original_bodies, _ = local_view(tmp_path / "mine.db")
    copied, copied_bodies, _ = local_view(tmp_path / "copy.db")

    def view(items: list, bodies: dict) -> list:
        return sorted((i.hash, i.title, i.status, i.content_type, i.vendor, i.ai_primitives, i.error, i.category,
                       ItemContent.from_body(bodies[i.id])) for i in items)

    assert view(original, original_bodies) == view(copied, copied_bodies)
    (kept,) = [i for i in copied if i.hash == "hash-10"]
    assert kept.category == CATEGORY
    assert list(copied_bodies[kept.id]) == [*BODY_TOGGLES, "SWOT", "Pitch"]
    assert ItemContent.from_body(copied_bodies[kept.id]).analyses() == (
        ANALYSES[0], AnalysisResult("pitch", "Pitch", "paragraph", ANALYSES[1].lines))


def test_to_notion_writes_the_analyses_as_the_enrichment_did(tmp_path: Path) -> None:
    async def fill(local: SqliteStore) -> None:
        await local.add_enriched(analysed(0), ANALYSED, TEXT)

    with start_fake_notion(rps=None) as fake:
        run_sync("to", tmp_path / "mine.db", fake, fill=fill)
        (page,) = fake.pages()
        body = page_toggles(fake, page["id"])
        kinds = [child["type"] for block in fake.blocks_of(page["id"]) if block["type"] == "toggle"
                 and block["toggle"]["rich_text"][0]["plain_text"] == "SWOT" for child in block["children"]]
        values = fake.values(page["id"])
    assert list(body) == [*BODY_TOGGLES, "SWOT", "Pitch"]
    assert body["SWOT"] == list(ANALYSES[0].lines) and body["Pitch"] == list(ANALYSES[1].lines)
    assert kinds == ["paragraph", "bulleted_list_item", "bulleted_list_item"], "the SWOT is still a table"
    assert values["Category"] == CATEGORY


def test_an_interrupted_copy_is_finished_with_its_analyses(tmp_path: Path) -> None:
    many = replace(ANALYSED, key_insights=tuple(f"Insight {n}." for n in range(150)))
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(400, method="PATCH", path="/children", skip=1, message="body failed validation")

        async def fill(local: SqliteStore) -> None:
            await local.add_enriched(analysed(0), many, TEXT)

        first, _ = run_sync("to", tmp_path / "s.db", fake, fill=fill)
        assert first.failed == 1
        second, _ = run_sync("to", tmp_path / "s.db", fake)
        (page,) = fake.pages()
        body = page_toggles(fake, page["id"])
    assert second.completed == 1 and fake.values(page["id"])["Status"] == "Enriched"
    assert list(body) == [*BODY_TOGGLES, "SWOT", "Pitch"] and body["SWOT"] == list(ANALYSES[0].lines)


def test_from_notion_into_the_store_the_items_came_from_updates_them_in_place(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        run_sync("to", tmp_path / "mine.db", fake, fill=fill_local)
        report, _ = run_sync("from", tmp_path / "mine.db", fake)
    assert report.total_copied == 0 and report.updated == 5
    items, _, _ = local_view(tmp_path / "mine.db")
    assert len(items) == 5


def sync_mark(path: Path) -> datetime | None:
    return with_store(SqliteStore(path), lambda store: store.sync_mark("from_notion"))


def test_a_sync_with_failures_does_not_move_its_mark_so_the_next_one_retries(tmp_path: Path) -> None:
    with start_fake_notion(rps=None) as fake:
        notion_fill(fake)
        fake.fail_next(400, method="GET", path="/children", message="body failed validation")
        first, events = run_sync("from", tmp_path / "copy.db", fake)
        assert first.failed == 1 and first.total_copied == 2
        assert events.of("sync_item_failed")[0]["title"] == "Article 0"
        assert sync_mark(tmp_path / "copy.db") is None
        second, _ = run_sync("from", tmp_path / "copy.db", fake)
    assert second.copied == {"Enriched": 1} and second.failed == 0
    moment = sync_mark(tmp_path / "copy.db")
    assert moment is not None and 100 < (datetime.now(timezone.utc) - moment).total_seconds() < 200


def test_an_inbox_email_goes_to_notion_with_its_text(tmp_path: Path) -> None:
    letter = NewItem(title="Weekly AI letter", source_type=SourceType.EMAIL, hash="mail-1",
                     content="Dear reader, this week agents learned to file expenses.",
                     sender="News <news@example.com>")

    async def fill(local: SqliteStore) -> None:
        await local.add(letter)

    with start_fake_notion(rps=None) as fake:
        report, _ = run_sync("to", tmp_path / "s.db", fake, fill=fill)
        (page,) = fake.pages()
        inbox = with_store(notion_store(fake)[0], lambda store: _inbox_of(store))
    assert report.copied == {"Inbox": 1}
    assert page_toggles(fake, page["id"])["Email"] == [letter.content]
    assert [(i.title, i.content) for i in inbox] == [("Weekly AI letter", letter.content)], (
        "a Notion run reads the email's text back from the page")


async def _inbox_of(store: NotionStore) -> list:
    return [item async for item in store.inbox()]
