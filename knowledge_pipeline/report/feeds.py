"""The report's feeds section: each feed's latest state in the shown runs.

Built from the feed ``capture_complete`` events (``kind = feed``): its status
in the last run that saw it, the error count and last reason, the last
success, whether it is stale, and the items it added over the shown runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from ..telemetry import FEED_STATUSES
from .runs import RunReport

ATTENTION = ("paused", "failing", "deferred")


@dataclass(frozen=True)
class FeedLine:
    source: str
    status: str
    category: str | None
    added: int
    last_success: str | None
    consecutive_errors: int
    error: str | None
    stale: bool
    seen_at: datetime

    @property
    def needs_attention(self) -> bool:
        return self.status in ATTENTION or self.stale

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "category": self.category,
            "added": self.added,
            "last_success": self.last_success,
            "consecutive_errors": self.consecutive_errors,
            "error": self.error,
            "stale": self.stale,
            "seen_at": self.seen_at.isoformat(),
        }


def feed_lines(runs: Iterable[RunReport]) -> list[FeedLine]:
    """One line per feed seen in ``runs``: those needing attention first, then by source."""
    latest: dict[str, tuple[datetime, dict[str, Any]]] = {}
    added: dict[str, int] = {}
    for run in runs:
        for source, (when, data) in run.feed_events.items():
            if source not in latest or when >= latest[source][0]:
                latest[source] = (when, data)
            added[source] = added.get(source, 0) + int(data.get("added") or 0)
    lines = []
    for source, (when, data) in latest.items():
        errors = data.get("errors") or [data.get("last_error") or data.get("skipped")]
        lines.append(
            FeedLine(
                source=source,
                status=str(data.get("status") or "?"),
                category=data.get("category"),
                added=added.get(source, 0),
                last_success=data.get("last_success"),
                consecutive_errors=int(data.get("consecutive_errors") or 0),
                error=str(errors[-1]) if errors[-1] else None,
                stale=bool(data.get("stale")),
                seen_at=when,
            )
        )
    order = {status: n for n, status in enumerate(ATTENTION)}
    return sorted(lines, key=lambda line: (order.get(line.status, len(ATTENTION) + (0 if line.stale else 1)),
                                           line.source))


def feed_counts(runs: Sequence[RunReport]) -> dict[str, int]:
    """How many feeds are in each status, by their latest state in the shown runs."""
    counts = dict.fromkeys(FEED_STATUSES, 0)
    for line in feed_lines(runs):
        counts[line.status] = counts.get(line.status, 0) + 1
    return counts
