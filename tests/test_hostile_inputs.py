"""Hostile and broken inputs: each one ends in a clear outcome, and memory stays bounded.

Small inputs are committed under tests/data/{feeds,pages,pdfs}; the large ones
(20,000- and 200,000-entry feeds, 50 MB page, thousands of pages, decompression bomb) are
built at test time by tests/data/generate.py.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from knowledge_pipeline.capture.feeds import capture_feeds
from knowledge_pipeline.errors import ExtractionError, ServiceError
from knowledge_pipeline.extract.fetch import Fetcher
from knowledge_pipeline.extract.pdf import pdf_to_text
from knowledge_pipeline.models import Item, SourceType, Status
from tests.conftest import EXAMPLE_PDFS, ROOT, clean_env, events, list_items, run_script
from tests.data import generate
from tests.extract.support import extract, all_items, make_gateway, make_settings, make_telemetry, open_store
from tests.fakes.web_server import FakeWebServer

DATA = Path(__file__).resolve().parent / "data"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.pdf"
    path.write_bytes(generate.bomb_pdf(400 * MB))
    return path


@pytest.fixture(scope="module")
def many_pages(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "many_pages.pdf"
    path.write_bytes(generate.many_pages_pdf(3000))
    return path


# ---------------------------------------------------------------- feeds


def capture(tmp_path: Path, *feeds: str | Path, **env):
    env.setdefault("rss_window_days", "0")
    env.setdefault("feed_state_path", str(tmp_path / "feeds.db"))
    settings = make_settings(rss_feeds=",".join(str(f) for f in feeds), **env)
    telemetry, recorder = make_telemetry()

    async def run():
        async with open_store(tmp_path) as store:
            fetcher = Fetcher(settings, make_gateway(telemetry, retries=0))
            try:
                reports = await capture_feeds(
                    settings, store, fetcher, telemetry, known_hashes=await store.known_hashes()
                )
            finally:
                await fetcher.close()
            return reports, await all_items(store)

    reports, items = asyncio.run(run())
    return reports, items, recorder


def test_a_feed_cut_mid_entry_keeps_the_complete_entries_and_warns(tmp_path):
    [report], items, recorder = capture(tmp_path, DATA / "feeds" / "truncated.xml")
    assert sorted(i.title for i in items) == ["Entry 1", "Entry 2"]
    assert (report.found, report.rejected, report.errors) == (3, 1, [])
    assert recorder.of("entry_rejected")[0]["reason"] == "entry without a link"
    assert "no element found" in recorder.of("feed_warning")[0]["warning"]


def test_a_feed_cut_before_any_entry_is_a_feed_error(tmp_path):
    [report], items, recorder = capture(tmp_path, DATA / "feeds" / "truncated_header.xml")
    assert items == []
    assert report.errors == ["cannot parse feed (<unknown>:2:81: no element found)"]
    assert recorder.of("feed_error")[0]["error"] == report.errors[0]


@pytest.mark.parametrize(
    "name, title",
    [
        ("wrong_encoding.xml", "Café crème: naïve résumé"),
        ("missing_declaration.xml", "Zürich AI summit"),
    ],
)
def test_wrong_or_missing_encoding_declarations_are_decoded(tmp_path, name, title):
    [report], items, recorder = capture(tmp_path, DATA / "feeds" / name)
    assert [i.title for i in items] == [title]
    assert len(recorder.of("feed_warning")) == 1


def test_invalid_bytes_and_control_characters_never_reach_the_store(tmp_path):
    _, items, _ = capture(tmp_path, DATA / "feeds" / "non_utf8.xml")
    titles = sorted(i.title for i in items)
    assert titles == ["Bad ÿþ bytes here", "Entry 2"]
    assert not any(ch < " " for title in titles for ch in title)


def test_bad_entries_are_rejected_or_repaired(tmp_path):
    [report], items, recorder = capture(tmp_path, DATA / "feeds" / "bad_entries.xml")
    assert sorted(i.title for i in items) == ["Bold & markup", "example.com/posts/6"]
    assert (report.found, report.added, report.rejected) == (7, 2, 5)
    reasons = recorder.of("capture_complete")[0]["rejected_reasons"]
    assert reasons == {
        "entry without a link": 2,
        "unsupported link scheme javascript:": 1,
        "unsupported link scheme data:": 1,
        "unsupported link scheme file:": 1,
    }


def test_duplicate_links_across_two_feeds_are_added_once(tmp_path):
    reports, items, _ = capture(tmp_path, DATA / "feeds" / "duplicates_one.xml", DATA / "feeds" / "duplicates_two.xml")
    # feeds are read concurrently: which of the two adds a shared link varies, that it is added once does not
    assert (sum(r.added for r in reports), sum(r.duplicates for r in reports)) == (4, 2)
    assert len(items) == 4


def test_billion_laughs_are_not_expanded(tmp_path):
    started = time.monotonic()
    tracemalloc.start()
    try:
        _, items, _ = capture(tmp_path, DATA / "feeds" / "billion_laughs.xml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 50 * MB
    assert len(items) == 1 and len(items[0].title) < 100 and "lol" * 10 not in items[0].title


def test_external_entities_do_not_read_local_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    feed = tmp_path / "xxe.xml"
    feed.write_bytes(generate.external_entity_feed(secret))
    _, items, _ = capture(tmp_path, feed)
    assert all("TOP-SECRET-VALUE" not in f"{i.title} {i.content}" for i in items)


def test_a_feed_over_the_size_cap_is_refused_without_reading_it_whole(tmp_path):
    big = tmp_path / "big.xml"
    big.write_bytes(generate.huge_feed(5000))
    [report], items, _ = capture(tmp_path, big, max_download_mb="0.5")
    assert items == []
    assert report.errors == [f"feed file larger than MAX_DOWNLOAD_MB (0.5 MB): {big}"]


_HUGE_FEED_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from tests.extract.support import make_settings, make_telemetry, make_gateway, open_store, all_items
    from knowledge_pipeline.capture.feeds import capture_feeds
    from knowledge_pipeline.extract.fetch import Fetcher


    def high_water_kb():  # VmHWM, this process's own: ru_maxrss would start at pytest's RSS, carried over the spawn
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


    folder, feed = Path(sys.argv[1]), Path(sys.argv[2])
    before = high_water_kb()

    async def main():
        settings = make_settings(rss_feeds=str(feed), rss_window_days="0", max_download_mb="64",
                                 feed_state_path=str(folder / "feeds.db"))
        telemetry, recorder = make_telemetry()
        async with open_store(folder) as store:
            fetcher = Fetcher(settings, make_gateway(telemetry))
            [report] = await capture_feeds(settings, store, fetcher, telemetry, known_hashes=set())
            await fetcher.close()
            return report, [i.url for i in await all_items(store)], recorder.of("capture_complete")[0]

    report, urls, complete = asyncio.run(main())
    peak = high_water_kb()
    print(json.dumps({"found": report.found, "added": report.added, "urls": urls, "over_cap": complete["over_cap"],
                      "growth_mb": (peak - before) / 1024, "peak_mb": peak / 1024}))
    """
)


def dated_feed(path: Path, entries: int) -> None:
    """A valid RSS feed of ``entries`` short items (about 90 bytes each), dates in a shuffled order.

    Entry ``n`` is ``n`` minutes older than entry 0, so the newest are the lowest numbers.
    """
    order = list(range(entries))
    random.Random(12).shuffle(order)
    newest = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with path.open("w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Big</title>'
                  "<link>https://example.com/</link><description>d</description>")
        for n in order:
            when = (newest - timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
            out.write(f"<item><link>https://example.com/{n}</link><pubDate>{when}</pubDate></item>\n")
        out.write("</channel></rss>\n")


def check_huge_feed(tmp_path: Path, entries: int, max_growth_mb: float) -> dict:
    feed = tmp_path / "huge.xml"
    dated_feed(feed, entries)
    done = subprocess.run(
        [sys.executable, "-c", _HUGE_FEED_PROBE, str(tmp_path), str(feed)],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["found"], result["added"], result["over_cap"]) == (entries, 200, entries - 200)
    assert sorted(result["urls"]) == sorted(f"https://example.com/{n}" for n in range(200)), "the 200 newest"
    assert result["growth_mb"] < max_growth_mb, result
    print(f"{entries} entries, {feed.stat().st_size / MB:.1f} MB: peak {result['peak_mb']:.0f} MB, "
          f"growth {result['growth_mb']:.0f} MB, {result['added']} added, {result['over_cap']} over the limit")
    return result


def test_a_20000_entry_feed_adds_its_200_newest_with_bounded_memory(tmp_path):
    """FEED_MAX_ENTRIES (200): the newest are stored, the rest counted in capture_complete."""
    check_huge_feed(tmp_path, 20_000, max_growth_mb=100)


@pytest.mark.slow
def test_a_200000_entry_feed_adds_its_200_newest_with_bounded_memory(tmp_path):
    """The issue's case: 200,000 valid entries (434 MB peak and 200,000 Inbox items before the cap)."""
    check_huge_feed(tmp_path, 200_000, max_growth_mb=150)


# ---------------------------------------------------------------- pages




def web_item(url: str) -> Item:
    return Item(id="i", title="page", source_type=SourceType.RSS, url=url)


@pytest.fixture
def web():
    with FakeWebServer() as server:
        server.page("/article", (DATA / "pages" / "article.html").read_bytes())
        server.page("/no-text", (DATA / "pages" / "no_text.html").read_bytes())
        server.redirect("/loop-a", "/loop-b")
        server.redirect("/loop-b", "/loop-a")
        server.pdf("/pdf-as-html", generate.sample_pdf("Hidden PDF"), content_type="text/html; charset=utf-8")
        server.pdf("/pdf", generate.sample_pdf("Plain PDF"))
        server.pdf("/encrypted-pdf", (DATA / "pdfs" / "encrypted.pdf").read_bytes())
        server.stream("/50mb", lambda: generate.huge_html_chunks(50 * MB))
        yield server


@pytest.mark.parametrize(
    "path, error_type, reason",
    [
        ("/no-text", ExtractionError, "no article text found at {url}/no-text"),
        ("/loop-a", ServiceError, "too many redirects (more than 5) from {url}/loop-a"),
        ("/missing", ServiceError, "HTTP 404 for {url}/missing"),
        ("/encrypted-pdf", ExtractionError, "encrypted PDF (a password is needed to read it)"),
    ],
)
def test_bad_pages_fail_with_a_clear_reason(web, path, error_type, reason):
    error = extract(web_item(web.url + path))
    assert type(error) is error_type
    assert str(error) == reason.format(url=web.url)


@pytest.mark.parametrize("path, title", [("/pdf-as-html", "Hidden PDF"), ("/pdf", "Plain PDF")])
def test_a_pdf_behind_an_article_link_is_read(web, path, title):
    assert extract(web_item(web.url + path)).startswith(f"{title} - page 1")


def test_a_50mb_page_is_cut_at_max_download_mb_and_still_used(web):
    settings = make_settings(allow_private_urls="true", max_download_mb="2")
    telemetry, _ = make_telemetry()

    async def run():
        fetcher = Fetcher(settings, make_gateway(telemetry, retries=0))
        try:
            return await fetcher.fetch(web.url + "/50mb")
        finally:
            await fetcher.close()

    tracemalloc.start()
    try:
        fetched = asyncio.run(run())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fetched.truncated and len(fetched.body) == 2 * MB
    assert peak < 3 * 2 * MB + 4 * MB
    text = extract(web_item(web.url + "/50mb"), max_download_mb="2")
    assert "Microsoft and OpenAI signed another agreement about compute." in text


BOMB_CODINGS = {"gzip": "gzip", "deflate": "deflate", "gzip-gzip": "gzip, gzip", "br": "br", "zstd": "zstd"}


_MEASURE = textwrap.dedent(
    """
    import json, os, resource, subprocess, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with open(sys.argv[2], "wb") as err:
        child = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
    print(json.dumps({"exit_code": os.waitstatus_to_exitcode(status), "peak_mb": usage.ru_maxrss / 1024}))
    """
)


def run_measured(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> tuple[int, float, str]:
    """Run a script; its exit code, its own peak RSS in MB (wait4) and stderr.

    A small launcher starts it: Linux carries the high-water mark of the
    process that forks into the child's ru_maxrss, and the pytest process
    may already be large. The launcher also caps the address space at 3 GB,
    so that a regression fails this test instead of taking the machine's memory.
    """
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(3 * 1024 * MB), str(cwd / "stderr.txt"),
         sys.executable, str(ROOT / args[0]), *args[1:]],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    return measured["exit_code"], measured["peak_mb"], (cwd / "stderr.txt").read_text(errors="replace")


def test_compression_bombs_as_feeds_and_articles_fail_clearly_with_bounded_memory(tmp_path):
    """Each coding's 1 GB of zeros, served as a feed and as an article, in one real run."""
    with FakeWebServer() as web:
        entries = []
        for n, (name, header) in enumerate(BOMB_CODINGS.items()):
            bomb = generate.zeros_bomb(name, 1024 * MB)
            web.route(f"/feed-{name}", body=bomb, content_type="application/rss+xml",
                      headers={"Content-Encoding": header})
            web.route(f"/article-{name}", body=bomb, headers={"Content-Encoding": header})
            entries.append(generate.rss_item(n, link=f"{web.url}/article-{name}", title=f"bomb {name}"))
        web.page("/good", (DATA / "pages" / "article.html").read_bytes())
        entries.append(generate.rss_item(9, link=f"{web.url}/good", title="good article"))
        web.route("/links.xml", body=generate.rss_feed(entries), content_type="application/rss+xml")
        feeds = [f"{web.url}/feed-{name}" for name in BOMB_CODINGS] + [f"{web.url}/links.xml"]
        env = clean_env(
            RSS_FEEDS=",".join(feeds), RSS_WINDOW_DAYS="0", ALLOW_PRIVATE_URLS="true", ALERT_FAILURE_RATE="1",
            SOURCES_DB_PATH=str(tmp_path / "data" / "sources.db"), JOURNAL_PATH=str(tmp_path / "data" / "journal.db"),
            LOG_DIR=str(tmp_path / "logs"),
        )
        code, peak_mb, stderr = run_measured(["enrich_rss_enhanced.py"], tmp_path, env)
    assert code == 0, stderr[-3000:]
    assert peak_mb < 300, peak_mb
    assert len(events(tmp_path / "logs", "feed_error")) == len(BOMB_CODINGS)
    items = {i["title"]: i for i in list_items(tmp_path, env)}
    assert items["good article"]["status"] == Status.ENRICHED.value
    for name, header in BOMB_CODINGS.items():
        feed_error = next(e["error"] for e in events(tmp_path / "logs", "feed_error")
                          if e["source"].endswith(f"/feed-{name}"))
        failed = items[f"bomb {name}"]
        assert failed["status"] == Status.FAILED.value, name
        if name == "gzip-gzip":
            expected = "refused Content-Encoding 'gzip, gzip' at {url}: more than one content-coding layer"
        else:
            expected = f"refused {{url}}: its {header} content inflates more than 100x, past MAX_DOWNLOAD_MB (10 MB)"
        assert feed_error.startswith(expected.format(url=f"{web.url}/feed-{name}")), feed_error
        assert failed["error"].startswith(expected.format(url=f"{web.url}/article-{name}")), failed["error"]


# ----------------------------------------------------------------- PDFs


@pytest.mark.parametrize(
    "name, reason",
    [
        ("corrupt.pdf", "corrupt PDF: startxref not found"),
        ("truncated.pdf", "corrupt PDF: "),
        ("encrypted.pdf", "encrypted PDF (a password is needed to read it)"),
        ("image_only.pdf", "no extractable text in PDF (image-only or scanned?)"),
    ],
)
def test_broken_pdfs_fail_with_a_clear_reason(name, reason):
    error = extract(Item(id="p", title=name, source_type=SourceType.PDF, pdf_path=str(DATA / "pdfs" / name)),
                    pdf_dir=str(DATA / "pdfs"))
    assert isinstance(error, ExtractionError)
    assert str(error).startswith(reason)


def test_a_decompression_bomb_is_refused_with_bounded_memory(bomb):
    data = bomb.read_bytes()
    assert len(data) < MB
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ExtractionError, match="possible decompression bomb"):
            pdf_to_text(data, max_pages=500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < 120 * MB


def test_thousands_of_pages_are_read_up_to_max_pdf_pages(many_pages):
    started = time.monotonic()
    text = extract(Item(id="m", title="many", source_type=SourceType.PDF, pdf_path=str(many_pages)), max_pdf_pages="40",
                   pdf_dir=str(many_pages.parent))
    assert "PAGE-0040" in text and "PAGE-0041" not in text
    assert time.monotonic() - started < 30


# ------------------------------------------------- end to end, as a user sees it


def test_hostile_pdfs_end_as_failed_items_with_their_reason_and_the_run_goes_on(tmp_path, bomb):
    folder = tmp_path / "pdfs"
    folder.mkdir()
    for name in ("corrupt.pdf", "truncated.pdf", "encrypted.pdf", "image_only.pdf"):
        shutil.copy(DATA / "pdfs" / name, folder / name)
    shutil.copy(bomb, folder / "bomb.pdf")
    shutil.copy(EXAMPLE_PDFS / "board_memo_ai_strategy.pdf", folder / "good.pdf")
    env = clean_env(
        PDF_DIR=str(folder),
        SOURCES_DB_PATH=str(tmp_path / "data" / "sources.db"),
        JOURNAL_PATH=str(tmp_path / "data" / "journal.db"),
        LOG_DIR=str(tmp_path / "logs"),
        ALERT_FAILURE_RATE="1",
    )
    done = run_script(["enrich_enhanced.py"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    by_file = {Path(i["url"]).name: i for i in list_items(tmp_path, env)}
    assert by_file["good.pdf"]["status"] == Status.ENRICHED.value
    expected = {
        "corrupt.pdf": "corrupt PDF: startxref not found",
        "truncated.pdf": "corrupt PDF: ",
        "encrypted.pdf": "encrypted PDF",
        "image_only.pdf": "no extractable text in PDF",
        "bomb.pdf": "PDF content inflates beyond the decompression limit",
    }
    for name, reason in expected.items():
        assert by_file[name]["status"] == Status.FAILED.value, name
        assert by_file[name]["error"].startswith(reason), (name, by_file[name]["error"])
