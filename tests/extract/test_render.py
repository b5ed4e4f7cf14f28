"""Firecrawl rendering: only with FIRECRAWL_API_KEY, only for pages whose extraction yields too little text."""

from __future__ import annotations

from knowledge_pipeline.errors import ItemError
from knowledge_pipeline.models import Item, SourceType
from tests.data.generate import ARTICLE_HTML
from tests.extract.support import extract
from tests.fakes.firecrawl_server import FakeFirecrawl
from tests.fakes.web_server import FakeWebServer

APP_SHELL = "<html><head><title>App</title></head><body><div id='root'></div><script src='/app.js'></script></body></html>"
RENDERED = ("# Agents in production\n\n![chart](https://cdn.example/chart.png)\n\n"
            + "Teams that ship agents measure them first. " * 30
            + "\n\nRead [the evaluation guide](https://example.com/guide) for details.")


def item(url: str) -> Item:
    return Item(id="w1", title="t", source_type=SourceType.WEBSITE, url=url)


def test_a_javascript_page_is_rendered_through_firecrawl(tmp_path):
    with FakeWebServer() as web, FakeFirecrawl() as firecrawl:
        url = f"{web.url}/app"
        web.page("/app", APP_SHELL)
        firecrawl.page(url, markdown=RENDERED)
        text = extract(item(url), firecrawl_api_key=firecrawl.api_key, firecrawl_base_url=firecrawl.url)
        (request,) = firecrawl.requests
    assert "Teams that ship agents measure them first." in text and "the evaluation guide for details" in text
    assert "chart.png" not in text and "](https://" not in text
    assert request["headers"]["Authorization"] == f"Bearer {firecrawl.api_key}"
    assert request["body"]["url"] == url and set(request["body"]["formats"]) == {"markdown", "html"}


def test_without_the_key_nothing_changes(tmp_path):
    with FakeWebServer() as web, FakeFirecrawl() as firecrawl:
        web.page("/app", APP_SHELL)
        web.page("/article", ARTICLE_HTML)
        shell = extract(item(f"{web.url}/app"), firecrawl_base_url=firecrawl.url)
        article = extract(item(f"{web.url}/article"), firecrawl_base_url=firecrawl.url)
    assert isinstance(shell, ItemError) and "no article text found" in str(shell)
    assert isinstance(article, str) and firecrawl.requests == []


def test_a_full_article_is_not_sent_to_firecrawl(tmp_path):
    with FakeWebServer() as web, FakeFirecrawl() as firecrawl:
        web.page("/article", ARTICLE_HTML)
        text = extract(item(f"{web.url}/article"), firecrawl_api_key="fc-test-key", firecrawl_base_url=firecrawl.url)
    assert isinstance(text, str) and firecrawl.requests == []


def test_a_firecrawl_failure_is_one_line_with_the_fix_and_keeps_any_text_of_our_own(tmp_path):
    with FakeWebServer() as web, FakeFirecrawl() as firecrawl:
        web.page("/app", APP_SHELL)
        web.page("/short", "<html><body><article><p>A short note about GPUs and their prices.</p></article></body></html>")
        firecrawl.fail_next(2, status=402)
        env = {"firecrawl_api_key": firecrawl.api_key, "firecrawl_base_url": firecrawl.url}
        failed = extract(item(f"{web.url}/app"), **env)
        kept = extract(item(f"{web.url}/short"), **env)
        wrong_key = extract(item(f"{web.url}/app"), firecrawl_api_key="fc-wrong", firecrawl_base_url=firecrawl.url)
    assert isinstance(failed, ItemError) and "Firecrawl credits exhausted" in str(failed)
    assert isinstance(kept, str) and "short note about GPUs" in kept
    assert isinstance(wrong_key, ItemError) and "check FIRECRAWL_API_KEY" in str(wrong_key)
    assert "fc-wrong" not in str(wrong_key)


class _CompressedAnswer:
    """A stand-in Firecrawl that answers every POST with one compressed body (a bomb)."""

    def __init__(self, body: bytes, encoding: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler

        from tests.fakes import QuietHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_compressed_bomb_from_firecrawl_is_refused_without_inflating_it():
    import asyncio
    import tracemalloc

    from knowledge_pipeline.errors import ServiceError
    from knowledge_pipeline.extract.render import Firecrawl
    from tests.data.generate import zeros_bomb
    from tests.extract.support import make_gateway, make_settings, make_telemetry

    bomb = zeros_bomb("gzip-gzip", 256 * 1024 * 1024)
    answer = _CompressedAnswer(bomb, "gzip, gzip")
    settings = make_settings(firecrawl_api_key="fc-test", firecrawl_base_url=answer.url)
    telemetry, _ = make_telemetry()

    async def scrape():
        firecrawl = Firecrawl(settings, make_gateway(telemetry, retries=0))
        try:
            return await firecrawl.scrape("http://site.example/app")
        except ServiceError as exc:
            return exc
        finally:
            await firecrawl.close()

    tracemalloc.start()
    try:
        error = asyncio.run(scrape())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        answer.close()
    assert isinstance(error, ServiceError) and error.code == "content_coding"
    assert str(error).startswith("refused Content-Encoding 'gzip, gzip' at the Firecrawl answer")
    assert peak < 16 * 1024 * 1024


def test_a_firecrawl_failure_never_shows_the_pages_credentials(tmp_path):
    with FakeWebServer() as web, FakeFirecrawl() as firecrawl:
        web.page("/app", APP_SHELL)
        firecrawl.fail_next(1, status=402)
        url = f"http://alice:pa@ss-w0rd@127.0.0.1:{web.port}/app"
        failed = extract(item(url), firecrawl_api_key=firecrawl.api_key, firecrawl_base_url=firecrawl.url)
    assert isinstance(failed, ItemError) and "Firecrawl credits exhausted" in str(failed)
    assert f"no article text found at http://127.0.0.1:{web.port}/app" in str(failed)
    for part in ("alice", "pa@", "pa%40", "ss-w0rd"):
        assert part not in str(failed)
