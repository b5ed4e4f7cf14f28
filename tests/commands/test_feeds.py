"""``python3 -m knowledge_pipeline feeds ...`` in process, against the fake feed server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from knowledge_pipeline.__main__ import main
from knowledge_pipeline.feeds.feed_list import read_feed_file
from knowledge_pipeline.feeds.opml import FeedSpec
from tests.fakes.feed_server import FakeFeedServer, rss_document
from tests.feeds.support import poll, write_list
from tests.feeds.test_opml import READER_EXPORT

PAGE = '<html><head><title>Blog</title>{link}</head><body><p>Hello</p></body></html>'


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run the command in tmp_path (feeds.opml and data/feeds.db there); returns (code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    for name in ("RSS_FEEDS", "FEEDS_FILE", "FEED_STATE_PATH", "SOURCES_BACKEND", "NOTION_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("RETRY_ATTEMPTS", "0")

    def run(*args: str, **env: str) -> tuple[int, str, str]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code = main(["feeds", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_add_finds_a_sites_feed_from_its_page_and_lists_it(cli, tmp_path):
    with FakeFeedServer() as server:
        feed = server.feed("127.0.0.1", "/feed.xml", rss_document("blog.test", 3))
        server.page("127.0.0.1", "/", PAGE.format(link='<link rel="alternate" type="application/atom+xml" '
                                                       'title="Posts" href="/feed.xml">'))
        code, out, err = cli("add", server.url("127.0.0.1", "/"))
    assert (code, err) == (0, "")
    assert f"Found the feed of {server.url('127.0.0.1', '/')}: {feed}" in out
    listed = read_feed_file(tmp_path / "feeds.opml")
    assert [(f.url, f.title, f.html_url) for f in listed] == [(feed, "blog.test news", "https://blog.test/")]
    code, out, _ = cli("list")
    assert code == 0 and "new" in out and feed in out and "1 feed: 1 new" in out
    assert cli() == (0, out, ""), "`feeds` alone lists the feeds"


def test_add_tries_the_usual_feed_paths_when_the_page_announces_none(cli, tmp_path):
    with FakeFeedServer() as server:
        feed = server.feed("127.0.0.1", "/blog/feed/", rss_document("blog.test", 3))
        server.page("127.0.0.1", "/blog/", PAGE.format(link=""))
        code, out, _ = cli("add", server.url("127.0.0.1", "/blog/"), "--title", "My blog", "--window-days", "14",
                           "--category", "Friends")
        tried = [r["path"] for r in server.requests_to("127.0.0.1")]
    assert code == 0 and tried == ["/blog/", "/blog/feed", "/blog/feed/"]
    assert read_feed_file(tmp_path / "feeds.opml") == [
        FeedSpec(feed, title="My blog", html_url="https://blog.test/", window_days=14, category="Friends")
    ]
    text = (tmp_path / "feeds.opml").read_text()
    assert 'kp:windowDays="14"' in text and 'kp:category="Friends"' in text


def test_adding_a_feed_twice_keeps_one_and_updates_its_options(cli, tmp_path):
    with FakeFeedServer() as server:
        feed = server.feed("127.0.0.1", "/rss", rss_document("news.test", 3))
        cli("add", feed)
        code, out, _ = cli("add", feed.upper().replace("HTTP://", "http://").replace("/RSS", "/rss"),
                           "--category", "News")
    assert code == 0 and "already in the feed list" in out
    assert [(f.url, f.category) for f in read_feed_file(tmp_path / "feeds.opml")] == [(feed, "News")]


def test_add_applies_the_url_guard(cli, tmp_path):
    with FakeFeedServer() as server:
        feed = server.feed("127.0.0.1", "/rss", rss_document("news.test", 3))
        code, out, err = cli("add", feed, ALLOW_PRIVATE_URLS="false")
        assert server.stats()["requests"] == 0
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "refused host 127.0.0.1" in err and "loopback" in err
    assert not (tmp_path / "feeds.opml").exists()


def test_a_site_without_any_feed_is_one_line_and_adds_nothing(cli, tmp_path):
    with FakeFeedServer() as server:
        page = server.page("127.0.0.1", "/", PAGE.format(link=""))
        code, _, err = cli("add", page)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no feed was found" in err
    assert not (tmp_path / "feeds.opml").exists()


def test_import_is_idempotent_and_a_broken_file_changes_nothing(cli, tmp_path):
    (tmp_path / "reader.opml").write_bytes(READER_EXPORT)
    code, out, _ = cli("import", "reader.opml")
    assert code == 0 and "Imported 3 feeds" in out
    before = (tmp_path / "feeds.opml").read_bytes()
    code, out, _ = cli("import", "reader.opml")
    assert code == 0 and "Imported 0 feeds" in out and "3 already there" in out
    (tmp_path / "broken.opml").write_bytes(READER_EXPORT[:-30])
    code, out, err = cli("import", "broken.opml")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "nothing imported" in err
    assert (tmp_path / "feeds.opml").read_bytes() == before
    code, _, err = cli("import", "missing.opml")
    assert code == 1 and "does not exist" in err


def test_export_round_trips_everything_import_reads(cli, tmp_path):
    write_list(tmp_path, [FeedSpec("https://a.example/feed", title="A", window_days=3, paused=True,
                                   category="Tech/AI", html_url="https://a.example/"),
                          FeedSpec("https://b.example/rss", title="B")])
    code, out, _ = cli("export", RSS_FEEDS="https://c.example/atom.xml")
    assert code == 0 and out.startswith('<?xml version="1.0" encoding="utf-8"?>') and out.count("xmlUrl=") == 3
    code, out, _ = cli("export", "all.opml")
    assert code == 0 and "Wrote 3 feeds to all.opml" in out
    code, _, _ = cli("import", "all.opml", FEEDS_FILE=str(tmp_path / "copy.opml"), RSS_FEEDS="")
    copy = read_feed_file(tmp_path / "copy.opml")
    assert copy == [*read_feed_file(tmp_path / "feeds.opml"), FeedSpec("https://c.example/atom.xml")]


def test_remove_pause_and_resume(cli, tmp_path):
    write_list(tmp_path, [FeedSpec("https://a.example/feed"), FeedSpec("https://b.example/rss")])
    assert cli("pause", "https://a.example/feed")[0] == 0
    assert read_feed_file(tmp_path / "feeds.opml")[0].paused
    code, out, _ = cli("list")
    assert "paused in the feed list; resume: python3 -m knowledge_pipeline feeds resume https://a.example/feed" in out
    assert cli("resume", "https://a.example/feed")[0] == 0
    assert not read_feed_file(tmp_path / "feeds.opml")[0].paused
    code, out, _ = cli("remove", "https://b.example/rss")
    assert code == 0 and [f.url for f in read_feed_file(tmp_path / "feeds.opml")] == ["https://a.example/feed"]
    code, _, err = cli("remove", "https://b.example/rss")
    assert code == 1 and "is not in the feed list" in err
    code, _, err = cli("remove", "https://env.example/rss", RSS_FEEDS="https://env.example/rss")
    assert code == 1 and "remove it from RSS_FEEDS" in err


def test_list_shows_each_feeds_health_at_a_glance(cli, tmp_path):
    now = datetime.now(timezone.utc)
    with FakeFeedServer() as server:
        fresh = server.feed("news.test", "/rss", rss_document("news.test", 8, newest=now))
        old = server.feed("old.test", "/rss", rss_document("old.test", 4, newest=now - timedelta(days=90)))
        gone = server.gone("gone.test", "/rss")
        write_list(tmp_path, [FeedSpec(fresh, title="Fresh"), FeedSpec(old), FeedSpec(gone)])
        for hours in (0, 2):
            poll(tmp_path, server, now=now - timedelta(days=1) + timedelta(hours=hours),
                 feed_state_path=str(tmp_path / "data" / "feeds.db"), feed_max_errors="2")
    code, out, _ = cli("list", "--json")
    rows = {row["url"]: row for row in json.loads(out)}
    assert code == 0 and list(rows) == [fresh, old, gone]
    assert (rows[fresh]["status"], rows[fresh]["new_7d"], rows[fresh]["new_30d"]) == ("ok", 8, 8)
    assert rows[fresh]["entries_per_day"] == pytest.approx(8 / (42 / 24), rel=0.01)
    assert rows[old]["stale"] is True and rows[fresh]["stale"] is False
    assert (rows[gone]["status"], rows[gone]["paused_by"], rows[gone]["consecutive_errors"]) == ("paused", "errors", 2)
    assert "HTTP 410" in rows[gone]["last_error"]
    code, out, _ = cli("list")
    assert "ok stale" in out and "3 feeds: 2 ok, 1 paused; 1 stale (no new entry for 60 days)" in out
    assert f"resume: python3 -m knowledge_pipeline feeds resume {gone}" in out


@pytest.mark.parametrize("command", [("import", "reader.opml"), ("remove", "https://a.example/feed"),
                                     ("pause", "https://a.example/feed"), ("resume", "https://a.example/feed"),
                                     ("list",), ("export",)])
def test_a_broken_feed_list_is_one_line_for_every_command(cli, tmp_path, command):
    (tmp_path / "reader.opml").write_bytes(READER_EXPORT)
    (tmp_path / "feeds.opml").write_text("<opml><bad")
    code, out, err = cli(*command)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("feeds: ") and "feeds.opml is not well-formed XML" in err
    assert (tmp_path / "feeds.opml").read_text() == "<opml><bad"
