"""What extraction reports and keeps for issue 15: the page's own URL, and texts kept in the cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from knowledge_pipeline.extract import Extracted, TextExtractor
from knowledge_pipeline.models import Item, SourceType
from knowledge_pipeline.text_cache import TextCache
from tests.data.generate import ARTICLE_HTML, sample_pdf
from tests.extract.support import make_gateway, make_settings, make_telemetry
from tests.fakes.web_server import FakeWebServer

CANONICAL = ARTICLE_HTML.replace('<meta charset="utf-8">',
                                 '<meta charset="utf-8"><link rel="Canonical" href="/news/chips?ref=feed">')
OG_ONLY = ARTICLE_HTML.replace('<meta charset="utf-8">',
                               '<meta charset="utf-8"><meta property="og:url" content="https://example.com/chips">')
BAD = ARTICLE_HTML.replace('<meta charset="utf-8">', '<meta charset="utf-8"><link rel="canonical" href="mailto:x@y">')


def read_all(web: FakeWebServer, items: list[Item], cache: TextCache | None = None, *, title: bool = False
             ) -> list[Extracted]:
    settings = make_settings(allow_private_urls="true")
    telemetry, _ = make_telemetry()

    async def run() -> list[Extracted]:
        extractor = TextExtractor(settings, make_gateway(telemetry, retries=0), cache=cache)
        try:
            return [await extractor.read(it, title=title) for it in items]
        finally:
            await extractor.close()

    return asyncio.run(run())


def page(path: str, web: FakeWebServer, n: int = 1, **fields) -> Item:
    return Item(id=f"item-{n}", title=f"Item {n}", source_type=SourceType.WEBSITE, url=web.url + path,
                hash=f"hash-{n}", **fields)


@pytest.fixture
def web():
    with FakeWebServer() as server:
        server.page("/canonical", CANONICAL)
        server.page("/og", OG_ONLY)
        server.page("/none", ARTICLE_HTML)
        server.page("/bad", BAD)
        server.redirect("/short", "/none")
        server.pdf("/report.pdf", sample_pdf("Served report"))
        yield server


def test_the_page_says_its_own_url_and_a_redirect_says_where_it_went(web: FakeWebServer):
    canonical, og, none, bad, moved = read_all(web, [page(p, web, n) for n, p in enumerate(
        ["/canonical", "/og", "/none", "/bad", "/short"])])
    assert canonical.canonical_url == web.url + "/news/chips?ref=feed", "made absolute against the page"
    assert og.canonical_url == "https://example.com/chips"
    assert none.canonical_url is None and bad.canonical_url is None
    assert moved.canonical_url == web.url + "/none"


def test_a_text_read_once_is_kept_and_read_back_without_a_fetch_with_its_title(web: FakeWebServer, tmp_path: Path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=10_000_000)
    cache.open()
    article, report = page("/canonical", web, 1), page("/report.pdf", web, 2, pdf_path=None)
    first = read_all(web, [article, report], cache, title=True)
    fetched = len(web.paths())
    again = read_all(web, [article, report], cache, title=True)
    untitled = read_all(web, [article], cache)
    cache.close()
    assert fetched == 2 and len(web.paths()) == fetched, "read back from the cache, no second GET"
    assert again == first and again[0].canonical_url == first[0].canonical_url
    assert untitled[0].title is None and untitled[0].text == first[0].text


def test_captured_content_is_kept_for_a_later_process_that_holds_only_the_link(web: FakeWebServer, tmp_path: Path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=10_000_000)
    cache.open()
    settings = make_settings(allow_private_urls="true")
    telemetry, _ = make_telemetry()
    extractor = TextExtractor(settings, make_gateway(telemetry, retries=0), cache=cache)
    extractor.keep_content("hash-9", "<p>The full article the feed carried.</p><p>Second paragraph.</p>")
    asyncio.run(extractor.close())
    [later] = read_all(web, [page("/gone-since", web, 9)], cache)
    cache.close()
    assert later.text == "The full article the feed carried.\nSecond paragraph."
    assert web.paths() == [], "the page is not fetched: the feed's text was kept"


def test_without_a_cache_every_read_fetches(web: FakeWebServer, tmp_path: Path):
    read_all(web, [page("/none", web, 1), page("/none", web, 1)])
    assert len(web.paths()) == 2
