"""Capture: find new items (feeds, PDF folder, a URL by hand) and add them to the store."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import FatalRunError, ServiceError
from ..models import NewItem
from ..telemetry import Telemetry


@dataclass
class CaptureReport:
    """What one capture step found.

    ``errors`` are one-line reasons: a feed that could not be read, a file or
    an entry that could not be stored. ``rejected_reasons`` counts the
    rejected entries by the kind of reason.
    """

    source: str
    found: int = 0
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    would_add: list[NewItem] = field(default_factory=list)
    rejected_reasons: Counter = field(default_factory=Counter)

    def reject(self, telemetry: Telemetry, what: str, reason: str, *, counted_as: str | None = None,
               level: int = logging.WARNING, error: bool = True, **fields: Any) -> None:
        """Count one rejected entry and report it as ``entry_rejected`` (and in ``errors`` when ``error``).

        Every rejection goes through here, so ``rejected`` and ``rejected_reasons``
        agree: ``counted_as`` is the reason without its particulars (default:
        :func:`reason_kind`); ``fields`` (``kind``, ``url``...) go into the event.
        """
        self.rejected += 1
        self.rejected_reasons[counted_as or reason_kind(reason)] += 1
        if error:
            self.errors.append(f"{what}: {reason}")
        telemetry.event("entry_rejected", f"{self.source}: {what} rejected: {reason}", level=level,
                        source=self.source, reason=reason, **fields)


def reason_kind(reason: str) -> str:
    """The general part of a reason ("URL longer than 2000 characters"), without its particulars."""
    kind = reason.split(" (", 1)[0].split(": ", 1)[0].strip()
    return kind[:100] or "unknown"


async def store_new(
    store: Any,
    item: NewItem,
    report: CaptureReport,
    telemetry: Telemetry,
    *,
    known_hashes: set[str],
    dry_run: bool,
    **fields: Any,
) -> bool:
    """Add a new item (in a dry run, only list it) and report it as ``item_captured``; True once stored.

    A failure to store this one item (a limit of the store, a validation
    error, a transient error that outlasted its retries) rejects it with its
    reason and capture goes on. Its hash joins ``known_hashes`` only once the
    item is stored, so the next run tries it again. A fatal error (bad
    credentials) still stops the run.
    """
    if dry_run:
        report.would_add.append(item)
        known_hashes.add(item.hash)
        return True
    try:
        stored = await store.add(item)
    except FatalRunError:
        raise
    except ServiceError as exc:
        if exc.fatal:
            raise FatalRunError(str(exc)) from exc
        reason = exc.reason
    except Exception as exc:  # noqa: BLE001 - one item that cannot be stored never stops the others
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
    else:
        known_hashes.add(item.hash)
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
        return True
    reason = " ".join(str(reason).split())[:500]
    report.reject(telemetry, repr(item.title[:80]), f"not stored: {reason}",
                  counted_as="not stored: " + reason_kind(reason), **fields)
    return False


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
        rejected_reasons=dict(report.rejected_reasons),
        errors=list(report.errors),
        **extra,
    )
