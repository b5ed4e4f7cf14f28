"""CAPTURE_MODE=enrich-first (issue 15): a new item's page is created once, complete, in one request.

Runs in this process against the fake Notion, OpenAI and web servers: what each
service saw is the ground truth (requests per item, OpenAI calls), the store's
content the result.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from knowledge_pipeline.capture.links import canonical_link
from knowledge_pipeline.config import load_settings
from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import Enrichment, NewItem, SourceType, sha256_text
from knowledge_pipeline.runner import EXIT_OK, FEED_TYPES, RunOptions, run_async
from knowledge_pipeline.telemetry import Telemetry
from knowledge_pipeline.sources.base import BODY_TOGGLES

from .enrich_first_support import Entry, article_page, article_text, notion_env, openai_env, run, write_feed, writes
from .fakes.notion_server import start_fake_notion
from .fakes.openai_server import start_fake_openai
from .fakes.web_server import FakeWebServer


def journal_holding(tmp_path: Path, *items: NewItem, kept: Enrichment | None = None, writing: bool = False) -> None:
    """The journal a killed run left: these items pending, the first with ``kept`` (and ``writing``)."""
    journal = Journal(tmp_path / "data" / "journal.db")
    journal.open()
    for n, item in enumerate(items):
        pending = journal.add_pending(item)
        if n == 0 and kept is not None:
            journal.record_enrichment(pending.id, kept)
        if n == 0 and writing:
            journal.mark_writing(pending.id)
    journal.close()


def toggles(notion, page_id: str) -> list[str]:
    return ["".join(p["plain_text"] for p in b["toggle"]["rich_text"])
            for b in notion.blocks_of(page_id) if b["type"] == "toggle"]


def six_entries(tmp_path: Path, web: FakeWebServer) -> str:
    """Three entries whose feed carries the article, three that point at pages on the web server."""
    entries = [Entry(f"Carried {n}", f"https://example.com/carried/{n}", content=article_text(n)) for n in range(3)]
    for n in range(3, 6):
        web.page(f"/a/{n}", article_page(n))
        entries.append(Entry(f"Linked {n}", f"{web.url}/a/{n}"))
    return write_feed(tmp_path / "feed.xml", entries)


@pytest.mark.parametrize("mode", ["enrich-first", "inbox-first"])
def test_new_feed_items_are_created_complete_in_one_request_each(tmp_path: Path, mode: str):
    with start_fake_notion(rps=None) as notion, start_fake_openai() as openai, FakeWebServer() as web:
        env = notion_env(notion, tmp_path, RSS_FEEDS=six_entries(tmp_path, web), CAPTURE_MODE=mode,
                         **openai_env(openai))
        result, events = run(env)
        pages = notion.pages()
        written = writes(notion)
        fetched = sorted(web.paths())
        calls = openai.stats()["ok"]
        values = [notion.values(p["id"]) for p in pages]
        bodies = [toggles(notion, p["id"]) for p in pages]
    assert result.exit_code == EXIT_OK, result.error
    assert len(pages) == 6 and {v["Status"] for v in values} == {"Enriched"}
    assert all(body == list(BODY_TOGGLES) for body in bodies) and all(v["Summary"] and v["Vendor"] for v in values)
    assert calls == 6 and fetched == ["/a/3", "/a/4", "/a/5"], "feed text is used as it is, the rest fetched once"
    if mode == "enrich-first":
        assert written == (6, 0, 0), "one pages.create per item and nothing else"
        [start] = events.of("run_start")
        assert start["total_items"] == 0 and start["capture_mode"] == "enrich-first"
        assert events.of("progress_update")[-1]["total"] == 6, "the total grows as capture finds items"
    else:
        assert written == (6, 6, 6), "Inbox page, then the body, then the properties"
    summary = result.metrics
    assert summary["items_processed"] == 6 and summary["duplicates_skipped"] == 0


def test_enrichment_starts_while_capture_is_still_reading_feeds(tmp_path: Path):
    """A slow feed does not hold back the items of a fast one (enrich-first); inbox-first waits for both."""
    with FakeWebServer() as web:
        fast = write_feed(tmp_path / "fast.xml", [Entry(f"Fast {n}", f"https://example.com/fast/{n}",
                                                        content=article_text(n)) for n in range(2)])
        web.route("/slow.xml", body=(tmp_path / "fast.xml").read_text().replace("fast", "slow").replace(
            "report 0", "report 10").replace("report 1", "report 11"), content_type="application/rss+xml", delay=1.5)
        orders = {}
        for mode in ("enrich-first", "inbox-first"):
            env = {**_sqlite_env(tmp_path / mode), "RSS_FEEDS": f"{fast},{web.url}/slow.xml", "CAPTURE_MODE": mode}
            result, events = run(env)
            assert result.exit_code == EXIT_OK, result.error
            kinds = [k for k, d in events.events if k == "item_complete" or (k == "capture_complete")]
            orders[mode] = kinds
    assert orders["enrich-first"].index("item_complete") < len(orders["enrich-first"]) - 1 - orders[
        "enrich-first"][::-1].index("capture_complete"), "an item was enriched before the last feed was read"
    assert orders["inbox-first"][:2] == ["capture_complete", "capture_complete"]


def _sqlite_env(folder: Path) -> dict[str, str]:
    return {"SOURCES_DB_PATH": str(folder / "sources.db"), "JOURNAL_PATH": str(folder / "journal.db"),
            "LOG_DIR": str(folder / "logs"), "PARALLEL_RATE_LIMIT": "0", "RSS_WINDOW_DAYS": "0",
            "ALLOW_PRIVATE_URLS": "true"}


def test_a_failed_new_item_is_created_once_failed_and_retry_failed_finishes_it_without_fetching_again(
        tmp_path: Path):
    with start_fake_notion(rps=None) as notion, start_fake_openai() as openai, FakeWebServer() as web:
        web.page("/a/1", article_page(1))
        feed = write_feed(tmp_path / "feed.xml", [Entry("Gone", f"{web.url}/gone"), Entry("One", f"{web.url}/a/1")])
        env = notion_env(notion, tmp_path, RSS_FEEDS=feed, ALERT_FAILURE_RATE="1", **openai_env(openai))
        openai.configure(script=[{"status": 500}])  # the one call made (for "One") fails
        first, events = run(env, parallel=False)
        after_first = {notion.values(p["id"])["Title"]: notion.values(p["id"]) for p in notion.pages()}
        web.page("/gone", article_page(2))
        fetches_before = sorted(web.paths())
        second, again = run(env, retry_failed=True, parallel=False)
        after_second = {notion.values(p["id"])["Title"]: notion.values(p["id"])["Status"] for p in notion.pages()}
        fetches = sorted(web.paths())
    assert first.exit_code == EXIT_OK and second.exit_code == EXIT_OK
    assert {t: v["Status"] for t, v in after_first.items()} == {"Gone": "Failed", "One": "Failed"}
    assert "404" in after_first["Gone"]["Error"] and "500" in after_first["One"]["Error"]
    assert [e["recorded"] for e in events.of("item_error")] == [True, True]
    assert after_second == {"Gone": "Enriched", "One": "Enriched"}, "the same two pages, now Enriched"
    assert fetches_before == ["/a/1", "/gone"] and fetches == ["/a/1", "/gone", "/gone"], \
        "the text read before the failure is not fetched again"
    assert openai.stats()["calls"] == 3


def test_pending_items_of_a_killed_run_are_resumed_first_and_not_paid_again(tmp_path: Path):
    kept = Enrichment("Kept summary.", "Kept executive summary.", "Market News", ("Automation",), "NVIDIA",
                      ("Kept insight.",))
    with start_fake_notion(rps=None) as notion, start_fake_openai() as openai:
        env = notion_env(notion, tmp_path, **openai_env(openai))
        journal_holding(tmp_path,
                        NewItem("Paid for", SourceType.RSS, "h-paid", url="https://e.com/paid", content=article_text(1)),
                        NewItem("Not yet", SourceType.RSS, "h-not-yet", url="https://e.com/not-yet",
                                content=article_text(2)),
                        NewItem("A PDF", SourceType.PDF, "h-pdf", pdf_path="/nowhere/a.pdf"), kept=kept)
        result, events = run(env, parallel=False)
        titles = {notion.values(p["id"])["Title"]: notion.values(p["id"]) for p in notion.pages()}
        calls = openai.stats()["calls"]
    assert result.exit_code == EXIT_OK, result.error
    assert [e["title"] for e in events.of("item_start")] == ["Paid for", "Not yet"], "the feeds script's, oldest first"
    assert set(titles) == {"Paid for", "Not yet"} and titles["Paid for"]["Summary"] == "Kept executive summary."
    assert calls == 1, "the kept enrichment is written, not paid again"
    journal = Journal(tmp_path / "data" / "journal.db")
    journal.open()
    assert journal.pending_hashes() == {"h-pdf"}, "the PDF waits for enrich.py"


@pytest.mark.parametrize("found", ["enriched", "failed-incomplete", "absent"])
def test_a_create_that_may_have_landed_is_looked_up_by_hash_before_creating(tmp_path: Path, found: str):
    """The journal says a create had started (kill -9 before the reply): the page is found, finished or made."""
    kept = Enrichment("Kept.", "Kept executive.", "Market News", ("Automation",), None, ("Insight.",))
    with start_fake_notion(rps=None) as notion, start_fake_openai() as openai:
        existing = []
        if found != "absent":
            existing = notion.seed([{"Title": "Landed", "Status": "Enriched" if found == "enriched" else "Failed",
                                     "Source Type": "RSS", "Hash": "h-landed", "Article URL": "https://e.com/l"}])
        env = notion_env(notion, tmp_path, **openai_env(openai))
        journal_holding(tmp_path, NewItem("Landed", SourceType.RSS, "h-landed", url="https://e.com/l",
                                          content=article_text(3)), kept=kept, writing=True)
        result, events = run(env, parallel=False)
        pages = notion.pages()
        created = writes(notion)[0]
        body = toggles(notion, pages[0]["id"])
        status = notion.values(pages[0]["id"])["Status"]
    assert result.exit_code == EXIT_OK, result.error
    assert len(pages) == 1 and status == "Enriched" and openai.stats()["calls"] == 0
    assert [p["id"] for p in pages] == existing or found == "absent"
    assert created == (1 if found == "absent" else 0)
    assert body == ([] if found == "enriched" else list(BODY_TOGGLES)), "a found Enriched page is left as it is"
    assert [e["title"] for e in events.of("item_complete")] == ["Landed"]


def test_an_item_added_by_hand_is_enriched_into_one_page(tmp_path: Path):
    with start_fake_notion(rps=None) as notion, FakeWebServer() as web:
        web.page("/saved", article_page(7))
        result, _ = run(notion_env(notion, tmp_path), add_url=f"{web.url}/saved")
        [page] = notion.pages()
        assert writes(notion) == (1, 0, 0) and notion.values(page["id"])["Status"] == "Enriched"
    assert result.exit_code == EXIT_OK and result.captures[0].added == 1


def test_on_sqlite_a_new_item_is_one_transaction_row_and_body_or_nothing(tmp_path: Path):
    """A body the database refuses for one item rolls its row back too: that item ends Failed, never Inbox."""
    import sqlite3

    feed = write_feed(tmp_path / "feed.xml", [Entry(f"Carried {n}", f"https://example.com/c/{n}",
                                                    content=article_text(n)) for n in range(4)])
    run({**_sqlite_env(tmp_path), "RSS_FEEDS": ""})  # creates the store
    db = sqlite3.connect(tmp_path / "sources.db")
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON blocks WHEN NEW.text LIKE '%report 2.%' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    db.commit()
    result, events = run({**_sqlite_env(tmp_path), "RSS_FEEDS": feed, "ALERT_FAILURE_RATE": "1"})
    rows = dict(db.execute("SELECT title, status FROM items").fetchall())
    bodies = dict(db.execute("SELECT i.title, COUNT(b.item_id) FROM items i LEFT JOIN blocks b ON b.item_id = i.id "
                             "GROUP BY i.id").fetchall())
    db.close()
    assert result.exit_code == EXIT_OK
    assert rows == {"Carried 0": "Enriched", "Carried 1": "Enriched", "Carried 2": "Failed", "Carried 3": "Enriched"}
    assert bodies["Carried 2"] == 0 and "refused by the test" in events.of("item_error")[0]["error"]


def test_a_dry_run_lists_what_a_stopped_run_left_pending_and_does_not_count_it_as_new(tmp_path: Path):
    feed = write_feed(tmp_path / "feed.xml", [Entry("Left pending", "https://example.com/left", content=article_text(1)),
                                              Entry("New", "https://example.com/new", content=article_text(2))])
    env = {**_sqlite_env(tmp_path), "RSS_FEEDS": feed, "JOURNAL_PATH": str(tmp_path / "data" / "journal.db")}
    journal_holding(tmp_path, NewItem("Left pending", SourceType.RSS, sha256_text(canonical_link("https://example.com/left")),
                                      url="https://example.com/left", content=article_text(1)))
    before = (tmp_path / "data" / "journal.db").read_bytes()
    options = RunOptions(script="test", source_types=FEED_TYPES, capture="feeds", dry_run=True)
    result = asyncio.run(run_async(load_settings(env, env_file=None), options, Telemetry("test")))
    assert result.exit_code == EXIT_OK
    assert [i.title for i in result.would_add] == ["New"], "the pending item is known, not captured again"
    assert [i.title for i in result.would_enrich] == ["Left pending"]
    assert (tmp_path / "data" / "journal.db").read_bytes() == before and not (tmp_path / "sources.db").exists()
