"""Every registered source through the scripts: Drive and website sections next to feeds and PDFs.

``pipeline_enhanced.sh`` on the embedded store (a subprocess, as cron runs it) and the
same two scripts in process on the fake Notion, sequential and parallel: each source
captures, its items are enriched, and its counts are in ``capture_complete``,
``pipeline_summary`` and the run report. Sources without configuration are skipped
silently.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.runner import EXIT_OK, FEED_TYPES, PDF_TYPES, RunOptions, run_async
from knowledge_pipeline.telemetry import Telemetry
from tests.data.generate import AGENTS_ARTICLE_HTML, ARTICLE_HTML, text_pdf

from .conftest import events, pipeline_twice
from .fakes.drive_server import FakeDrive
from .fakes.notion_server import start_fake_notion
from .fakes.web_server import FakeWebServer


def serve_sources(web: FakeWebServer, drive: FakeDrive, tmp_path: Path) -> dict[str, str]:
    """A site section with a sitemap, a Drive folder with two PDFs; the settings that point at them."""
    base = web.url
    web.route("/robots.txt", body=f"User-agent: *\nSitemap: {base}/sitemap.xml\n", content_type="text/plain")
    web.route("/sitemap.xml", content_type="application/xml", body=(
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}/insights/agents</loc><lastmod>2099-01-02</lastmod></url>"
        f"<url><loc>{base}/insights/chips</loc><lastmod>2099-01-01</lastmod></url></urlset>"))
    web.page("/insights/agents", AGENTS_ARTICLE_HTML)
    web.page("/insights/chips", ARTICLE_HTML.replace("<h1>", "<h1>Chips: "))
    account = drive.service_account(tmp_path)
    folder = drive.folder("Reports", shared_with=account.email)
    drive.file("Q3_report.pdf", text_pdf([["Q3 report: enterprise adoption of AI agents doubled."] * 3]), parent=folder)
    drive.file("board_memo.pdf", text_pdf([["Board memo: inference budget and vendor choice for 2027."] * 3]),
               parent=folder)
    return {
        "WEBSITE_SOURCES": f"{base}/insights/",
        "WEBSITE_WINDOW_DAYS": "0",
        "ALLOW_PRIVATE_URLS": "true",
        "GOOGLE_APP_CREDENTIALS": str(account.key_file),
        "DRIVE_FOLDER_ID": folder,
        "GOOGLE_DRIVE_BASE_URL": drive.url,
    }


def test_pipeline_enhanced_sh_captures_and_enriches_every_configured_source(tmp_path: Path):
    with FakeWebServer() as web, FakeDrive() as drive:
        done, again, items, report = pipeline_twice(tmp_path, **serve_sources(web, drive, tmp_path))
    assert again.returncode == 0 and "captured 0 new" in again.stdout
    assert {(i["source_type"], i["status"]) for i in items} == {("Website", "Enriched"), ("PDF", "Enriched")}
    assert len(items) == 4
    assert "not set" not in done.stdout + done.stderr, "unconfigured sources (feeds, PDF_DIR) are skipped silently"
    completes = {(e["kind"], e["added"]) for e in events(tmp_path / "logs", "capture_complete")}
    assert {("website", 2), ("drive", 2), ("website", 0), ("drive", 0)} <= completes
    summaries = events(tmp_path / "logs", "pipeline_summary")
    assert summaries[0]["metrics"]["captured"]["website"]["added"] == 2
    assert summaries[1]["metrics"]["captured"]["drive"] == {"found": 2, "added": 2, "duplicates": 0, "rejected": 0,
                                                             "errors": 0}
    runs = json.loads(report.stdout)["runs"]
    assert runs[1]["captured_by_kind"]["drive"]["added"] == 2 and runs[0]["captured_by_kind"]["website"]["found"] == 2


@pytest.mark.parametrize("parallel", [False, True])
def test_drive_and_website_items_in_notion_are_located_and_enriched(tmp_path: Path, parallel: bool):
    with FakeWebServer() as web, FakeDrive() as drive, start_fake_notion(database="original", rps=None) as notion:
        settings = load_settings({
            **serve_sources(web, drive, tmp_path),
            **notion.env(), "PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000",
            "JOURNAL_PATH": str(tmp_path / "journal.db"), "LOG_DIR": str(tmp_path / "logs"),
        }, env_file=None)
        for script, types, capture in (("enrich_rss_enhanced.py", FEED_TYPES, "feeds"),
                                       ("enrich_enhanced.py", PDF_TYPES, "pdfs")):
            options = RunOptions(script=script, source_types=types, capture=capture, parallel=parallel)
            result = asyncio.run(run_async(settings, options, Telemetry("test")))
            assert result.exit_code == EXIT_OK, result.error
        rows = [notion.values(page["id"]) for page in notion.pages()]
    assert len(rows) == 4 and {row["Status"] for row in rows} == {"Enriched"}
    websites = [r for r in rows if r["Source Type"] == "Website"]
    pdfs = [r for r in rows if r["Source Type"] == "PDF"]
    assert len(websites) == 2 and all(r["Article URL"].startswith(web.url + "/insights/") for r in websites)
    assert len(pdfs) == 2 and all(r["Drive URL"].startswith("https://drive.google.com/file/d/") for r in pdfs)
    assert {r["Title"] for r in pdfs} == {"Q3 report", "board memo"}
