"""Capture: find new items (feeds, PDF folder, a URL by hand) and add them to the store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..models import NewItem
from ..telemetry import Telemetry


@dataclass
class CaptureReport:
    """What one capture step found. ``errors`` are one-line reasons (a feed that could not be read)."""

    source: str
    found: int = 0
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    would_add: list[NewItem] = field(default_factory=list)


async def store_new(
    store: Any, item: NewItem, report: CaptureReport, telemetry: Telemetry, *, dry_run: bool, **fields: Any
) -> None:
    """Add a new item (or, in a dry run, only list it) and report it as ``item_captured``."""
    if dry_run:
        report.would_add.append(item)
        return
    stored = await store.add(item)
    report.added += 1
    telemetry.event(
        "item_captured",
        f"captured {item.title[:80]!r} from {report.source}",
        level=logging.DEBUG,
        source=report.source,
        item_id=stored.id,
        title=item.title,
        **fields,
    )


def report_complete(telemetry: Telemetry, report: CaptureReport, kind: str, message: str, **extra: Any) -> None:
    """The ``capture_complete`` event of one source: the counts every kind reports, plus its own."""
    telemetry.event(
        "capture_complete",
        message,
        source=report.source,
        kind=kind,
        found=report.found,
        added=report.added,
        would_add=len(report.would_add),
        duplicates=report.duplicates,
        rejected=report.rejected,
        errors=list(report.errors),
        **extra,
    )
