"""One URL saved by hand (`enrich_rss.py --add URL`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from knowledge_pipeline.capture.manual import add_url
from knowledge_pipeline.models import SourceType, Status
from tests.extract.support import all_items, make_telemetry, open_store


def add(tmp_path: Path, *urls: str, title: str | None = None):
    telemetry, recorder = make_telemetry()

    async def run():
        async with open_store(tmp_path) as store:
            reports = []
            for url in urls:
                known = await store.known_hashes()
                reports.append(await add_url(url, store, telemetry, known_hashes=known, title=title))
            return reports, await all_items(store)

    reports, items = asyncio.run(run())
    return reports, items, recorder


def test_a_web_page_becomes_a_website_item(tmp_path):
    [report], [item], recorder = add(tmp_path, " https://example.com/2026/agents ")
    assert (report.added, report.duplicates, report.rejected) == (1, 0, 0)
    assert (item.title, item.url, item.source_type, item.status) == (
        "https://example.com/2026/agents",
        "https://example.com/2026/agents",
        SourceType.WEBSITE,
        Status.INBOX,
    )
    assert recorder.of("capture_complete")[0]["added"] == 1


def test_a_given_title_is_used(tmp_path):
    _, [item], _ = add(tmp_path, "https://example.com/a", title="  Read   later ")
    assert item.title == "Read later"


def test_a_pdf_url_becomes_a_pdf_item(tmp_path):
    _, [item], _ = add(tmp_path, "https://example.com/papers/Report.PDF?download=1")
    assert item.source_type is SourceType.PDF
    assert item.pdf_path == item.url == "https://example.com/papers/Report.PDF?download=1"


def test_the_same_page_twice_is_added_once(tmp_path):
    reports, items, _ = add(
        tmp_path, "https://example.com/story", "HTTPS://EXAMPLE.com/story?utm_source=mail#top"
    )
    assert [(r.added, r.duplicates) for r in reports] == [(1, 0), (0, 1)]
    assert len(items) == 1


@pytest.mark.parametrize(
    "url, reason",
    [
        ("javascript:alert(1)", "unsupported link scheme javascript:"),
        ("ftp://example.com/file", "unsupported link scheme ftp:"),
        ("example.com/page", "unsupported link scheme none"),
        ("https://", "link without a host"),
        ("", "empty link"),
    ],
)
def test_invalid_urls_are_rejected_with_the_reason(tmp_path, url, reason):
    [report], items, recorder = add(tmp_path, url)
    assert items == [] and report.rejected == 1
    assert report.errors[0].startswith(f"not added: {reason}")
    assert recorder.of("capture_complete")[0]["rejected_reasons"] == {reason: 1}
    assert recorder.of("entry_rejected")[0]["reason"].startswith(reason)
