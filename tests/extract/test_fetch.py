"""The guarded fetcher against a real HTTP server on 127.0.0.1 (ALLOW_PRIVATE_URLS=true)."""

from __future__ import annotations

import asyncio
import gzip
import random
import socket
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from knowledge_pipeline import USER_AGENT
from knowledge_pipeline.errors import ServiceError
from knowledge_pipeline.extract.fetch import Fetcher, classify_web_error, parse_retry_after
from knowledge_pipeline.extract.decoding import accept_encoding
from tests.data.generate import ARTICLE_HTML, huge_html_chunks, sample_pdf, zeros_bomb
from tests.extract.support import coding_param, make_gateway, make_settings, make_telemetry
from tests.fakes.web_server import FakeWebServer


@pytest.fixture
def web():
    with FakeWebServer() as server:
        yield server


def fetch(url: str, retries: int = 2, sleeps: list[float] | None = None, **env):
    """Fetch one URL with a fresh Fetcher; returns (Fetched or the ServiceError, recorder)."""
    settings = make_settings(allow_private_urls="true", **env)
    telemetry, recorder = make_telemetry()

    async def run():
        fetcher = Fetcher(settings, make_gateway(telemetry, retries=retries, sleeps=sleeps))
        try:
            return await fetcher.fetch(url)
        except ServiceError as exc:
            return exc
        finally:
            await fetcher.close()

    return asyncio.run(run()), recorder


def test_fetches_a_page_with_an_honest_user_agent(web):
    web.page("/article", ARTICLE_HTML)
    fetched, recorder = fetch(web.url + "/article")
    assert fetched.status_code == 200
    assert fetched.content_type == "text/html"
    assert fetched.charset == "utf-8"
    assert fetched.body == ARTICLE_HTML.encode()
    assert not fetched.truncated and not fetched.is_pdf
    assert web.stats()["requests"][0]["user_agent"] == USER_AGENT
    [call] = recorder.of("api_call_complete")
    assert call["service"] == "web" and call["status_code"] == 200 and call["bytes"] == len(ARTICLE_HTML.encode())


def test_follows_redirects_and_reports_every_hop(web):
    web.page("/final", ARTICLE_HTML)
    web.redirect("/a", "/b", status=301)
    web.redirect("/b", web.url + "/c", status=307)
    web.redirect("/c", "final", status=308)
    fetched, recorder = fetch(web.url + "/a")
    assert fetched.url == web.url + "/final"
    assert web.paths() == ["/a", "/b", "/c", "/final"]
    assert [e["status_code"] for e in recorder.of("api_call_complete")] == [301, 307, 308, 200]


def test_five_redirects_are_followed_but_not_six(web):
    web.page("/0", "<p>end</p>")
    for n in range(1, 7):
        web.redirect(f"/{n}", f"/{n - 1}")
    assert fetch(web.url + "/5")[0].url == web.url + "/0"
    error, _ = fetch(web.url + "/6")
    assert isinstance(error, ServiceError)
    assert str(error) == f"too many redirects (more than 5) from {web.url}/6"


def test_a_redirect_loop_ends_with_too_many_redirects(web):
    web.redirect("/loop", "/loop")
    error, _ = fetch(web.url + "/loop")
    assert "too many redirects" in str(error)
    assert web.paths().count("/loop") == 6


def test_body_is_cut_at_max_download_mb(web):
    web.stream("/huge", lambda: huge_html_chunks(50 * 1024 * 1024))
    fetched, _ = fetch(web.url + "/huge", max_download_mb="1")
    assert fetched.truncated
    assert len(fetched.body) == 1024 * 1024
    assert fetched.body.startswith(b"<html>")


def test_a_body_exactly_at_the_cap_is_not_truncated(web):
    web.route("/exact", body=b"x" * 1024 * 1024, content_type="text/plain")
    fetched, _ = fetch(web.url + "/exact", max_download_mb="1")
    assert not fetched.truncated and len(fetched.body) == 1024 * 1024


def test_404_fails_at_once_with_the_status_and_url(web):
    error, recorder = fetch(web.url + "/missing")
    assert isinstance(error, ServiceError)
    assert str(error) == f"HTTP 404 for {web.url}/missing"
    assert error.status_code == 404 and not error.retryable
    assert web.paths() == ["/missing"]
    assert recorder.of("api_call_error")[0]["status_code"] == 404


def test_5xx_is_retried_until_it_succeeds(web):
    web.route("/flaky", body=ARTICLE_HTML, fail_first=2, fail_status=503)
    fetched, recorder = fetch(web.url + "/flaky", retries=3)
    assert fetched.status_code == 200
    assert [e["status_code"] for e in recorder.of("api_call_retry")] == [503, 503]
    assert web.paths() == ["/flaky"] * 3


def test_persistent_5xx_gives_up_after_the_retries(web):
    web.route("/down", body=b"", fail_first=100, fail_status=502)
    error, recorder = fetch(web.url + "/down", retries=2)
    assert isinstance(error, ServiceError) and error.status_code == 502
    assert str(error) == f"HTTP 502 for {web.url}/down"
    assert len(web.paths()) == 3
    assert len(recorder.of("api_call_retry")) == 2 and len(recorder.of("api_call_error")) == 1


def test_429_waits_for_retry_after(web):
    web.route("/limited", body=ARTICLE_HTML)
    web.configure(rate_limit_rate=1.0, retry_after=7)
    sleeps: list[float] = []

    error, recorder = fetch(web.url + "/limited", retries=1, sleeps=sleeps)
    assert isinstance(error, ServiceError) and error.status_code == 429 and error.retry_after == 7.0
    assert 7.0 in sleeps
    assert recorder.of("api_call_retry")[0]["wait"] == 7.0
    assert any(e["reason"] == "slow_down" for e in recorder.of("rate_limit_adjusted"))


def test_a_slow_response_times_out_and_is_retried(web):
    web.route("/slow", body=ARTICLE_HTML, delay=1.0)
    error, recorder = fetch(web.url + "/slow", retries=1, api_timeout="0.2")
    assert isinstance(error, ServiceError) and error.retryable
    assert str(error) == f"timed out after 0.2s fetching {web.url}/slow"
    assert len(recorder.of("api_call_retry")) == 1


def test_a_trickling_body_is_bounded_by_the_total_timeout(web):
    # Each chunk arrives well within the read timeout; the whole download does not.
    web.stream("/drip", lambda: (b"<p>drop</p>" for _ in range(100)), chunk_delay=0.05)
    error, _ = fetch(web.url + "/drip", retries=0, api_timeout="0.5")
    assert isinstance(error, ServiceError) and "timed out after 0.5s" in str(error)


def test_connection_refused_is_a_retryable_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error, recorder = fetch(f"http://127.0.0.1:{port}/x", retries=1)
    assert isinstance(error, ServiceError) and error.retryable
    assert str(error).startswith(f"connection failed for http://127.0.0.1:{port}/x")
    assert len(recorder.of("api_call_retry")) == 1


def test_credentials_in_a_url_never_reach_the_error(web):
    error, _ = fetch(f"http://user:hunter2@127.0.0.1:{web.port}/missing")
    assert "hunter2" not in str(error) and "404" in str(error)


def test_a_compressed_page_is_decoded_and_only_decodable_codings_are_asked_for(web):
    web.route("/gz", body=gzip.compress(ARTICLE_HTML.encode()), headers={"Content-Encoding": "gzip"})
    fetched, recorder = fetch(web.url + "/gz")
    assert fetched.body == ARTICLE_HTML.encode() and not fetched.truncated
    assert web.stats()["requests"][0]["headers"]["Accept-Encoding"] == accept_encoding()
    assert recorder.of("api_call_complete")[0]["bytes"] == len(ARTICLE_HTML.encode())


@pytest.mark.parametrize(
    "encoding, reason",
    [
        ("gzip, gzip", "refused Content-Encoding 'gzip, gzip' at {url}: more than one content-coding layer"),
        ("x-bomb", "refused Content-Encoding 'x-bomb' at {url}: unsupported content-coding"),
    ],
)
def test_layered_or_unknown_codings_fail_at_once_with_the_reason(web, encoding, reason):
    web.route("/coded", body=gzip.compress(gzip.compress(b"<p>x</p>")), headers={"Content-Encoding": encoding})
    error, recorder = fetch(web.url + "/coded")
    assert isinstance(error, ServiceError) and not error.retryable
    assert str(error).startswith(reason.format(url=web.url + "/coded"))
    assert web.paths() == ["/coded"] and recorder.of("api_call_error")[0]["error_type"] == "content_coding"


@pytest.mark.parametrize("coding", [coding_param(c) for c in ["gzip", "deflate", "br", "zstd"]])
def test_a_compression_bomb_fails_with_a_clear_reason(web, coding):
    web.route("/bomb", body=zeros_bomb(coding, 64 * 1024 * 1024), headers={"Content-Encoding": coding})
    error, _ = fetch(web.url + "/bomb", max_download_mb="1")
    assert isinstance(error, ServiceError) and not error.retryable and error.code == "decompression_bomb"
    assert str(error).startswith(
        f"refused {web.url}/bomb: its {coding} content inflates more than 100x, past MAX_DOWNLOAD_MB (1 MB)"
    )


def test_an_honest_compressed_page_over_the_cap_is_cut_like_any_other(web):
    words = random.Random(7).choices(ARTICLE_HTML.split(), k=500_000)
    page = ("<html><body><p>" + " ".join(words) + "</p></body></html>").encode()
    assert len(page) > 2 * 1024 * 1024
    web.route("/big-gz", body=gzip.compress(page), headers={"Content-Encoding": "gzip"})
    fetched, _ = fetch(web.url + "/big-gz", max_download_mb="1")
    assert fetched.truncated and fetched.body == page[: 1024 * 1024]


def test_a_pdf_is_recognised_by_content_type_or_magic(web):
    web.pdf("/typed", sample_pdf(), content_type="application/pdf")
    web.pdf("/mislabelled", sample_pdf(), content_type="text/html")
    assert fetch(web.url + "/typed")[0].is_pdf
    assert fetch(web.url + "/mislabelled")[0].is_pdf


@pytest.mark.parametrize(
    "value, expected",
    [("7", 7.0), ("0", 0.0), ("-3", 0.0), ("soon", None), (None, None), ("", None)],
)
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date():
    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp) == pytest.approx(30.0)


def test_classify_maps_httpx_errors():
    request = httpx.Request("GET", "https://example.com/a")
    assert classify_web_error(httpx.ReadTimeout("slow", request=request)).retryable
    assert classify_web_error(httpx.ConnectError("refused", request=request)).retryable
    assert classify_web_error(httpx.RemoteProtocolError("bad", request=request)).retryable
    not_found = httpx.HTTPStatusError("nf", request=request, response=httpx.Response(404, request=request))
    mapped = classify_web_error(not_found)
    assert (mapped.status_code, mapped.retryable, str(mapped)) == (404, False, "HTTP 404 for https://example.com/a")
    limited = httpx.Response(429, headers={"Retry-After": "12"}, request=request)
    mapped = classify_web_error(httpx.HTTPStatusError("rl", request=request, response=limited))
    assert mapped.retryable and mapped.retry_after == 12.0
    assert not classify_web_error(ValueError("odd")).retryable


def test_the_fake_server_is_driven_through_its_control_endpoints(web):
    web.page("/a", "<p>a</p>")
    with httpx.Client(base_url=web.url) as client:
        assert client.post("/__control", json={"error_rate": 1.0}).status_code == 200
        assert client.get("/a").status_code == 503
        assert client.post("/__control", json={"error_rate": 0, "latency": 0.01}).status_code == 200
        assert client.get("/a").status_code == 200
        assert client.post("/__control", json={"no_such_fault": 1}).status_code == 400
        stats = client.get("/__stats").json()
    gets = [r for r in stats["requests"] if r["path"] == "/a"]
    assert len(gets) == 2 and gets[0]["time"] <= gets[1]["time"]


def test_the_fake_server_runs_on_its_own(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, clean_env

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.web_server", "--port", str(port)],
        cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, text=True,
    )
    try:
        assert f"http://127.0.0.1:{port}" in process.stdout.readline()
        response = httpx.get(f"http://127.0.0.1:{port}/article")
        assert response.status_code == 200 and b"NVIDIA" in response.content
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
