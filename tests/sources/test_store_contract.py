"""One contract, every backend: the same calls give the same observable results on SQLite and Notion.

The Notion store runs on the real ``notion_client.AsyncClient`` against the
fake Notion server (rate limit off here; limits are tested in
tests/sources/test_notion_store.py and tests/fakes/test_notion_fake.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest

from knowledge_pipeline.errors import ItemError
from knowledge_pipeline.models import AnalysisResult, Enrichment, NewItem, SourceType, Status, Taxonomy
from knowledge_pipeline.sources.base import BODY_TOGGLES, ItemContent, ItemQuery
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.conftest import with_store
from tests.fakes.notion_server import FakeNotion, start_fake_notion
from tests.sources.notion_support import notion_store


@dataclass
class Backend:
    name: str
    make: Callable[[], Any]
    fake: FakeNotion | None = None

    def run(self, scenario: Callable[[Any], Awaitable[Any]]) -> Any:
        return with_store(self.make(), scenario)


@pytest.fixture(params=["sqlite", "notion"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", lambda: SqliteStore(tmp_path / "sources.db"))
        return
    with start_fake_notion(rps=None) as fake:
        yield Backend("notion", lambda: notion_store(fake)[0], fake)


def rss(n: int, **extra: Any) -> NewItem:
    return NewItem(title=f"Article {n}", source_type=SourceType.RSS, hash=f"hash-rss-{n}",
                   url=f"https://example.com/posts/{n}", created_date=date(2024, 5, n % 28 + 1), **extra)


def pdf(n: int) -> NewItem:
    return NewItem(title=f"Report {n}", source_type=SourceType.PDF, hash=f"hash-pdf-{n}",
                   pdf_path=f"file:///srv/pdfs/report-{n}.pdf")


ENRICHMENT = Enrichment(
    summary="First paragraph of the summary.\n\nSecond paragraph, with detail.",
    executive_summary="Acme ships a model router for enterprise teams.",
    content_type="Vendor Capability",
    ai_primitives=("Automation", "Research"),
    vendor="Acme",
    key_insights=("Routing cuts cost by a third.", "Latency stays flat under load."),
    published_date=date(2024, 3, 9),
)
TEXT = "Full article text.\n\nIt has several paragraphs.\n\nAnd a last one with ümlauts and emoji \U0001F680."


async def _collect(stream: Any) -> list:
    return [item async for item in stream]


def test_add_then_known_hashes_and_inbox_in_order(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        added = [await store.add(rss(1)), await store.add(pdf(2)), await store.add(rss(3))]
        return added, await store.known_hashes(), await _collect(store.inbox())

    added, hashes, inbox = backend.run(scenario)
    assert hashes == {"hash-rss-1", "hash-pdf-2", "hash-rss-3"}
    assert [i.id for i in inbox] == [i.id for i in added]
    first, second = inbox[0], inbox[1]
    assert (first.title, first.source_type, first.status) == ("Article 1", SourceType.RSS, Status.INBOX)
    assert (first.url, first.hash, first.created_date) == ("https://example.com/posts/1", "hash-rss-1", date(2024, 5, 2))
    assert (second.source_type, second.pdf_path, second.url) == (SourceType.PDF, "file:///srv/pdfs/report-2.pdf", None)
    assert not first.archived and first.error is None and first.summary is None


def test_a_later_run_knows_the_hashes_so_capture_skips_duplicates(backend: Backend) -> None:
    async def first_run(store: Any) -> None:
        await store.add(rss(1))
        await store.add(pdf(2))

    async def second_run(store: Any) -> Any:
        known = await store.known_hashes()
        for new in (rss(1), rss(3), pdf(2)):
            if new.hash not in known:
                await store.add(new)
                known.add(new.hash)
        return known, [i.title for i in await _collect(store.list_items())]

    backend.run(first_run)
    known, titles = backend.run(second_run)
    assert known == {"hash-rss-1", "hash-pdf-2", "hash-rss-3"}
    assert titles == ["Article 1", "Report 2", "Article 3"]


def test_feed_content_given_at_capture_is_there_for_this_run(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        await store.add(rss(1, content="The whole feed article."))
        return await _collect(store.inbox())

    assert [i.content for i in backend.run(scenario)] == ["The whole feed article."]


def test_inbox_filters_by_source_type_and_counts(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        for n in range(3):
            await store.add(rss(n))
        await store.add(pdf(9))
        return (
            [i.title for i in await _collect(store.inbox([SourceType.PDF]))],
            [i.title for i in await _collect(store.inbox([SourceType.RSS, SourceType.WEBSITE]))],
            await store.count_inbox(), await store.count_inbox([SourceType.RSS]), await store.count_inbox([SourceType.PDF]),
        )

    pdfs, feeds, total, rss_count, pdf_count = backend.run(scenario)
    assert pdfs == ["Report 9"]
    assert feeds == ["Article 0", "Article 1", "Article 2"]
    assert (total, rss_count, pdf_count) == (4, 3, 1)


def test_inbox_streams_past_one_page(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        for n in range(130):
            await store.add(rss(n))
        return [i.title for i in await _collect(store.inbox())], await store.count_inbox()

    titles, count = backend.run(scenario)
    assert titles == [f"Article {n}" for n in range(130)]
    assert count == 130


def test_write_enrichment_sets_properties_status_and_one_body(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        dated = await store.add(rss(1))
        undated = await store.add(NewItem(title="No date", source_type=SourceType.WEBSITE, hash="h-web",
                                          url="https://example.com/page"))
        await store.write_enrichment(dated, ENRICHMENT, TEXT)
        await store.write_enrichment(undated, ENRICHMENT, TEXT)
        return await _collect(store.list_items()), await store.body(dated.id)

    items, body = backend.run(scenario)
    dated, undated = items
    assert dated.status == Status.ENRICHED
    assert dated.summary == ENRICHMENT.executive_summary
    assert dated.content_type == "Vendor Capability"
    assert set(dated.ai_primitives) == {"Automation", "Research"}
    assert dated.vendor == "Acme"
    assert dated.created_date == date(2024, 5, 2), "an existing date is kept"
    assert undated.created_date == date(2024, 3, 9), "the published date fills an empty one"
    assert list(body) == list(BODY_TOGGLES)
    assert "\n\n".join(body["Summary"]) == ENRICHMENT.summary
    assert "\n\n".join(body["Executive Summary"]) == ENRICHMENT.executive_summary
    assert body["Key Insights"] == list(ENRICHMENT.key_insights)
    assert "\n\n".join(body["Raw"]) == TEXT


def test_repair_after_an_earlier_write_leaves_exactly_one_body(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        item = await store.add(rss(1))
        await store.write_enrichment(item, ENRICHMENT, "first attempt")
        await store.write_enrichment(item, ENRICHMENT, TEXT, repair=True)
        return await store.body(item.id)

    body = backend.run(scenario)
    assert list(body) == list(BODY_TOGGLES)
    assert body["Key Insights"] == list(ENRICHMENT.key_insights)
    assert "\n\n".join(body["Raw"]) == TEXT


ANALYSED = dataclasses.replace(ENRICHMENT, analyses=(
    AnalysisResult("swot", "SWOT", "table", ("S/W/O/T | Point", "S | Routing is fast", "W | Costly at small scale")),
    AnalysisResult("newsletter", "Newsletter Paragraph", "paragraph", ("Acme's router picks the cheapest model.",)),
    AnalysisResult("tags", "Thematic Tags", "bullets", ("routing", "latency")),
    AnalysisResult("talk", "Talk Outline", "bullets", ("[Not available: no model]",), placeholder=True),
))


def test_analyses_are_toggles_after_the_four_and_a_repair_leaves_one_of_each(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        item = await store.add(rss(1))
        await store.write_enrichment(item, ANALYSED, "first attempt")
        await store.write_enrichment(item, ANALYSED, TEXT, repair=True)
        return await store.body(item.id)

    body = backend.run(scenario)
    assert list(body) == [*BODY_TOGGLES, "SWOT", "Newsletter Paragraph", "Thematic Tags", "Talk Outline"]
    assert body["Key Insights"] == list(ENRICHMENT.key_insights)
    for result in ANALYSED.analyses:
        assert body[result.title] == list(result.lines), result.name
    if backend.fake is not None:
        page = backend.fake.pages()[0]["id"]
        kinds = {plain: [c["type"] for c in b.get("children", [])] for b in backend.fake.blocks_of(page)
                 if b["type"] == "toggle" for plain in ["".join(p["plain_text"] for p in b["toggle"]["rich_text"])]}
        assert kinds["SWOT"] == ["paragraph", "bulleted_list_item", "bulleted_list_item"]
        assert kinds["Thematic Tags"] == ["bulleted_list_item"] * 2
        assert kinds["Talk Outline"] == ["paragraph"]


def test_mark_failed_and_retry_failed_by_reason(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        items = [await store.add(rss(n)) for n in range(3)] + [await store.add(pdf(7))]
        await store.mark_failed(items[0], "Fetch timed out after 60s")
        await store.mark_failed(items[1], "HTTP 404 from example.com")
        await store.mark_failed(items[3], "PDF has no text (scanned?)")
        failed = await _collect(store.list_items(Status.FAILED))
        inbox_before = await store.count_inbox()
        by_reason = await store.retry_failed("TIMED OUT")
        by_type = await store.retry_failed(source_types=[SourceType.PDF])
        rest = await store.retry_failed()
        return failed, inbox_before, (by_reason, by_type, rest), await _collect(store.inbox())

    failed, inbox_before, counts, inbox = backend.run(scenario)
    assert {i.title: i.error for i in failed} == {
        "Article 0": "Fetch timed out after 60s",
        "Article 1": "HTTP 404 from example.com",
        "Report 7": "PDF has no text (scanned?)",
    }
    assert all(i.status == Status.FAILED for i in failed)
    assert inbox_before == 1
    assert counts == (1, 1, 1)
    assert sorted(i.title for i in inbox) == ["Article 0", "Article 1", "Article 2", "Report 7"]


def test_list_items_filters_by_status(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        items = [await store.add(rss(n)) for n in range(4)]
        await store.write_enrichment(items[1], ENRICHMENT, TEXT)
        await store.mark_failed(items[2], "boom")
        return {
            status: [i.title for i in await _collect(store.list_items(status))]
            for status in (None, Status.INBOX, Status.ENRICHED, Status.FAILED)
        }

    listed = backend.run(scenario)
    assert listed[None] == ["Article 0", "Article 1", "Article 2", "Article 3"]
    assert listed[Status.INBOX] == ["Article 0", "Article 3"]
    assert listed[Status.ENRICHED] == ["Article 1"]
    assert listed[Status.FAILED] == ["Article 2"]


def test_default_taxonomy(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        return await store.taxonomy()

    assert backend.run(scenario) == Taxonomy()


def _backdate(backend: Backend, store: Any, item_id: str, added: str) -> None:
    """Set an item's capture time (both stores stamp "now", to the second or the minute)."""
    if backend.fake is not None:
        backend.fake.set_times(item_id, created_time=added.replace("+00:00", ".000Z"))
    else:
        store.db.execute("UPDATE items SET added_at = ? WHERE id = ?", (added, item_id))


LABELLED = Enrichment(
    summary="About pasta.", executive_summary="A pasta recipe.", content_type="Personal Note",
    ai_primitives=("Research",), vendor="Mistral", key_insights=("Salt the water.",),
)


def test_list_items_filters_sorts_and_pages(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        items = [await store.add(rss(n)) for n in range(5)] + [await store.add(pdf(5))]
        for n, item in enumerate(items):
            _backdate(backend, store, item.id, f"2024-06-0{n + 1}T08:00:00+00:00")
        await store.write_enrichment(items[1], ENRICHMENT, TEXT)
        await store.write_enrichment(items[2], LABELLED, TEXT)
        await store.write_enrichment(items[5], ENRICHMENT, TEXT)
        await store.mark_failed(items[3], "HTTP 404")

        async def titles(**fields: Any) -> list[str]:
            return [i.title for i in await _collect(store.list_items(ItemQuery(**fields)))]

        return {
            "newest": await titles(newest_first=True),
            "oldest": await titles(),
            "type": await titles(content_type="vendor capability"),
            "vendor": await titles(vendor="ACME", newest_first=True),
            "primitive": await titles(primitive="research"),
            "automation": await titles(primitive="Automation", source_type=SourceType.PDF),
            "failed": await titles(status=Status.FAILED),
            "since": await titles(added_since=datetime(2024, 6, 4, tzinfo=timezone.utc), newest_first=True),
            "page": await titles(newest_first=True, limit=2, offset=1),
            "count": await store.count_items(ItemQuery(status=Status.ENRICHED, limit=1)),
            "count_all": await store.count_items(),
            "count_since": await store.count_items(ItemQuery(added_since=datetime(2024, 6, 5, tzinfo=timezone.utc))),
        }

    got = backend.run(scenario)
    assert got["newest"] == ["Report 5", "Article 4", "Article 3", "Article 2", "Article 1", "Article 0"]
    assert got["oldest"] == list(reversed(got["newest"]))
    assert got["type"] == ["Article 1", "Report 5"], "labels match whatever their case"
    assert got["vendor"] == ["Report 5", "Article 1"]
    assert got["primitive"] == ["Article 1", "Article 2", "Report 5"]
    assert got["automation"] == ["Report 5"]
    assert got["failed"] == ["Article 3"]
    assert got["since"] == ["Report 5", "Article 4", "Article 3"]
    assert got["page"] == ["Article 4", "Article 3"]
    assert (got["count"], got["count_all"], got["count_since"]) == (3, 6, 2)


def test_items_carry_when_they_were_added_and_last_changed(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        item = await store.add(rss(1))
        await store.write_enrichment(item, ENRICHMENT, TEXT)
        return item, await _collect(store.list_items())

    added, (listed,) = backend.run(scenario)
    now = datetime.now(timezone.utc)
    assert added.added_at is not None and abs((now - added.added_at).total_seconds()) < 120
    assert listed.updated_at is not None and listed.updated_at >= listed.added_at


def test_get_by_id_or_unique_prefix(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        items = [await store.add(rss(n)) for n in range(3)]
        whole = await store.get(items[1].id)
        prefix = await store.get(items[2].id.replace("-", "")[:10])
        errors = []
        for wanted in ("ffffffffffffffffffffffffffffffff", "zz", ""):
            try:
                await store.get(wanted)
            except ItemError as exc:
                errors.append(str(exc))
        return items, whole, prefix, errors

    items, whole, prefix, errors = backend.run(scenario)
    assert whole.id == items[1].id and whole.title == "Article 1"
    assert prefix.id == items[2].id
    assert len(errors) == 3 and "not found" in errors[0]


def test_add_enriched_stores_a_complete_item(backend: Backend) -> None:
    async def scenario(store: Any) -> Any:
        added = await store.add_enriched(rss(4), ENRICHMENT, TEXT)
        return added, await _collect(store.list_items()), await store.body(added.id), await store.count_inbox()

    added, listed, body, inbox = backend.run(scenario)
    assert [i.id for i in listed] == [added.id]
    (item,) = listed
    assert (item.status, item.content_type, item.vendor, item.summary) == (
        Status.ENRICHED, "Vendor Capability", "Acme", ENRICHMENT.executive_summary)
    assert set(item.ai_primitives) == {"Automation", "Research"} and item.hash == "hash-rss-4"
    assert ItemContent.from_body(body) == ItemContent(
        summary=ENRICHMENT.summary, executive_summary=ENRICHMENT.executive_summary,
        key_insights=ENRICHMENT.key_insights, text=TEXT)
    assert inbox == 0


def test_a_found_title_and_the_warnings_are_stored_and_a_clean_rerun_clears_the_warnings(backend: Backend) -> None:
    import dataclasses

    partial = dataclasses.replace(ENRICHMENT, title="The document's own title",
                                  warnings=("30 of 40 pages read (MAX_PDF_PAGES)",))

    async def scenario(store: Any) -> Any:
        item = await store.add(rss(1))
        await store.write_enrichment(item, partial, TEXT)
        first = await _collect(store.list_items())
        await store.write_enrichment(first[0], ENRICHMENT, TEXT, repair=True)
        return first, await _collect(store.list_items())

    [first], [second] = backend.run(scenario)
    assert (first.title, first.warnings) == ("The document's own title", ("30 of 40 pages read (MAX_PDF_PAGES)",))
    assert (second.title, second.warnings) == ("The document's own title", ())
def test_an_email_keeps_its_text_for_a_later_session_with_or_without_a_link(backend: Backend) -> None:
    """Email items have no page to fetch again: their text must survive the process that captured them."""
    text = "Issue 42 of the newsletter.\n\nA paragraph with <angle> brackets & ümlauts."
    emails = [NewItem(title="Issue 42", source_type=SourceType.EMAIL, hash="hash-email-42", content=text,
                      sender="News <news@example.com>"),
              NewItem(title="Issue 43", source_type=SourceType.EMAIL, hash="hash-email-43", content=text + " 43",
                      url="https://news.example.com/p/43")]

    async def capture(store: Any) -> None:
        for email in emails:
            await store.add(email)

    async def later(store: Any) -> Any:
        return await _collect(store.inbox([SourceType.EMAIL])), await store.count_inbox([SourceType.EMAIL])

    backend.run(capture)
    items, count = backend.run(later)
    assert count == 2 and [(i.title, i.source_type, i.url) for i in items] == [
        ("Issue 42", SourceType.EMAIL, None), ("Issue 43", SourceType.EMAIL, "https://news.example.com/p/43")]
    assert [i.content for i in items] == [text, text + " 43"]
