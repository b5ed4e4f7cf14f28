"""WEBSITE_AUTH_CONFIGS: per-domain headers and cookies sent to that domain only, never logged."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import pytest

from knowledge_pipeline.errors import ConfigError
from tests.extract.support import fetcher_for, make_settings
from tests.fakes.web_server import FakeWebServer

SECRET_COOKIE = "sess-9f8e7d6c5b4a"
SECRET_TOKEN = "Bearer paid-3c2b1a0f"


def auth_file(tmp_path, data: dict) -> str:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps(data))
    return str(path)


def fetch_all(settings, urls: list[str]):
    async def run():
        async with fetcher_for(settings) as (fetcher, recorder):
            for url in urls:
                await fetcher.fetch(url)
            return recorder

    return asyncio.run(run())


def test_headers_and_cookies_go_to_their_domain_only_even_after_a_redirect(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    config = auth_file(tmp_path, {"127.0.0.1": {"headers": {"Authorization": SECRET_TOKEN},
                                                "cookies": {"session": SECRET_COOKIE, "plan": "pro"}}})
    with FakeWebServer() as web:
        web.page("/paid", "<p>members</p>")
        other = f"http://localhost:{web.port}/landing"
        web.redirect("/out", other)
        web.page("/landing", "<p>elsewhere</p>")
        settings = make_settings(website_auth_configs=config, allow_private_urls="true")
        recorder = fetch_all(settings, [f"{web.url}/paid", f"{web.url}/out"])
        requests = web.stats()["requests"]
    paid, out, landing = requests
    assert paid["headers"]["Authorization"] == SECRET_TOKEN
    assert paid["headers"]["Cookie"] == f"session={SECRET_COOKIE}; plan=pro"
    assert out["headers"].get("Cookie") and landing["host"].startswith("localhost")
    assert "Authorization" not in landing["headers"] and "Cookie" not in landing["headers"]
    logged = json.dumps([data for _, data in recorder.events]) + caplog.text
    assert SECRET_COOKIE not in logged and "paid-3c2b1a0f" not in logged


def test_subdomains_match_and_plain_http_to_a_public_host_gets_nothing():
    from knowledge_pipeline.config import SiteAuth

    auth = SiteAuth("ft.com", (("X-Key", "k1234"),))
    assert auth.matches("www.ft.com") and auth.matches("FT.com") and not auth.matches("notft.com")
    settings = dataclasses.replace(make_settings(), website_auth={"ft.com": auth})

    async def headers():
        async with fetcher_for(settings) as (fetcher, _):
            return fetcher._site_headers("https://www.ft.com/x"), fetcher._site_headers("http://www.ft.com/x")

    secure, plain = asyncio.run(headers())
    assert secure == {"X-Key": "k1234"} and plain == {}


def test_auth_values_are_secrets_redacted_from_logs(tmp_path):
    config = auth_file(tmp_path, {"www.example.com": {"cookies": {"sid": SECRET_COOKIE}}})
    settings = make_settings(website_auth_configs=config)
    assert SECRET_COOKIE in settings.secrets and "example.com" in settings.website_auth
    assert SECRET_COOKIE not in repr(settings)


@pytest.mark.parametrize("content, expected", [
    ("[1]", "expected a JSON file"),
    ("{bad", "not valid JSON"),
    (json.dumps({"example.com": {"headers": {"X": 1}}}), "headers must map names to one-line string values"),
    (json.dumps({"example.com": {"headers": {"X": "a\r\nInjected: 1"}}}), "one-line string values"),
    (json.dumps({"not a domain": {"cookies": {}}}), "entry 'not a domain'"),
    (json.dumps({"example.com": {"password": "x"}}), "entry 'example.com'"),
])
def test_a_bad_auth_file_is_one_line_that_never_shows_a_value(tmp_path, content, expected):
    path = tmp_path / "auth.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        make_settings(website_auth_configs=str(path))
    message = str(raised.value)
    assert message.startswith("WEBSITE_AUTH_CONFIGS=") and expected in message and "\n" not in message
    assert "Injected" not in message
