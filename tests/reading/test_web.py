"""The reading page over HTTP (Starlette's test client): pages, filters, escaping, headers, read-only."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pytest
from starlette.testclient import TestClient

from knowledge_pipeline.commands.serve import is_loopback
from knowledge_pipeline.reading.web import PAGE_SIZE, create_app
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.reading.library import LONG_TITLE, WARNING, XSS_TITLE, build_library


@pytest.fixture
def ids(tmp_path: Path) -> dict[str, str]:
    return build_library(tmp_path / "s.db")


@pytest.fixture
def client(tmp_path: Path, ids: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(SqliteStore(tmp_path / "s.db"))) as test_client:
        yield test_client


def titles(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<h2><a href="/item/[^"]+">(.*?)</a></h2>', html)]


def test_the_list_newest_first_with_executive_summaries(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert titles(page.text) == [XSS_TITLE, "Waiting in the Inbox", "A page that would not load",
                                 "State of enterprise AI", "Agents that open pull requests", LONG_TITLE]
    assert "1–6 of 6 items, newest first." in page.text
    assert "Coding agents now open pull requests on their own." in page.text
    assert 'name="q"' in page.text and '<option value="Market News">Market News (2)</option>' in page.text


def test_search_highlights_and_filters_narrow(client: TestClient) -> None:
    found = client.get("/", params={"q": "routers"})
    assert titles(found.text) == [LONG_TITLE] and "<mark>routers</mark>" in found.text
    assert 'value="routers"' in found.text and "1–1 of 1 results for “routers”" in found.text
    assert titles(client.get("/", params={"type": "Market News"}).text) == [XSS_TITLE, "Agents that open pull requests"]
    assert titles(client.get("/", params={"vendor": "Globex", "status": "Enriched"}).text) == [
        "Agents that open pull requests"]
    assert titles(client.get("/", params={"primitive": "Coding", "source": "Website"}).text) == [
        "Agents that open pull requests"]
    assert titles(client.get("/", params={"from": "2024-06-02", "to": "2024-06-03"}).text) == [
        "State of enterprise AI", "Agents that open pull requests"]
    assert set(titles(client.get("/", params={"q": "full", "status": "Enriched", "to": "2024-06-02"}).text)) == {
        "Agents that open pull requests", LONG_TITLE}


def test_bad_input_is_said_on_the_page(client: TestClient) -> None:
    bad_query = client.get("/", params={"q": "GPT-4"})
    assert bad_query.status_code == 200 and "FTS5 does not accept it" in bad_query.text
    bad_date = client.get("/", params={"from": "yesterday"})
    assert "&#39;yesterday&#39; is not a date (YYYY-MM-DD)" in bad_date.text and len(titles(bad_date.text)) == 6
    assert client.get("/", params={"page": "x"}).status_code == 200
    last_day = client.get("/", params={"from": "0001-01-01", "to": "9999-12-31"})
    assert last_day.status_code == 200 and len(titles(last_day.text)) == 6, "the whole calendar holds every item"


def test_the_item_page_has_every_toggle(client: TestClient, ids: dict[str, str]) -> None:
    page = client.get(f"/item/{ids['router']}")
    assert page.status_code == 200
    for toggle in ("Executive Summary", "Summary", "Key Insights", "Raw (full text)"):
        assert f"<summary>{toggle}</summary>" in page.text
    assert "<li>Routing cut costs by 30%.</li>" in page.text and "Zeppelin appears only here" in page.text
    assert '<a href="https://example.com/router"' in page.text
    assert f"<li>{WARNING}</li>" in client.get(f"/item/{ids['report']}").text
    failed = client.get(f"/item/{ids['failed'][:10]}")
    assert "HTTP 404 from example.com" in failed.text and 'role="alert"' in failed.text


class Markup(HTMLParser):
    """Every element and attribute a page really has (escaped text is not markup)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def test_everything_from_the_web_is_escaped_and_nothing_runs(client: TestClient, ids: dict[str, str]) -> None:
    for html in (client.get("/").text, client.get("/", params={"q": "pwned"}).text,
                 client.get(f"/item/{ids['xss']}").text):
        tags = Markup(html).tags
        assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object", "embed", "b")]
        assert not [a for _, attrs in tags for a in attrs if a.startswith("on")], "no event handler attribute"
        assert not [v for _, attrs in tags for v in attrs.values() if v and v.lower().startswith("javascript")]
    item = client.get(f"/item/{ids['xss']}").text
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in item
    assert 'href="javascript' not in item, "a javascript: URL is shown, never linked"


def test_headers_forbid_scripts_and_other_origins(client: TestClient) -> None:
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "://" not in client.get("/").text.replace("https://example.com", ""), "no CDN, no external asset"


def test_read_only_and_unknown_pages(client: TestClient) -> None:
    assert client.post("/").status_code == 405
    assert client.post("/item/x").status_code == 405
    missing = client.get("/item/nope")
    assert missing.status_code == 404 and "No item has the id nope." in missing.text
    assert client.get("/nowhere").status_code == 404
    assert client.get("/nowhere").headers["content-security-policy"]


def test_pages_of_twenty(tmp_path: Path) -> None:
    from tests.commands.test_export import _big_store

    _big_store(tmp_path / "big.db", 45)
    with TestClient(create_app(SqliteStore(tmp_path / "big.db"))) as client:
        first = client.get("/", params={"status": "Enriched"})
        assert len(titles(first.text)) == PAGE_SIZE and "1–20 of 45 items" in first.text
        assert 'href="/?status=Enriched&amp;page=2" rel="next"' in first.text
        last = client.get("/", params={"status": "Enriched", "page": 3})
        assert len(titles(last.text)) == 5 and "41–45 of 45 items" in last.text and 'rel="next"' not in last.text


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("192.168.1.5", False), ("example.com", False)])
def test_only_loopback_is_served_without_a_warning(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_filter_lists_follow_other_writers_at_most_once_a_minute(tmp_path: Path, ids: dict[str, str]) -> None:
    import asyncio
    import sqlite3

    from knowledge_pipeline.reading.web import FACETS_MAX_AGE, Reader

    now = [1000.0]

    async def main() -> list[dict]:
        store = SqliteStore(tmp_path / "s.db")
        await store.open()
        try:
            reader = Reader(store, clock=lambda: now[0])
            seen = [await reader.facets()]
            with sqlite3.connect(tmp_path / "s.db") as other:
                other.execute("UPDATE items SET vendor = 'Initech' WHERE id = ?", (ids["report"],))
            now[0] += 1
            seen.append(await reader.facets())
            now[0] += FACETS_MAX_AGE
            seen.append(await reader.facets())
            return seen
        finally:
            await store.close()

    first, soon, later = asyncio.run(main())
    assert ("Initech", 1) not in first["vendor"] and soon == first, "within the minute the cached lists serve"
    assert ("Initech", 1) in later["vendor"]
    assert dict(first["ai_primitive"]) == {"Research": 2, "Coding": 2, "Automation": 1}
