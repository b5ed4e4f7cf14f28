"""TextExtractor: the text of an item from feed content, a PDF (path, file:// or http) or a web page."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from knowledge_pipeline.errors import ExtractionError, ServiceError
from knowledge_pipeline.extract import TextExtractor, clean_text
from knowledge_pipeline.extract.fetch import Fetcher
from knowledge_pipeline.models import Item, SourceType
from tests.data.generate import ARTICLE_HTML, NO_TEXT_HTML, huge_html_chunks, sample_pdf
from tests.extract.support import extract, make_gateway, make_settings, make_telemetry
from tests.fakes.web_server import FakeWebServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pdfs"


@pytest.fixture
def web():
    with FakeWebServer() as server:
        server.page("/article", ARTICLE_HTML)
        server.page("/empty", NO_TEXT_HTML)
        server.pdf("/report.pdf", sample_pdf("Served report"))
        server.pdf("/mislabelled", sample_pdf("Mislabelled report"), content_type="text/html")
        server.route("/notes.txt", body="Plain notes about Anthropic.\n", content_type="text/plain; charset=utf-8")
        server.route("/logo.png", body=b"\x89PNG\r\n\x1a\n" + b"\0" * 100, content_type="image/png")
        yield server


def item(**fields) -> Item:
    fields.setdefault("source_type", SourceType.WEBSITE)
    return Item(id="item-1", title="An item", **fields)




def test_feed_content_is_used_without_any_fetch(web):
    html = "<p>OpenAI shipped a model.</p><p>Second paragraph with details.</p>"
    text = extract(item(source_type=SourceType.RSS, url=web.url + "/article", content=html))
    assert text == "OpenAI shipped a model.\nSecond paragraph with details."
    assert web.paths() == []


def test_plain_feed_content_is_kept_as_it_is():
    assert extract(item(content="  Plain text.\n\n\n\nNext paragraph.\x00 ")) == "Plain text.\n\nNext paragraph."


def test_an_article_page_is_fetched_and_its_main_text_extracted(web):
    text = extract(item(source_type=SourceType.RSS, url=web.url + "/article"))
    assert text.startswith("Chip export rules reshape AI supply chains")
    assert "Subscribe" not in text


def test_a_page_without_article_text_is_an_extraction_error(web):
    error = extract(item(url=web.url + "/empty"))
    assert isinstance(error, ExtractionError)
    assert str(error) == f"no article text found at {web.url}/empty"


@pytest.mark.parametrize("path, title", [("/report.pdf", "Served report"), ("/mislabelled", "Mislabelled report")])
def test_a_pdf_behind_an_article_link_is_read_as_a_pdf(web, path, title):
    assert extract(item(url=web.url + path)).startswith(f"{title} - page 1")


def test_plain_text_responses_are_kept(web):
    assert extract(item(url=web.url + "/notes.txt")) == "Plain notes about Anthropic."


def test_unsupported_content_types_are_refused(web):
    error = extract(item(url=web.url + "/logo.png"))
    assert isinstance(error, ExtractionError)
    assert str(error) == f"unsupported content type image/png at {web.url}/logo.png"


def test_http_errors_are_service_errors_with_the_status(web):
    error = extract(item(url=web.url + "/gone"))
    assert isinstance(error, ServiceError) and str(error) == f"HTTP 404 for {web.url}/gone"


def test_a_cut_html_page_is_still_used_and_says_so(web):
    web.stream("/huge", lambda: huge_html_chunks(20 * 1024 * 1024))
    text = extract(item(url=web.url + "/huge"), max_download_mb="0.5")
    assert "Microsoft and OpenAI signed another agreement" in text
    settings = make_settings(max_download_mb="0.5", allow_private_urls="true")

    async def read():
        extractor = TextExtractor(settings, make_gateway(make_telemetry()[0], retries=0))
        try:
            return await extractor.read(item(url=web.url + "/huge"))
        finally:
            await extractor.close()

    [cut] = asyncio.run(read()).warnings
    assert str(cut) == "524,288 bytes read (page cut at MAX_DOWNLOAD_MB = 0.5 MB)"


def test_a_local_pdf_path_and_a_file_url_are_read():
    path = EXAMPLES / "enterprise_ai_adoption_2026.pdf"
    for location in (str(path), path.as_uri()):
        text = extract(item(source_type=SourceType.PDF, pdf_path=location), pdf_dir=str(EXAMPLES))
        assert text.startswith("State of Enterprise AI Adoption 2026")


def test_a_local_pdf_outside_pdf_dir_is_not_read(tmp_path):
    """A Drive URL typed into Notion, or a file swapped for a link after capture, cannot open a door."""
    inbox, private = tmp_path / "inbox", tmp_path / "private"
    inbox.mkdir()
    private.mkdir()
    secret = private / "salaries.pdf"
    secret.write_bytes(sample_pdf("Salaries"))
    (inbox / "report.pdf").symlink_to(secret)
    for location, pdf_dir in ((secret.as_uri(), str(inbox)), (str(inbox / "report.pdf"), str(inbox)),
                              (str(secret), None)):
        error = extract(item(source_type=SourceType.PDF, pdf_path=location),
                        **({"pdf_dir": pdf_dir} if pdf_dir else {}))
        assert isinstance(error, ExtractionError), location
        assert "PDF_DIR" in str(error) and "Salaries" not in str(error)


def test_a_fifo_in_pdf_dir_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "pipe.pdf")
    error = extract(item(source_type=SourceType.PDF, pdf_path=str(tmp_path / "pipe.pdf")), pdf_dir=str(tmp_path))
    assert isinstance(error, ExtractionError) and "not a regular file (FIFO)" in str(error)


def test_a_pdf_url_is_fetched(web):
    text = extract(item(source_type=SourceType.PDF, pdf_path=web.url + "/report.pdf"))
    assert "Served report - page 3" in text


def test_a_pdf_item_with_only_a_url_is_read(web):
    assert "Served report" in extract(item(source_type=SourceType.PDF, url=web.url + "/report.pdf"))


def test_a_missing_pdf_is_reported(tmp_path):
    error = extract(item(source_type=SourceType.PDF, pdf_path=str(tmp_path / "gone.pdf")), pdf_dir=str(tmp_path))
    assert isinstance(error, ExtractionError) and str(error) == f"PDF not found: {tmp_path / 'gone.pdf'}"


def test_a_folder_is_not_a_pdf(tmp_path):
    error = extract(item(source_type=SourceType.PDF, pdf_path=str(tmp_path)), pdf_dir=str(tmp_path))
    assert isinstance(error, ExtractionError) and "not a regular file" in str(error)


def test_a_pdf_over_the_size_cap_is_an_error_not_a_partial_read(tmp_path, web):
    big = tmp_path / "big.pdf"
    big.write_bytes(sample_pdf() + b"%" + b"0" * (600 * 1024))
    web.pdf("/big.pdf", big.read_bytes())
    for location in (str(big), web.url + "/big.pdf"):
        error = extract(item(source_type=SourceType.PDF, pdf_path=location), max_download_mb="0.5",
                        pdf_dir=str(tmp_path))
        assert isinstance(error, ExtractionError)
        assert str(error) == "PDF larger than MAX_DOWNLOAD_MB (0.5 MB)"


def test_unsupported_pdf_locations_are_refused():
    error = extract(item(source_type=SourceType.PDF, pdf_path="s3://bucket/report.pdf"))
    assert isinstance(error, ExtractionError) and "unsupported PDF location scheme s3:" in str(error)


def test_markup_without_text_is_empty_text():
    error = extract(item(content="<div><span> </span></div>"))
    assert isinstance(error, ExtractionError) and str(error) == "empty text after extraction"


def test_an_item_with_nothing_to_read_is_an_error():
    error = extract(item())
    assert isinstance(error, ExtractionError) and "nothing to extract" in str(error)


def test_urls_are_checked_for_safety_by_default(web):
    error = extract(item(url=web.url + "/article"), allow_private_urls="false")
    assert isinstance(error, ServiceError) and "loopback" in str(error)
    assert web.paths() == []


def test_a_shared_fetcher_is_not_closed_by_the_extractor(web):
    settings = make_settings(allow_private_urls="true")
    telemetry, _ = make_telemetry()

    async def run():
        fetcher = Fetcher(settings, make_gateway(telemetry))
        extractor = TextExtractor(settings, make_gateway(telemetry), fetcher=fetcher)
        await extractor.close()
        fetched = await fetcher.fetch(web.url + "/article")
        await fetcher.close()
        return fetched

    assert asyncio.run(run()).status_code == 200


def test_clean_text():
    assert clean_text("a\r\nb\rc\x07\x00d\n\n\n\n e") == "a\nb\ncd\n\n e"


def test_an_html_page_served_as_a_pdf_is_not_a_corrupt_pdf(web, tmp_path):
    login = b"<!doctype html><html><head><title>Sign in</title></head><body>Please log in</body></html>"
    web.pdf("/paywalled.pdf", login)
    saved = tmp_path / "report.pdf"
    saved.write_bytes(login)
    for target in (item(source_type=SourceType.PDF, pdf_path=web.url + "/paywalled.pdf"),
                   item(url=web.url + "/paywalled.pdf"),
                   item(source_type=SourceType.PDF, pdf_path=str(saved))):
        error = extract(target, pdf_dir=str(tmp_path))
        assert isinstance(error, ExtractionError) and str(error) == "not a PDF (looks like HTML)"
