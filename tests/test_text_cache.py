"""The text cache: kept texts come back, the size cap holds, least recently used go first."""

from __future__ import annotations

import sqlite3
import stat
import zlib

from knowledge_pipeline.text_cache import TextCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def incompressible(seed: int, size: int) -> str:
    import random

    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(size))


def test_texts_come_back_and_the_file_is_private(tmp_path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=1_000_000)
    cache.open()
    cache.put("h1", "Fahrspaß — 人工智能 " * 100)
    assert cache.get("h1") == "Fahrspaß — 人工智能 " * 100
    assert cache.get("missing") is None and cache.get(None) is None
    cache.close()
    assert stat.S_IMODE((tmp_path / "cache.db").stat().st_mode) == 0o600
    again = TextCache(tmp_path / "cache.db", max_bytes=1_000_000)
    again.open()
    assert again.get("h1").startswith("Fahrspaß")
    again.close()


def test_least_recently_used_texts_leave_first_and_the_cap_holds(tmp_path):
    texts = {f"h{n}": incompressible(n, 7_000) for n in range(4)}
    one = len(zlib.compress(texts["h0"].encode(), 6))
    cap = 3 * one + one // 2  # room for three texts, not four
    cache = TextCache(tmp_path / "cache.db", max_bytes=cap, clock=Clock())
    cache.open()
    for n in range(3):
        cache.put(f"h{n}", texts[f"h{n}"])
    assert cache.get("h0") is not None  # h0 is now the most recently used
    cache.put("h3", texts["h3"])
    assert "h1" not in cache
    assert all(key in cache for key in ("h0", "h2", "h3"))
    assert cache.size_bytes() <= cap
    cache.put("huge", incompressible(9, 30_000))
    assert "huge" not in cache and "h0" in cache
    cache.close()


def test_a_damaged_entry_is_a_miss(tmp_path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=1_000_000)
    cache.open()
    cache.put("h1", "some text")
    with sqlite3.connect(tmp_path / "cache.db") as db:
        db.execute("UPDATE texts SET data = x'00ff00' WHERE key = 'h1'")
    assert cache.get("h1") is None
    cache.close()


def test_a_zero_cap_disables_the_cache(tmp_path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=0)
    cache.open()
    cache.put("h1", "text")
    assert cache.get("h1") is None
    cache.close()


# --- in runs (issue 15): every backend reuses what was fetched ------------------------------------

import pytest  # noqa: E402

from knowledge_pipeline.runner import EXIT_OK  # noqa: E402
from tests.enrich_first_support import (  # noqa: E402
    Entry, article_page, article_text, base_env, notion_env, openai_env, run, write_feed,
)
from tests.fakes.notion_server import start_fake_notion  # noqa: E402
from tests.fakes.openai_server import start_fake_openai  # noqa: E402
from tests.fakes.web_server import FakeWebServer  # noqa: E402


@pytest.mark.parametrize("mode", ["enrich-first", "inbox-first"])
def test_feed_text_captured_in_one_run_serves_retry_failed_in_the_next_on_notion(tmp_path, mode):
    """Notion keeps no feed text between runs; the cache does, so the article page is never fetched."""
    with start_fake_notion(rps=None) as notion, start_fake_openai() as openai, FakeWebServer() as web:
        feed = write_feed(tmp_path / "feed.xml", [Entry("Carried", f"{web.url}/never-fetched",
                                                        content=article_text(5))])
        env = notion_env(notion, tmp_path, RSS_FEEDS=feed, CAPTURE_MODE=mode, ALERT_FAILURE_RATE="1",
                         **openai_env(openai))
        openai.configure(script=[{"status": 500}])
        first, _ = run(env, parallel=False)
        failed = [notion.values(p["id"])["Status"] for p in notion.pages()]
        second, events = run(env, retry_failed=True, parallel=False)
        [page] = notion.pages()
        status = notion.values(page["id"])["Status"]
        fetched = web.paths()
    assert (first.exit_code, second.exit_code) == (EXIT_OK, EXIT_OK) and failed == ["Failed"]
    assert status == "Enriched" and fetched == [], "the feed's text came from the cache, not from the web"
    assert events.of("item_complete")[0]["content_length"] > 500


@pytest.mark.parametrize(("cache_mb", "fetches"), [("200", 1), ("0", 2)])
def test_an_item_put_back_in_the_inbox_is_enriched_again_from_the_kept_text(tmp_path, cache_mb, fetches):
    import sqlite3

    with FakeWebServer() as web:
        web.page("/a", article_page(8))
        env = {**base_env(tmp_path), "RSS_FEEDS": write_feed(tmp_path / "feed.xml", [Entry("A", f"{web.url}/a")]),
               "CACHE_MAX_MB": cache_mb}
        first, _ = run(env)
        db = sqlite3.connect(tmp_path / "data" / "sources.db")
        db.execute("UPDATE items SET status = 'Inbox'")  # a re-enrichment asked for by hand
        db.commit()
        second, events = run(env)
        status = db.execute("SELECT status FROM items").fetchall()
        db.close()
        paths = web.paths()
    assert (first.exit_code, second.exit_code) == (EXIT_OK, EXIT_OK)
    assert status == [("Enriched",)] and len(events.of("item_complete")) == 1, "re-enriched, not a duplicate of itself"
    assert len(paths) == fetches
    assert (tmp_path / "data" / "text_cache.db").exists() == (cache_mb != "0")
