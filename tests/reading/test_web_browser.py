"""The reading page in a real browser: Debian's Chromium, headless, driven by Playwright.

The server is the one ``serve`` runs (uvicorn on a socket bound to 127.0.0.1:0).
Skipped with a reason when Chromium or Playwright is missing, failed instead
when KP_REQUIRE_SYSTEM_DEPS=1 (CI).
"""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import uvicorn

from knowledge_pipeline.commands.serve import bind, url_of
from knowledge_pipeline.reading.web import create_app
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.conftest import require_system_dep
from tests.reading.library import LONG_TITLE, XSS_TITLE, build_library

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("site")
    ids = build_library(folder / "s.db")
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(SqliteStore(folder / "s.db")), log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the reading page did not start"
    yield url_of(sock), ids
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    chromium = require_system_dep("Chromium", "chromium", "apt-get install -y chromium; .ci/run does")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_system_dep("Playwright for Python", "kp-playwright-module", "pip install -r requirements-dev.txt")
        return
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(site: tuple[str, dict], browser: object) -> Iterator[object]:
    """A fresh tab that records every request, console message and dialog."""
    tab = browser.new_page()  # type: ignore[attr-defined]
    tab.requests, tab.dialogs, tab.errors = [], [], []
    tab.on("request", lambda request: tab.requests.append(request.url))
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    yield tab
    tab.close()


def result_titles(tab: object) -> list[str]:
    return tab.locator("ol.results h2 a").all_inner_texts()  # type: ignore[attr-defined]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_load_search_filter_and_open_an_item(page: object, site: tuple[str, dict], tmp_path: Path) -> None:
    base, ids = site
    page.goto(base)
    assert page.title() == "Sources · Knowledge pipeline"
    assert len(result_titles(page)) == 6
    assert page.locator(".exec").first.inner_text().startswith("Exec")

    shot = page.screenshot(full_page=True)
    (tmp_path / "reading-page.png").write_bytes(shot)
    width, height = png_size(shot)
    assert width >= 1000 and height >= 600 and len(shot) > 20_000, "a screenshot with something on it"

    page.fill("input[name=q]", "routers")
    page.click("button[type=submit]")
    page.wait_for_url("**/?q=routers*")
    assert result_titles(page) == [LONG_TITLE]
    assert page.locator("mark").first.inner_text() == "routers"

    page.fill("input[name=q]", "")
    page.select_option("select[name=type]", "Market News")
    page.click("button[type=submit]")
    page.wait_for_url("**type=Market+News*")
    assert result_titles(page) == [XSS_TITLE, "Agents that open pull requests"]

    page.click("text=Agents that open pull requests")
    page.wait_for_url(f"**/item/{ids['agents']}")
    assert page.locator("h1").inner_text() == "Agents that open pull requests"
    assert page.locator("#executive-summary").get_attribute("open") is not None
    raw = page.locator("#raw")
    assert not raw.locator("p").first.is_visible(), "the full text starts folded"
    raw.locator("summary").click()
    assert raw.locator("p").first.inner_text() == "Full text: agentic coding tools plan, edit and test."
    for toggle in ("Executive Summary", "Summary", "Key Insights", "Raw (full text)"):
        assert page.locator("details > summary", has_text=toggle).count() >= 1
    assert all(url.startswith(base) for url in page.requests), "offline: nothing requested from elsewhere"
    assert not page.errors


def test_a_hostile_title_shows_as_text_and_no_script_runs(page: object, site: tuple[str, dict]) -> None:
    base, ids = site
    for url in (base, f"{base}?q=pwned", f"{base}item/{ids['xss']}"):
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.pwned") == "undefined", f"a script ran on {url}"
        assert page.locator("script").count() == 0 and page.locator("img").count() == 0
    assert page.locator("h1").inner_text() == XSS_TITLE, "the title is shown as the text it is"
    assert page.locator("a[href^=javascript]").count() == 0
    assert "javascript:alert(document.domain)" in page.locator("article").inner_text()
    assert not page.dialogs and not page.errors


def test_usable_at_phone_width(page: object, site: tuple[str, dict], tmp_path: Path) -> None:
    base, ids = site
    page.set_viewport_size({"width": 360, "height": 740})
    for url in (base, f"{base}item/{ids['router']}"):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{url} scrolls sideways at phone width"
    shot = page.screenshot()
    (tmp_path / "phone.png").write_bytes(shot)
    assert png_size(shot) == (360, 740)
    box = page.locator("h1").bounding_box()
    assert box is not None and box["width"] <= 360
