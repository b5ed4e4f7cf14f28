"""``digest``: printed as Markdown or HTML, posted to a (fake) Slack webhook, from SQLite and from Notion."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from knowledge_pipeline.models import Enrichment, NewItem, SourceType
from tests.commands.conftest import Cli
from tests.fakes.notion_server import start_fake_notion
from tests.fakes.webhook_server import start_fake_webhook
from tests.reading.library import build_library
from tests.sources.notion_support import notion_store

SECRET_PATH = "/services/T000/B000/s3cr3tTOKEN"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The library, with the three items enriched since 2024-06-02 moved to the last hours."""
    path = tmp_path / "sources.db"
    build_library(path)
    recent = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat(timespec="seconds")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE items SET updated_at = ? WHERE updated_at >= '2024-06-02'", (recent,))
    return {"SOURCES_DB_PATH": str(path)}


def test_markdown_by_default_for_the_last_day(cli: Cli, env: dict[str, str]) -> None:
    done = cli("digest", **env)
    assert done.code == 0, done.err
    assert done.out.startswith("# Knowledge digest: 3 items enriched since ")
    assert "## Market News (2)" in done.out and "A long headline" not in done.out


def test_html_format(cli: Cli, env: dict[str, str]) -> None:
    done = cli("digest", "--format", "html", "--since", "12h", **env)
    assert done.out.startswith("<!doctype html>") and "<h2>Market News" in done.out


def test_post_sends_slack_json_and_says_where_without_the_secret(cli: Cli, env: dict[str, str]) -> None:
    with start_fake_webhook() as hook:
        done = cli("digest", "--post", DIGEST_WEBHOOK_URL=hook.url + SECRET_PATH, **env)
        (request,) = hook.stats()["requests"]
    assert done.code == 0, done.err
    assert done.out.strip() == f"Posted the digest of 3 items to {hook.url}."
    assert request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    assert body["items"] == 3 and body["text"].startswith("*Knowledge digest: 3 items enriched since")
    assert "<https://example.com/agents|Agents that open pull requests>" in body["text"]


def test_a_failing_webhook_is_one_line_exit_1_and_never_shows_the_secret(cli: Cli, env: dict[str, str]) -> None:
    with start_fake_webhook(status=500) as hook:
        done = cli("digest", "--post", DIGEST_WEBHOOK_URL=hook.url + SECRET_PATH, **env)
    assert done.code == 1
    assert done.err.strip() == f"digest: posting to {hook.url} failed: HTTP 500"
    assert "s3cr3t" not in done.out + done.err


def test_nothing_is_posted_for_an_empty_period(cli: Cli, env: dict[str, str]) -> None:
    with start_fake_webhook() as hook:
        done = cli("digest", "--post", "--since", "30m", DIGEST_WEBHOOK_URL=hook.url + SECRET_PATH, **env)
        assert hook.stats()["calls"] == 0
    assert done.code == 0 and "nothing posted" in done.out


def test_post_needs_the_webhook_variable(cli: Cli, env: dict[str, str]) -> None:
    done = cli("digest", "--post", **env)
    assert done.code == 2 and "DIGEST_WEBHOOK_URL" in done.err


def test_digest_from_notion(cli: Cli) -> None:
    with start_fake_notion(rps=None) as fake:
        store, _ = notion_store(fake)

        async def fill() -> None:
            await store.open()
            try:
                await store.add(NewItem("Still in the Inbox", SourceType.RSS, "h0", url="https://example.com/0"))
                old = await store.add_enriched(
                    NewItem("Enriched last month", SourceType.RSS, "h1", url="https://example.com/1"),
                    Enrichment("s", "Old news.", "Market News", (), None, ()), "text")
                fake.set_times(old.id, last_edited_time="2020-01-01T00:00:00.000Z")
                await store.add_enriched(
                    NewItem("Enriched today", SourceType.RSS, "h2", url="https://example.com/2"),
                    Enrichment("s", "Fresh executive summary.", "Vendor Capability", ("Coding",), "Acme", ()), "text")
            finally:
                await store.close()

        asyncio.run(fill())
        done = cli("digest", "--since", "1d", NOTION_TOKEN=fake.token, NOTION_SOURCES_DB=fake.database_id,
                   NOTION_BASE_URL=fake.url, NOTION_MAX_RPS="1000", PARALLEL_RATE_LIMIT="0")
    assert done.code == 0, done.err
    assert "# Knowledge digest: 1 item enriched since" in done.out
    assert "## Vendor Capability (1)" in done.out and "Fresh executive summary." in done.out
    assert "last month" not in done.out and "Inbox" not in done.out
