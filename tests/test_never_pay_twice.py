"""Never pay twice for one article (issue 15): one LLM call per article, however many copies arrive.

One article reachable by three URLs (its own, a mobile copy naming it canonical,
a short link redirecting to it), a syndicated copy with other boilerplate, one
unrelated article, and one report saved twice as PDF under two names (different
bytes, same text). The fake OpenAI counts the calls: one per article. A copy
costs no page in enrich-first mode, and is marked Duplicate in inbox-first mode;
neither counts as a failure, and the next run captures none of them again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from knowledge_pipeline.runner import EXIT_OK
from tests.data.generate import text_pdf

from .enrich_first_support import Entry, article_page, base_env, notion_env, openai_env, run, write_feed
from .fakes.notion_server import start_fake_notion
from .fakes.openai_server import start_fake_openai
from .fakes.web_server import FakeWebServer

REPORT_LINES = [["Quarterly report on automation at NVIDIA.", "Agents closed a third of the tickets.",
                 "Costs fell while answers stayed as good."],
                ["Second page: the teams plan to extend the pilot to finance next year."]]


def serve(web: FakeWebServer) -> None:
    web.page("/story", article_page(20, canonical=f"{web.url}/story"))
    web.page("/m/story", article_page(20, canonical=f"{web.url}/story", chrome="Example Mobile"))
    web.redirect("/go/123", "/story")
    syndicated = article_page(20, chrome="Wire Service").replace(
        "<h1>Report 20</h1>", "<h1>Report 20</h1><p>This story first appeared on Example News.</p>")
    web.page("/wire/story", syndicated)
    web.page("/other", article_page(21))


def entries(web: FakeWebServer) -> list[Entry]:
    return [Entry("The story", f"{web.url}/story"), Entry("The story (mobile)", f"{web.url}/m/story"),
            Entry("Short link", f"{web.url}/go/123"), Entry("Syndicated", f"{web.url}/wire/story"),
            Entry("Something else", f"{web.url}/other")]


def pdf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "q3-report.pdf").write_bytes(text_pdf(REPORT_LINES, title="Q3 report"))
    (folder / "q3-report (1).pdf").write_bytes(text_pdf(REPORT_LINES, title="Q3 report, final version"))
    return folder


@pytest.mark.parametrize("backend", ["notion", "sqlite"])
@pytest.mark.parametrize("mode", ["enrich-first", "inbox-first"])
def test_one_llm_call_per_article_whatever_the_copies(tmp_path: Path, backend: str, mode: str):
    with start_fake_notion(rps=None) as notion, start_fake_openai() as openai, FakeWebServer() as web:
        serve(web)
        folder = pdf_folder(tmp_path)
        env = {**(notion_env(notion, tmp_path) if backend == "notion" else base_env(tmp_path)), **openai_env(openai),
               "CAPTURE_MODE": mode, "RSS_FEEDS": write_feed(tmp_path / "feed.xml", entries(web)),
               "PDF_DIR": str(folder), "ALERT_FAILURE_RATE": "0"}
        feeds, feed_events = run(env)
        pdfs, pdf_events = run(env, capture="pdfs")
        calls = openai.stats()["calls"]
        again, again_events = run(env)
        again_pdfs, _ = run(env, capture="pdfs")
        calls_again = openai.stats()["calls"] - calls
        statuses = stored_statuses(notion, tmp_path, backend)
    assert (feeds.exit_code, pdfs.exit_code, again.exit_code, again_pdfs.exit_code) == (EXIT_OK,) * 4
    assert calls == 3, "the story, the other article and the report: one call each"
    duplicates = feed_events.of("item_duplicate") + pdf_events.of("item_duplicate")
    assert len(duplicates) == 4
    assert {d["duplicate_of"]["title"] for d in duplicates} <= {"The story", "The story (mobile)", "Short link",
                                                                 "Syndicated", "q3-report", "Q3 report",
                                                                 "Q3 report, final version"}
    hows = sorted(d["how"] for d in duplicates)
    assert "same text" in hows and any(h.startswith("near-duplicate text") for h in hows), hows
    assert any(h == "same canonical URL" for h in hows), hows
    assert feeds.metrics["duplicates_skipped"] == 3 and pdfs.metrics["duplicates_skipped"] == 1
    assert feeds.metrics["items_failed"] == 0, "a duplicate is not a failure (ALERT_FAILURE_RATE=0 held)"
    if mode == "enrich-first":
        assert sorted(statuses) == ["Enriched"] * 3, "no page for a copy"
    else:
        assert sorted(statuses) == ["Duplicate"] * 4 + ["Enriched"] * 3
    assert calls_again == 0 and sum(c["added"] for c in again_events.of("capture_complete")) == 0, \
        "the next run captures none of the copies again"


def stored_statuses(notion, tmp_path: Path, backend: str) -> list[str]:
    if backend == "notion":
        return [notion.values(p["id"])["Status"] for p in notion.pages()]
    db = sqlite3.connect(tmp_path / "data" / "sources.db")
    try:
        return [row[0] for row in db.execute("SELECT status FROM items")]
    finally:
        db.close()


def test_an_inbox_duplicate_says_what_it_duplicates_where_a_reader_looks(tmp_path: Path):
    with start_fake_notion(rps=None) as notion, FakeWebServer() as web:
        serve(web)
        env = {**notion_env(notion, tmp_path), "CAPTURE_MODE": "inbox-first", "PARALLEL_MAX_WORKERS": "1",
               "RSS_FEEDS": write_feed(tmp_path / "feed.xml", entries(web)[:2])}
        result, _ = run(env, parallel=False)
        rows = {notion.values(p["id"])["Title"]: notion.values(p["id"]) for p in notion.pages()}
    assert result.exit_code == EXIT_OK
    copy = rows["The story (mobile)"]
    assert copy["Status"] == "Duplicate"
    assert copy["Error"] == f'Duplicate of "The story" ({web.url}/story): same canonical URL'
