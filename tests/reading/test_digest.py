"""The digest: grouping, order, and Markdown / HTML / Slack output that text from the web cannot break."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

from knowledge_pipeline.models import Enrichment, Item, NewItem, SourceType, Status
from knowledge_pipeline.reading.digest import (
    SLACK_TEXT_LIMIT,
    UNLABELLED,
    Digest,
    build_digest,
    to_html,
    to_markdown,
    to_slack,
)
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.conftest import with_store
from tests.reading.library import XSS_TITLE, build_library

SINCE = datetime(2024, 6, 2, tzinfo=timezone.utc)
UNTIL = datetime(2024, 6, 7, tzinfo=timezone.utc)


def digest_of(tmp_path: Path, since: datetime = SINCE, order: tuple[str, ...] = ()) -> Digest:
    build_library(tmp_path / "s.db")

    return with_store(SqliteStore(tmp_path / "s.db"), lambda store: build_digest(store, since, UNTIL, order))


def test_enriched_items_of_the_period_grouped_by_content_type(tmp_path: Path) -> None:
    digest = digest_of(tmp_path, order=("Thought Leadership", "Market News"))
    assert [(name, [i.title[:20] for i in items]) for name, items in digest.groups] == [
        ("Thought Leadership", ["State of enterprise "]),
        ("Market News", [XSS_TITLE[:20], "Agents that open pul"]),
    ], "taxonomy order, newest first inside a group; failed, inbox and older items left out"
    assert digest.count == 3 and digest.title.startswith("Knowledge digest: 3 items enriched since 2024-06-02")


def test_markdown_has_links_summaries_and_escapes_markup(tmp_path: Path) -> None:
    markdown = to_markdown(digest_of(tmp_path))
    assert "## Market News (2)" in markdown and "## Thought Leadership (1)" in markdown
    assert "### [Agents that open pull requests](<https://example.com/agents>)" in markdown
    assert "Coding agents now open pull requests on their own." in markdown
    assert "<script>" not in markdown and "\\<script\\>" in markdown
    assert "javascript:" not in markdown, "only http(s) links are linked"


def test_html_is_escaped_self_contained_and_links_only_to_the_web(tmp_path: Path) -> None:
    page = to_html(digest_of(tmp_path))
    assert "<script" not in page.lower().replace("&lt;script", "")
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    assert "javascript:" not in page and "onerror=\"" not in page

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag in ("a", "link", "script", "img", "iframe"):
                self.found.append(f"{tag}:{dict(attrs).get('href') or dict(attrs).get('src')}")

    parser = Tags()
    parser.feed(page)
    assert parser.found == ["a:https://example.com/agents"], "the PDF path and the javascript: URL are not links"
    assert "<style>" in page and "://" not in page.split("<body>")[0], "no CDN, no external stylesheet"


def test_slack_message_escapes_and_links(tmp_path: Path) -> None:
    payload = to_slack(digest_of(tmp_path))
    text = payload["text"]
    assert text.startswith("*Knowledge digest: 3 items enriched since 2024-06-02 00:00 UTC*")
    assert "• <https://example.com/agents|Agents that open pull requests>: Coding agents now" in text
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert payload["items"] == 3 and payload["by_content_type"] == {"Market News": 2, "Thought Leadership": 1}


def test_a_huge_digest_stays_under_slacks_limit() -> None:
    items = [Item(id=str(n), title=f"Title {n} " + "x" * 80, source_type=SourceType.RSS, status=Status.ENRICHED,
                  url=f"https://example.com/{n}", summary="word " * 200, content_type="Market News")
             for n in range(2000)]
    payload = to_slack(Digest(SINCE, UNTIL, [("Market News", items)]))
    assert len(payload["text"]) <= SLACK_TEXT_LIMIT
    assert re.search(r"…and \d+ more$", payload["text"])
    assert payload["items"] == 2000


def test_an_empty_period_says_so(tmp_path: Path) -> None:
    empty = digest_of(tmp_path, since=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert empty.count == 0 and "Nothing was enriched in this period." in to_markdown(empty)


def test_unlabelled_items_come_last(tmp_path: Path) -> None:
    async def main(store: SqliteStore) -> Digest:
        for n, label in enumerate(("", "Zeta", "Alpha", "Zeta")):
            await store.add_enriched(NewItem(f"Item {n}", SourceType.RSS, f"h{n}", url=f"https://example.com/{n}"),
                                     Enrichment("s", "e", label, (), None, ()), "text")
        return await build_digest(store, SINCE, datetime.now(timezone.utc))

    assert [(name, len(items)) for name, items in with_store(SqliteStore(tmp_path / "u.db"), main).groups] == [
        ("Zeta", 2), ("Alpha", 1), (UNLABELLED, 1)]
