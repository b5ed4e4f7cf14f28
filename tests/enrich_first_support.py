"""Helpers for the enrich-first and never-pay-twice tests (issue 15): feeds, articles, in-process runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from knowledge_pipeline.runner import RunResult
from tests.conftest import run_in_process
from tests.extract.support import Recorder
from tests.prose import sentences

VENDORS = ("Anthropic", "NVIDIA", "Mistral", "Microsoft", "OpenAI")


def article_text(n: int, paragraphs: int = 4) -> str:
    """Article ``n``: names a vendor and automation (so every enricher labels it), then prose of its own."""
    head = f"{VENDORS[n % len(VENDORS)]} described agent automation for report {n}."
    return "\n\n".join([head] + [sentences(n * 100 + p, 3) for p in range(paragraphs)])


def article_page(n: int, *, canonical: str | None = None, chrome: str = "Example News") -> str:
    """Article ``n`` as a web page, with a canonical link and the site's own boilerplate when given."""
    link = f'<link rel="canonical" href="{escape(canonical)}">' if canonical else ""
    body = "".join(f"<p>{escape(p)}</p>" for p in article_text(n).split("\n\n"))
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Report {n}</title>{link}</head><body>'
            f'<header><nav><a href="/">{chrome}</a> | <a href="/subscribe">Subscribe</a></nav></header>'
            f"<main><article><h1>Report {n}</h1>{body}</article></main>"
            f"<footer><p>Copyright 2026 {chrome}. All rights reserved.</p></footer></body></html>")


@dataclass
class Entry:
    title: str
    link: str
    content: str | None = None  # full text carried by the feed (content:encoded)


def feed(entries: list[Entry]) -> str:
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    items = []
    for n, entry in enumerate(entries):
        content = (f"<content:encoded><![CDATA[{''.join(f'<p>{p}</p>' for p in entry.content.split(chr(10) * 2))}]]>"
                   "</content:encoded>" if entry.content else "")
        items.append(f"<item><title>{escape(entry.title)}</title><link>{escape(entry.link)}</link>"
                     f"<pubDate>{(now - timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
                     f"<description>Teaser.</description>{content}</item>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Feed</title>'
            f"<link>https://example.com/</link><description>d</description>{''.join(items)}</channel></rss>\n")


def write_feed(path: Path, entries: list[Entry]) -> str:
    path.write_text(feed(entries), encoding="utf-8")
    return str(path)


def notion_env(notion: Any, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**notion.env(), "NOTION_MAX_RPS": "1000", **base_env(tmp_path), **extra}


def openai_env(openai: Any) -> dict[str, str]:
    return {**openai.env(), "OPENAI_BATCH": "never"}


def base_env(tmp_path: Path) -> dict[str, str]:
    return {"SOURCES_DB_PATH": str(tmp_path / "data" / "sources.db"), "JOURNAL_PATH": str(tmp_path / "data" / "journal.db"),
            "LOG_DIR": str(tmp_path / "logs"), "PARALLEL_RATE_LIMIT": "0", "RETRY_ATTEMPTS": "0",
            "ALLOW_PRIVATE_URLS": "true", "RSS_WINDOW_DAYS": "0", "PARALLEL_MAX_WORKERS": "4"}


def run(env: dict[str, str], *, capture: str = "feeds", parallel: bool = True, retry_failed: bool = False,
        add_url: str | None = None) -> tuple[RunResult, Recorder]:
    """One run of an enrich script, in this process; its result and every event."""
    return run_in_process(env, capture=capture, parallel=parallel, retry_failed=retry_failed, add_url=add_url)


def writes(notion: Any) -> tuple[int, int, int]:
    """(pages.create, blocks.children.append, pages.update) the fake Notion answered 200."""
    log = notion.stats()["log"]
    return tuple(sum(1 for e in log if e["endpoint"] == name and e["status"] == 200)  # type: ignore[return-value]
                 for name in ("pages.create", "blocks.children.append", "pages.update"))
