"""Copying between the SQLite store and the Notion database.

``to_notion``: every local item whose hash the Notion database does not have
becomes a complete page: an Enriched item is one ``pages.create`` carrying
every property and the body when the body fits in one request
(:meth:`NotionStore.add_enriched`); Inbox items become Inbox pages, Failed
(and Duplicate) items Failed (Duplicate) pages with their reason, each in one
``pages.create`` too. It is resumable and idempotent: the
hashes are read from Notion first, a create whose reply was lost is looked up
by hash before it is retried, and a page left Failed with
:data:`INCOMPLETE_BODY` (a long body cut off between its appends) is finished
on the next run.

``from_notion``: every page (properties, and the body toggles of Enriched
pages) into the SQLite store, so Notion users get local search, the reading
page and a backup. A page is fetched again only when its ``last_edited_time``
moved; a run that completes without failures remembers when it started, and
the next one asks Notion only for pages edited since then (less two minutes:
Notion's times have whole minutes). Pages removed from Notion stay in the
copy.

Both go through the Notion limiter like any run, and report per item through
telemetry; one item's failure never stops the others, a fatal one (bad token)
stops the sync.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..errors import FatalRunError, ItemError, ServiceError
from ..models import Item, Status
from ..telemetry import Telemetry
from .base import INCOMPLETE_BODY, ItemContent, ItemQuery, new_item_of
from .notion import NotionStore
from .sqlite import SqliteStore

FROM_NOTION_MARK = "from_notion"
EDIT_MARGIN = timedelta(minutes=2)
SETTLED_AFTER = timedelta(seconds=61)


@dataclass
class SyncReport:
    direction: str
    copied: Counter = field(default_factory=Counter)
    updated: int = 0
    completed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def total_copied(self) -> int:
        return sum(self.copied.values())

    def counts(self) -> dict[str, object]:
        return {"copied": self.total_copied, "copied_by_status": dict(self.copied), "updated": self.updated,
                "completed": self.completed, "unchanged": self.unchanged, "skipped": self.skipped,
                "failed": self.failed}

    def summary(self) -> str:
        parts = [f"{self.total_copied} copied"]
        if self.copied:
            parts[0] += " (" + ", ".join(f"{n} {s}" for s, n in sorted(self.copied.items())) + ")"
        for name, value in (("updated", self.updated), ("finished after an interruption", self.completed),
                            ("already there", self.unchanged), ("skipped (no hash)", self.skipped),
                            ("failed", self.failed)):
            if value or name == "already there":
                parts.append(f"{value} {name}")
        return ", ".join(parts)


def _fail(telemetry: Telemetry, report: SyncReport, item: Item, exc: Exception) -> None:
    if isinstance(exc, ServiceError) and exc.fatal:
        raise FatalRunError(str(exc)) from exc
    report.failed += 1
    reason = exc.reason if isinstance(exc, ItemError) else f"{type(exc).__name__}: {exc}"
    telemetry.event("sync_item_failed", f"sync {report.direction}: {item.title}: {reason}", level=logging.WARNING,
                    direction=report.direction, item_id=item.id, title=item.title, error=reason)


def _interrupted_copy(remote: Item, local: Item, notion: NotionStore) -> bool:
    """A page an earlier sync created and could not finish (Failed with the marker, or Failed without Error)."""
    if remote.status != Status.FAILED or local.status != Status.ENRICHED:
        return False
    return remote.error == INCOMPLETE_BODY or not notion.keeps_errors()


async def to_notion(local: SqliteStore, notion: NotionStore, telemetry: Telemetry) -> SyncReport:
    report = SyncReport("to_notion")
    telemetry.event("sync_start", "sync --to notion: reading the hashes the Notion database has",
                    direction=report.direction)
    remote = await notion.by_hash()
    async for item in local.list_items(ItemQuery()):
        if not item.hash:
            report.skipped += 1
            continue
        there = remote.get(item.hash)
        try:
            if there is not None:
                if _interrupted_copy(there, item, notion):
                    content = ItemContent.from_body(await local.body(item.id))
                    await notion.write_enrichment(there, content.enrichment(item), content.text, repair=True)
                    report.completed += 1
                else:
                    report.unchanged += 1
                continue
            remote[item.hash] = await _copy(local, notion, item)
            report.copied[item.status.value] += 1
        except (ItemError, ServiceError) as exc:
            _fail(telemetry, report, item, exc)
    _complete(telemetry, report)
    return report


async def _copy(local: SqliteStore, notion: NotionStore, item: Item) -> Item:
    if item.status == Status.ENRICHED:
        content = ItemContent.from_body(await local.body(item.id))
        return await notion.add_enriched(new_item_of(item), content.enrichment(item), content.text)
    # with the text capture kept (an email's), which the Notion page then carries for its enrichment
    new = new_item_of(await local.get(item.id))
    # One create with the final status: an Inbox page first, cut off before its status, would stay in the
    # Inbox for good (the next sync finds its hash) and be enriched by the next Notion run.
    if item.status == Status.FAILED:
        return await notion.add_failed(new, item.error or "failed (no reason kept)")
    if item.status == Status.DUPLICATE:  # issue 15: still a duplicate there, saying of what
        return await notion.add_failed(new, item.error or "Duplicate", status=Status.DUPLICATE)
    return await notion.add(new)


async def from_notion(notion: NotionStore, local: SqliteStore, telemetry: Telemetry,
                      now: datetime | None = None) -> SyncReport:
    report = SyncReport("from_notion")
    started = now or datetime.now(timezone.utc)
    mark = await local.sync_mark(FROM_NOTION_MARK)
    telemetry.event("sync_start", "sync --from notion: " + (f"pages edited since {mark:%Y-%m-%d %H:%M} UTC"
                                                          if mark else "every page"),
                    direction=report.direction, since=mark.isoformat() if mark else None)
    async for item in notion.list_items(ItemQuery(updated_since=mark)):
        try:
            if await _unchanged(local, item):
                report.unchanged += 1
                continue
            content = ItemContent.from_body(await notion.body(item.id)) if item.status == Status.ENRICHED else None
            if await local.put_copy(item, content, synced_at=started):
                report.copied[item.status.value] += 1
            else:
                report.updated += 1
        except (ItemError, ServiceError) as exc:
            _fail(telemetry, report, item, exc)
    if not report.failed:
        await local.set_sync_mark(FROM_NOTION_MARK, started - EDIT_MARGIN)
    _complete(telemetry, report)
    return report


async def _unchanged(local: SqliteStore, page: Item) -> bool:
    """Copied already at this ``last_edited_time``, by a sync that started after that minute was over."""
    state = await local.copy_state(page.id)
    if state is None or page.updated_at is None:
        return False
    edited, synced = state
    if edited is None or datetime.fromisoformat(edited) != page.updated_at.replace(microsecond=0):
        return False
    return datetime.fromisoformat(synced) >= page.updated_at + SETTLED_AFTER


def _complete(telemetry: Telemetry, report: SyncReport) -> None:
    level = logging.WARNING if report.failed else logging.INFO
    telemetry.event("sync_complete", f"sync {report.direction}: {report.summary()}", level=level,
                    direction=report.direction, **report.counts())
