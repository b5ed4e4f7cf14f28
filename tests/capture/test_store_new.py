"""One item the store will not take never stops capture (issue 12, point 6).

Every capture path (feeds, the PDF folder, ``--add``) writes through
``capture.store_new``. A failure to store one new item rejects that entry
with its reason (``entry_rejected``, counted in ``capture_complete``), the
others are stored, the run goes on, and the entry is tried again next run.

In ``CAPTURE_MODE=inbox-first`` the store writes at capture; in
``enrich-first`` (issue 15) what the store refuses whatever the item holds (a
URL over Notion's limit) is still rejected at capture, while a write that
fails later makes the item Failed or leaves it pending for the next run.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from knowledge_pipeline.runner import EXIT_OK
from tests.conftest import run_in_process
from tests.data.generate import rss_feed, rss_item
from tests.extract.support import Recorder, store_refusing
from tests.fakes.notion_server import start_fake_notion
from tests.fakes.web_server import FakeWebServer

ROOT = Path(__file__).resolve().parents[2]
ARTICLE = "<html><body><article><h1>{t}</h1>" + "<p>Agents shipped by vendors this week. " * 40 + "</p></article></body></html>"
LONG_LINK_QUERY = "?q=" + "x" * 2100


def run(env: dict[str, str], *, capture: str = "feeds", add_url: str | None = None) -> tuple[int, Recorder]:
    result, recorder = run_in_process({"PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000", "RETRY_ATTEMPTS": "0",
                                       "ALLOW_PRIVATE_URLS": "true", "RSS_WINDOW_DAYS": "0", **env},
                                      capture=capture, add_url=add_url)
    return result.exit_code, recorder


def notion_env(notion, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**notion.env(), "JOURNAL_PATH": str(tmp_path / "journal.db"), **extra}


def sqlite_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"SOURCES_DB_PATH": str(tmp_path / "sources.db"), "JOURNAL_PATH": str(tmp_path / "journal.db"), **extra}


def web_feed(tmp_path: Path, web: FakeWebServer, names: list[str]) -> str:
    for name in names:
        web.page(f"/{name}", ARTICLE.format(t=name))
    links = [f"{web.url}/{name}" for name in names]
    feed = tmp_path / "feed.xml"
    feed.write_text(rss_feed(rss_item(n, link=link, title=name) for n, (name, link) in
                             enumerate(zip(names, links))))
    return str(feed)


def rows_of(tmp_path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(tmp_path / "sources.db")
    try:
        return db.execute("SELECT title, status FROM items ORDER BY title").fetchall()
    finally:
        db.close()


def titles(notion) -> dict[str, str]:
    return {notion.values(p["id"])["Title"]: notion.values(p["id"])["Status"] for p in notion.pages()}


@pytest.mark.parametrize("mode", ["enrich-first", "inbox-first"])
def test_a_link_over_notions_limit_rejects_that_entry_only_run_after_run(tmp_path: Path, mode: str):
    with start_fake_notion(database="full", rps=None) as notion, FakeWebServer() as web:
        feed = web_feed(tmp_path, web, ["good-one", "poison" + LONG_LINK_QUERY, "good-two"])
        env = notion_env(notion, tmp_path, RSS_FEEDS=feed, CAPTURE_MODE=mode)
        first, events = run(env)
        second, again = run(env)
        stored = titles(notion)
    assert (first, second) == (EXIT_OK, EXIT_OK)
    assert stored == {"good-one": "Enriched", "good-two": "Enriched"}
    [complete] = events.of("capture_complete")
    assert (complete["added"], complete["rejected"]) == (2, 1)
    assert complete["rejected_reasons"] == {"not stored: URL longer than 2000 characters": 1}
    [rejected] = events.of("entry_rejected")
    assert "URL longer than 2000 characters" in rejected["reason"]
    [complete_again] = again.of("capture_complete")
    assert (complete_again["added"], complete_again["duplicates"], complete_again["rejected"]) == (0, 2, 1)


def test_a_notion_error_after_the_retries_rejects_one_entry_and_the_next_run_stores_it(tmp_path: Path):
    with start_fake_notion(database="full", rps=None) as notion, FakeWebServer() as web:
        feed = web_feed(tmp_path, web, ["first", "second", "third"])
        env = notion_env(notion, tmp_path, RSS_FEEDS=feed, CAPTURE_MODE="inbox-first")
        notion.fail_next(503, method="POST", path="/v1/pages")
        notion.fail_next(400, method="POST", path="/v1/pages", skip=1,
                         message="body failed validation: body.properties.Title.title[0].text.content is invalid.")
        first, events = run(env)
        after_first = titles(notion)
        second, again = run(env)
        after_second = titles(notion)
    assert first == EXIT_OK
    assert after_first == {"second": "Enriched"}
    reasons = sorted(e["reason"] for e in events.of("entry_rejected"))
    assert "service_unavailable (503)" in reasons[0] and "validation_error (400)" in reasons[1]
    assert events.of("capture_complete")[0]["rejected"] == 2
    assert second == EXIT_OK and again.of("capture_complete")[0]["added"] == 2
    assert after_second == {"first": "Enriched", "second": "Enriched", "third": "Enriched"}


def test_a_pdf_the_store_refuses_does_not_stop_the_others(tmp_path: Path):
    folder = tmp_path / "pdfs"
    shutil.copytree(ROOT / "examples" / "pdfs", folder)
    with start_fake_notion(database="full", rps=None) as notion:
        notion.fail_next(503, method="POST", path="/v1/pages")
        code, events = run(notion_env(notion, tmp_path, PDF_DIR=str(folder), CAPTURE_MODE="inbox-first"),
                           capture="pdfs")
        stored = titles(notion)
    [complete] = events.of("capture_complete")
    assert code == EXIT_OK
    assert complete["rejected"] == 1 and complete["added"] == complete["found"] - 1 == len(stored)
    assert "not stored" in complete["errors"][0] and "503" in complete["errors"][0]
    assert set(stored.values()) == {"Enriched"}


@pytest.mark.parametrize("mode", ["enrich-first", "inbox-first"])
def test_an_added_url_the_store_refuses_is_reported_not_a_crash(tmp_path: Path, mode: str):
    with start_fake_notion(database="full", rps=None) as notion:
        code, events = run(notion_env(notion, tmp_path, CAPTURE_MODE=mode),
                           add_url="https://example.com/a" + LONG_LINK_QUERY)
        assert notion.pages() == []
    [complete] = events.of("capture_complete")
    assert code == EXIT_OK and (complete["added"], complete["rejected"]) == (0, 1)
    assert "URL longer than 2000 characters" in complete["errors"][0]


def refused_then_run_again(tmp_path: Path, mode: str):
    """A trigger in the store refuses one URL for one run (as a constraint or a full disk would), then a run without."""
    with FakeWebServer() as web:
        feed = web_feed(tmp_path, web, ["kept", "refused", "also-kept"])
        env = sqlite_env(tmp_path, RSS_FEEDS=feed, CAPTURE_MODE=mode)
        run(sqlite_env(tmp_path))  # creates the store
        with store_refusing(tmp_path / "sources.db", "%/refused"):
            code, events = run(env)
        rows = rows_of(tmp_path)
        _, again = run(env)
        return code, events, rows, again, rows_of(tmp_path)


def test_on_sqlite_an_entry_the_database_refuses_is_rejected_and_tried_again(tmp_path: Path):
    code, events, rows, again, after = refused_then_run_again(tmp_path, "inbox-first")
    assert code == EXIT_OK
    assert rows == [("also-kept", "Enriched"), ("kept", "Enriched")]
    [rejected] = events.of("entry_rejected")
    assert "refused by the test" in rejected["reason"]
    assert again.of("capture_complete")[0]["added"] == 1
    assert after == [("also-kept", "Enriched"), ("kept", "Enriched"), ("refused", "Enriched")]


def test_enrich_first_a_write_the_database_refuses_keeps_the_item_pending_and_paid_for(tmp_path: Path):
    """Enrich-first: the refused item is enriched once, kept in the journal, and stored by the next run."""
    code, events, rows, again, after = refused_then_run_again(tmp_path, "enrich-first")
    assert code == EXIT_OK and rows == [("also-kept", "Enriched"), ("kept", "Enriched")]
    [error] = events.of("item_error")
    assert "refused by the test" in error["error"] and error["recorded"] is False
    assert events.of("capture_complete")[0]["added"] == 3, "the three were captured: none was lost"
    assert again.of("capture_complete")[0]["added"] == 0, "the next run resumes it, it is not captured again"
    assert [e["title"] for e in again.of("item_complete")] == ["refused"]
    assert after == [("also-kept", "Enriched"), ("kept", "Enriched"), ("refused", "Enriched")]
