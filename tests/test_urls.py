"""Credentials in URLs never reach a title, a reason, a log line or the console; the request still gets them."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest

from knowledge_pipeline.urls import shown_url, strip_userinfo
from tests.conftest import clean_env, read_log, run_script
from tests.data import generate
from tests.fakes.web_server import FakeWebServer

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://alice:pw@example.com/a?b=1#c", "https://example.com/a?b=1#c"),
        ("http://alice@127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://u:p@[::1]:81/", "http://[::1]:81/"),
        ("https://a:b@c@example.com/", "https://example.com/"),
        ("https://example.com/mail@me", "https://example.com/mail@me"),
        ("https://example.com/\n  next", "https://example.com/ next"),
    ],
)
def test_shown_url_drops_user_info_and_keeps_the_rest(url, shown):
    assert shown_url(url) == shown


def test_shown_url_is_bounded():
    assert shown_url("https://example.com/" + "x" * 500, limit=40) == "https://example.com/" + "x" * 17 + "..."


@pytest.mark.parametrize("password", ["p@ss", "a@b@c", "p%40ss@x", "@"])
def test_no_part_of_a_password_with_an_at_sign_is_left_in_text(password):
    """The user-info ends at the authority's last "@", as urlsplit and httpx read it."""
    text = f"fetch https://alice:{password}@example.com/a?to=me@example.org failed; mail me@example.com"
    assert strip_userinfo(text) == "fetch https://example.com/a?to=me@example.org failed; mail me@example.com"
    assert shown_url(f"https://alice:{password}@example.com/x") == "https://example.com/x"


def test_strip_userinfo_finds_urls_inside_text():
    text = "fetch https://alice:pw@example.com/a failed; see ftp://bob@host/x or mail me@example.com"
    assert strip_userinfo(text) == "fetch https://example.com/a failed; see ftp://host/x or mail me@example.com"


def test_a_password_in_a_url_is_used_for_the_request_and_shown_nowhere(tmp_path):
    secret, feed_secret = "hunter2pw", "feedsecret9"
    with FakeWebServer() as web:
        base = f"http://alice:{secret}@127.0.0.1:{web.port}"
        web.page("/article", (DATA / "pages" / "article.html").read_bytes())
        web.route("/feed.xml", content_type="application/rss+xml", body=generate.rss_feed([
            generate.rss_item(1, link=f"{base}/article", title=f"Read {base}/article"),
            generate.rss_item(2, link=f"{base}/missing", title=None),
        ]))
        env = clean_env(
            RSS_FEEDS=f"{web.url}/feed.xml,http://bob:{feed_secret}@127.0.0.1:{web.port}/no-feed.xml",
            RSS_WINDOW_DAYS="0", ALLOW_PRIVATE_URLS="true", ALERT_FAILURE_RATE="1", RETRY_ATTEMPTS="0",
            SOURCES_DB_PATH=str(tmp_path / "data" / "sources.db"), JOURNAL_PATH=str(tmp_path / "data" / "journal.db"),
            LOG_DIR=str(tmp_path / "logs"), LOG_LEVEL="DEBUG",
        )
        done = run_script(["enrich_rss_enhanced.py", "--add", f"{base}/gone"], tmp_path, env)
        listed = run_script(["-m", "knowledge_pipeline", "list", "--json"], tmp_path, env)
        table = run_script(["-m", "knowledge_pipeline", "list"], tmp_path, env)
        requests = web.stats()["requests"]
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "logs" / "pipeline.jsonl").read_text()
    for shown in (done.stdout, done.stderr, log, listed.stdout, table.stdout):
        assert secret not in shown and feed_secret not in shown
    with sqlite3.connect(tmp_path / "data" / "sources.db") as db:
        rows = {title: (status, url, error) for title, status, url, error
                in db.execute("SELECT title, status, url, error FROM items")}
    assert rows[f"Read http://127.0.0.1:{web.port}/article"][:2] == ("Enriched", f"{base}/article")
    missing = ("Failed", f"{base}/missing", f"HTTP 404 for http://127.0.0.1:{web.port}/missing")
    assert rows["127.0.0.1/missing"] == missing
    assert rows[f"http://127.0.0.1:{web.port}/gone"][0] == "Failed"
    auth = "Basic " + base64.b64encode(f"alice:{secret}".encode()).decode()
    assert {r["path"]: r["headers"].get("Authorization") for r in requests}["/article"] == auth
    feed_error = next(r for r in read_log(tmp_path / "logs") if r["extra_fields"].get("event_type") == "feed_error")
    assert f"http://127.0.0.1:{web.port}/no-feed.xml" in feed_error["message"]
