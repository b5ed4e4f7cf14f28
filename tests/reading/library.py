"""A small Sources library for the reading tests: enriched, failed and inbox items with known words."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from knowledge_pipeline.models import AnalysisResult, Enrichment, NewItem, SourceType
from knowledge_pipeline.sources.sqlite import SqliteStore

WARNING = "9 of 23 pages read (damaged or truncated PDF)"
LONG_TITLE = "A long headline on model routers and agent platforms that no table should cut at fifty-eight chars"
XSS_TITLE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned=2"> Hostile title'


# Optional analyses (ANALYSES): a table and a bulleted list, after the four standard toggles.
ANALYSES = (
    AnalysisResult("swot", "SWOT", "table", ("S/W/O/T | Point", "S | agents test their own code")),
    AnalysisResult("actions", "Action Items", "bullets", ("Try an agent on one repository.", "Measure review time.")),
)


@dataclass(frozen=True)
class Entry:
    key: str
    title: str
    source_type: SourceType
    added: str
    enrichment: Enrichment | None = None
    text: str = ""
    error: str | None = None
    url: str | None = None


def _enrichment(executive: str, content_type: str, primitives: tuple[str, ...], vendor: str | None,
                insights: tuple[str, ...]) -> Enrichment:
    return Enrichment(summary=f"Summary: {executive}", executive_summary=executive, content_type=content_type,
                      ai_primitives=primitives, vendor=vendor, key_insights=insights)


ENTRIES: tuple[Entry, ...] = (
    Entry("router", LONG_TITLE, SourceType.RSS, "2024-06-01T09:00:00+00:00",
          _enrichment("Acme ships a model router that picks the cheapest model per request.", "Vendor Capability",
                      ("Automation", "Coding"), "Acme", ("Routing cut costs by 30%.", "Latency stayed flat.")),
          "Full text: routers send easy prompts to small models. Zeppelin appears only here."),
    Entry("agents", "Agents that open pull requests", SourceType.WEBSITE, "2024-06-02T09:00:00+00:00",
          replace(_enrichment("Coding agents now open pull requests on their own.", "Market News", ("Coding",),
                              "Globex", ("Review time fell by half.",)), analyses=ANALYSES),
          "Full text: agentic coding tools plan, edit and test."),
    Entry("report", "State of enterprise AI", SourceType.PDF, "2024-06-03T09:00:00+00:00",
          replace(_enrichment("A survey of 400 firms on AI adoption and budgets.", "Thought Leadership",
                              ("Research",), None, ("Budgets doubled.",)),
                  warnings=("9 of 23 pages read (damaged or truncated PDF)",)),
          "Full text: the survey covers adoption, budgets and governance."),
    Entry("failed", "A page that would not load", SourceType.WEBSITE, "2024-06-04T09:00:00+00:00",
          error="HTTP 404 from example.com: the page does not exist any more"),
    Entry("inbox", "Waiting in the Inbox", SourceType.RSS, "2024-06-05T09:00:00+00:00"),
    Entry("xss", XSS_TITLE, SourceType.WEBSITE, "2024-06-06T09:00:00+00:00",
          _enrichment('Exec <b>bold</b> & "quoted" <script>window.pwned=3</script>', "Market News", ("Research",),
                      "Evil <Corp>", ("<img src=x onerror=alert(1)>",)),
          "Full text with <script>window.pwned=4</script> inside.",
          url="javascript:alert(document.domain)"),
)


def build_library(path: Path) -> dict[str, str]:
    """The entries in a new SQLite store at ``path``; returns key -> item id."""

    async def main() -> dict[str, str]:
        store = SqliteStore(path)
        await store.open()
        ids: dict[str, str] = {}
        try:
            for n, entry in enumerate(ENTRIES, 1):
                new = NewItem(title=entry.title, source_type=entry.source_type, hash=f"hash-{entry.key}",
                              url=entry.url or (None if entry.source_type == SourceType.PDF
                                                else f"https://example.com/{entry.key}"),
                              pdf_path=f"/srv/pdfs/{entry.key}.pdf" if entry.source_type == SourceType.PDF else None,
                              created_date=date(2024, 5, n))
                if entry.enrichment is not None:
                    item = await store.add_enriched(new, entry.enrichment, entry.text)
                else:
                    item = await store.add(new)
                    if entry.error:
                        await store.mark_failed(item, entry.error)
                store.db.execute("UPDATE items SET added_at = ?, updated_at = ? WHERE id = ?",
                                 (entry.added, entry.added, item.id))
                ids[entry.key] = item.id
        finally:
            await store.close()
        return ids

    return asyncio.run(main())
