"""The digest: what was enriched in a period, grouped by content type, as Markdown, HTML or a Slack message.

"Enriched in the period" means Status = Enriched and last changed since the
start of the period (SQLite: ``updated_at``, set by the enrichment; Notion:
the page's ``last_edited_time``, so a page edited by hand later shows up
again).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from ..models import Item, Status
from ..sources.base import ItemQuery, SourceStore
from .records import link, one_line
from .render import render, stylesheet, web_link

UNLABELLED = "Unlabelled"
SLACK_TEXT_LIMIT = 35_000  # Slack cuts a message's text at 40,000 characters
SLACK_SUMMARY_CHARS = 300


@dataclass
class Digest:
    since: datetime
    until: datetime
    groups: list[tuple[str, list[Item]]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(items) for _, items in self.groups)

    @property
    def title(self) -> str:
        noun = "item" if self.count == 1 else "items"
        return f"Knowledge digest: {self.count} {noun} enriched since {self.since:%Y-%m-%d %H:%M} UTC"


async def build_digest(store: SourceStore, since: datetime, until: datetime, order: tuple[str, ...] = ()) -> Digest:
    """The Enriched items changed since ``since``, newest first within each content type.

    Groups follow ``order`` (the taxonomy), then any other label by size, "Unlabelled" last.
    """
    grouped: dict[str, list[Item]] = defaultdict(list)
    async for item in store.list_items(ItemQuery(status=Status.ENRICHED, updated_since=since, newest_first=True)):
        grouped[one_line(item.content_type) or UNLABELLED].append(item)
    rank = {name: n for n, name in enumerate(order)}
    names = sorted(grouped, key=lambda n: (n == UNLABELLED, rank.get(n, len(rank)), -len(grouped[n]), n))
    return Digest(since, until, [(name, grouped[name]) for name in names])


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _md(text: str | None) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))


def to_markdown(digest: Digest) -> str:
    lines = [f"# {digest.title}", ""]
    if not digest.groups:
        lines.append("Nothing was enriched in this period.")
    for name, items in digest.groups:
        lines += [f"## {_md(name)} ({len(items)})", ""]
        for item in items:
            url = web_link(link(item))
            title = _md(item.title) or "(untitled)"
            lines.append(f"### [{title}](<{url.replace('>', '%3E').replace(' ', '%20')}>)" if url else f"### {title}")
            labels = [v for v in (one_line(item.vendor), ", ".join(item.ai_primitives),
                                  item.created_date.isoformat() if item.created_date else "") if v]
            if labels:
                lines.append("*" + _md(" · ".join(labels)) + "*")
            lines += ["", _md(item.summary) or "(no executive summary)", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_html(digest: Digest) -> str:
    return render("digest.html", digest=digest, css=stylesheet(), link=link)


def _slack(text: str | None) -> str:
    """Slack's mrkdwn needs only &, < and > escaped."""
    return one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_slack(digest: Digest) -> dict:
    """A Slack-compatible webhook body: mrkdwn ``text`` (links as <url|title>) plus the counts."""
    lines = [f"*{_slack(digest.title)}*"]
    left = digest.count
    for name, items in digest.groups:
        lines.append(f"\n*{_slack(name)}* ({len(items)})")
        for item in items:
            url = web_link(link(item))
            title = _slack(item.title) or "(untitled)"
            summary = _slack(item.summary)
            if len(summary) > SLACK_SUMMARY_CHARS:
                summary = summary[: SLACK_SUMMARY_CHARS - 1].rsplit(" ", 1)[0] + "…"
            entry = f"• <{url.replace('|', '%7C')}|{title.replace('|', '¦')}>" if url else f"• {title}"
            entry += f": {summary}" if summary else ""
            if sum(len(line) + 1 for line in lines) + len(entry) > SLACK_TEXT_LIMIT:
                lines.append(f"…and {left} more")
                return _payload(digest, "\n".join(lines))
            lines.append(entry)
            left -= 1
    return _payload(digest, "\n".join(lines))


def _payload(digest: Digest, text: str) -> dict:
    return {
        "text": text,
        "since": digest.since.isoformat(timespec="seconds"),
        "until": digest.until.isoformat(timespec="seconds"),
        "items": digest.count,
        "by_content_type": {name: len(items) for name, items in digest.groups},
    }
