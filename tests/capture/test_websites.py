"""Website sections without a feed: sitemaps (robots.txt, indexes, news, gzip), else section links; robots honoured."""

from __future__ import annotations

import asyncio
import gzip
from datetime import date, datetime, timezone

from knowledge_pipeline.capture.websites import capture_websites
from knowledge_pipeline.models import SourceType
from knowledge_pipeline.extract.fetch import Fetcher
from tests.extract.support import (
    all_items, fetcher_for, make_gateway, make_settings, make_telemetry, open_store, store_refusing,
)
from tests.fakes.web_server import FakeWebServer

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def urlset(entries: list[tuple[str, str | None]], *, news: dict[str, str] | None = None) -> str:
    rows = []
    for loc, lastmod in entries:
        extra = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
        if news and loc in news:
            extra += ("<news:news><news:publication><news:name>Site</news:name><news:language>en</news:language>"
                      f"</news:publication><news:publication_date>{lastmod}</news:publication_date>"
                      f"<news:title>{news[loc]}</news:title></news:news>")
        rows.append(f"<url><loc>{loc}</loc>{extra}<image:image><image:loc>{loc}.png</image:loc></image:image></url>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9" '
            'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">' + "".join(rows) + "</urlset>")


def index(children: list[tuple[str, str | None]]) -> str:
    rows = "".join(f"<sitemap><loc>{loc}</loc>" + (f"<lastmod>{mod}</lastmod>" if mod else "") + "</sitemap>"
                   for loc, mod in children)
    return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</sitemapindex>'


def capture(tmp_path, sources: list[str], **env):
    env.setdefault("website_window_days", "30")
    settings = make_settings(website_sources=",".join(sources), allow_private_urls="true", **env)

    async def run():
        telemetry, recorder = make_telemetry()
        fetcher = Fetcher(settings, make_gateway(telemetry))
        try:
            async with open_store(tmp_path) as store:
                known = await store.known_hashes()
                reports = await capture_websites(settings=settings, store=store, telemetry=telemetry,
                                                 known_hashes=known, fetcher=fetcher, now=NOW)
                return reports, await all_items(store), recorder
        finally:
            await fetcher.close()

    return asyncio.run(run())


def test_articles_come_from_the_sitemaps_robots_txt_names(tmp_path):
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body=f"User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap_index.xml\n",
                  content_type="text/plain")
        web.route("/sitemap_index.xml", body=index([(f"{base}/news-sitemap.xml.gz", "2026-11-29"),
                                                    (f"{base}/sitemap-old.xml", "2020-01-01")]),
                  content_type="application/xml")
        news = urlset(
            [(f"{base}/insights/agents-in-production", "2026-11-28T08:00:00Z"),
             (f"{base}/insights/inference-costs", "2026-11-20"),
             (f"{base}/insights/old-post", "2026-08-01"),
             (f"{base}/careers/engineer", "2026-11-28"),
             (f"{base}/insights/", "2026-11-29")],
            news={f"{base}/insights/agents-in-production": "Agents in production"},
        )
        web.route("/news-sitemap.xml.gz", body=gzip.compress(news.encode()), content_type="application/x-gzip")
        web.route("/sitemap-old.xml", body=urlset([(f"{base}/insights/ancient", "2020-01-01")]),
                  content_type="application/xml")
        reports, items, recorder = capture(tmp_path, [f"{base}/insights/"])
        paths = web.paths()
    (report,) = reports
    assert report.errors == [] and report.added == 2
    assert [i.url for i in items] == [f"{base}/insights/agents-in-production", f"{base}/insights/inference-costs"]
    assert items[0].title == "Agents in production" and items[0].created_date == date(2026, 11, 28)
    assert items[1].title.endswith("/insights/inference-costs") and {i.source_type for i in items} == {SourceType.WEBSITE}
    complete = recorder.of("capture_complete")[0]
    assert (complete["kind"], complete["via"], complete["too_old"]) == ("website", "sitemap", 2)
    assert "/insights/" not in paths, "the section page is not needed when a sitemap lists its articles"


def test_a_second_run_adds_nothing_and_the_cap_defers_the_rest(tmp_path):
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body="User-agent: *\nAllow: /\n", content_type="text/plain")
        entries = [(f"{base}/blog/post-{n}", f"2026-11-{10 + n:02d}") for n in range(6)]
        web.route("/sitemap.xml", body=urlset(entries), content_type="application/xml")
        first, items, _ = capture(tmp_path, [f"{base}/blog"], website_max_articles="4")
        assert first[0].added == 4 and [i.url.rsplit("-", 1)[1] for i in items] == ["5", "4", "3", "2"]
        second, items, _ = capture(tmp_path, [f"{base}/blog"], website_max_articles="4")
        third, _, _ = capture(tmp_path, [f"{base}/blog"], website_max_articles="4")
    assert (second[0].added, second[0].duplicates) == (2, 4) and len(items) == 6
    assert (third[0].added, third[0].duplicates) == (0, 6)


def test_without_a_sitemap_the_section_page_links_are_used(tmp_path):
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body="", status=404)
        web.page("/research/", """<html><body><nav><a href="/about">About</a></nav>
            <a href="/research/2026/chip-supply">Chip supply is the new bottleneck</a>
            <a href="2026/model-evals#comments">Why model evals fail</a>
            <a href="/research/2026/chip-supply">again</a>
            <a href="https://elsewhere.example/research/x">elsewhere</a>
            <a href="/research/">Research home</a><a href="/research/feed.xml">feed</a></body></html>""")
        reports, items, recorder = capture(tmp_path, [f"{base}/research/"])
    assert reports[0].errors == [] and recorder.of("capture_complete")[0]["via"] == "links"
    assert [(i.url, i.title) for i in items] == [
        (f"{base}/research/2026/chip-supply", "Chip supply is the new bottleneck"),
        (f"{base}/research/2026/model-evals", "Why model evals fail"),
    ]


def test_robots_txt_is_honoured_for_discovery(tmp_path):
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body=f"User-agent: knowledge-pipeline\nDisallow: /members/\nDisallow: /sitemaps/\n"
                                      f"Sitemap: {base}/sitemaps/all.xml\n", content_type="text/plain")
        web.route("/sitemaps/all.xml", body=urlset([(f"{base}/members/a", "2026-11-28")]))
        web.page("/members/", '<a href="/members/a">A members-only article</a>')
        reports, items, recorder = capture(tmp_path, [f"{base}/members/"])
        paths = web.paths()
    assert items == [] and "robots.txt disallows" in reports[0].errors[0]
    assert "/sitemaps/all.xml" not in paths and "/members/" not in paths
    assert recorder.of("capture_error")[0]["kind"] == "website"


def test_a_failing_section_never_stops_the_others(tmp_path):
    with FakeWebServer() as web, FakeWebServer() as broken:
        broken.route("/robots.txt", body="down", status=503)
        web.route("/robots.txt", body="", status=404)
        web.page("/news/", '<a href="/news/a-long-article">A long article title</a>')
        reports, items, _ = capture(tmp_path, [f"{broken.url}/news/", f"{web.url}/news/"], retry_attempts="0")
    assert "robots.txt" in reports[0].errors[0] and "next run" in reports[0].errors[0]
    assert reports[1].added == 1 and len(items) == 1


def test_a_gzip_bomb_sitemap_is_cut_at_the_cap_and_reported(tmp_path):
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body=f"Sitemap: {base}/bomb.xml.gz\nSitemap: {base}/ok.xml\n", content_type="text/plain")
        bomb = gzip.compress(b"<urlset>" + b" " * (30 * 1024 * 1024) + b"</urlset>")
        web.route("/bomb.xml.gz", body=bomb, content_type="application/gzip")
        web.route("/ok.xml", body=urlset([(f"{base}/a/b", "2026-11-29")]))
        reports, items, _ = capture(tmp_path, [f"{base}/a/"], max_download_mb="1")
    assert len(bomb) < 1024 * 1024
    assert len(items) == 1 and "larger than MAX_DOWNLOAD_MB (1 MB) once decompressed" in reports[0].errors[0]


def test_a_gzip_sitemap_of_several_members_is_read_whole(tmp_path):
    """gzip files may be concatenated members (``cat a.gz b.gz``, pigz, log rotators): each one is read."""
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body=f"Sitemap: {base}/sitemap.xml.gz\n", content_type="text/plain")
        text = urlset([(f"{base}/blog/post-{n}", "2026-11-29") for n in range(100)]).encode()
        half = len(text) // 2
        web.route("/sitemap.xml.gz", body=gzip.compress(text[:half]) + gzip.compress(text[half:]),
                  content_type="application/gzip")
        reports, items, _ = capture(tmp_path, [f"{base}/blog/"], website_max_articles="1000")
    assert reports[0].errors == [] and len(items) == 100


def test_a_sitemap_entry_with_a_bad_link_is_counted_as_rejected_with_its_reason(tmp_path):
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body=f"Sitemap: {base}/sitemap.xml\n", content_type="text/plain")
        web.route("/sitemap.xml", body=urlset([(f"{base}/blog/good", "2026-11-29"),
                                               (f"{base}:99999/blog/bad-port", "2026-11-29")]))
        reports, items, recorder = capture(tmp_path, [f"{base}/blog/"])
    assert len(items) == 1 and reports[0].rejected == 1 and reports[0].errors == []
    complete = recorder.of("capture_complete")[0]
    assert (complete["found"], complete["rejected"]) == (2, 1) and complete["rejected_reasons"] == {"malformed link": 1}


def test_dry_run_lists_the_articles_without_storing_them(tmp_path):
    with FakeWebServer() as web:
        base = web.url
        web.route("/robots.txt", body="", status=404)
        web.route("/sitemap.xml", body=urlset([(f"{base}/x/one", None), (f"{base}/x/two", "2026-11-29")]))
        settings = make_settings(website_sources=f"{base}/x/", allow_private_urls="true")

        async def run():
            async with fetcher_for(settings) as (fetcher, _):
                telemetry, _ = make_telemetry()
                async with open_store(tmp_path) as store:
                    reports = await capture_websites(settings=settings, store=store, telemetry=telemetry,
                                                     known_hashes=set(), fetcher=fetcher, dry_run=True, now=NOW)
                    return reports, await all_items(store)

        reports, items = asyncio.run(run())
    assert items == [] and [i.url for i in reports[0].would_add] == [f"{base}/x/two", f"{base}/x/one"]


def test_a_missing_robots_txt_or_guessed_sitemap_is_not_an_error(tmp_path):
    with FakeWebServer() as web:
        web.page("/news/", '<a href="/news/a-long-article">A long article title</a>')
        reports, items, recorder = capture(tmp_path, [f"{web.url}/news/"])
        paths = web.paths()
    assert paths[:2] == ["/robots.txt", "/sitemap.xml"] and len(items) == 1 and reports[0].errors == []
    assert recorder.of("api_call_error") == [], "a 404 for robots.txt or /sitemap.xml is normal, not an ERROR line"


def test_an_article_the_store_refuses_is_rejected_and_tried_again_next_run(tmp_path):
    """Issue 12, point 6, for this source too: one refused write is that article's, not the section's."""
    with FakeWebServer() as web:
        web.route("/robots.txt", body="User-agent: *\nAllow: /\n", content_type="text/plain")
        entries = [(f"{web.url}/blog/post-{n}", f"2026-11-{10 + n:02d}") for n in range(4)]
        web.route("/sitemap.xml", body=urlset(entries), content_type="application/xml")
        capture(tmp_path, [f"{web.url}/nothing-here"])  # creates the store
        with store_refusing(tmp_path / "sources.db", "%/post-2"):
            first, items, recorder = capture(tmp_path, [f"{web.url}/blog"])
        second, after, _ = capture(tmp_path, [f"{web.url}/blog"])
    assert (first[0].added, first[0].rejected) == (3, 1) and len(items) == 3
    assert "refused by the test" in recorder.of("entry_rejected")[0]["reason"]
    assert (second[0].added, second[0].duplicates) == (1, 3) and len(after) == 4
