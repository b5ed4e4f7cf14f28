"""Reading ``pipeline.jsonl`` and its rotated files into events.

The log rotates with ``RotatingFileHandler`` naming: ``pipeline.jsonl`` is
being written, ``pipeline.jsonl.1`` is the newest rotated file and
``pipeline.jsonl.N`` the oldest. Files are read oldest first, one line at a
time, so memory stays flat however large the log is.

A line the report cannot use (not JSON, JSON without the five record keys,
no known ``event_type``, a bad timestamp) is skipped and counted, never fatal:
the log may hold lines from other tools or a line cut short by a crash.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

LOG_NAME = "pipeline.jsonl"
RECORD_KEYS = frozenset({"timestamp", "level", "logger", "message", "extra_fields"})

# Every event type the package emits (tests/report/test_reader.py checks this
# against the package's source). A record with another type is counted as
# skipped, so a new event type must be added here.
KNOWN_EVENTS = frozenset(
    {
        # a run and its items
        "run_start",
        "sequential_start",
        "parallel_start",
        "item_start",
        "item_complete",
        "item_skipped",
        "item_error",
        "item_cancelled",
        "item_warning",
        "progress_update",
        "pipeline_summary",
        "run_aborted",
        "shutdown_requested",
        "shutdown_forced",
        "shutdown_abandoned",
        "retry_failed",
        "retry_failed_skipped",
        # issue 15: enrich first, never pay twice
        "item_duplicate",
        "dedup_error",
        "run_state_unavailable",
        # capture
        "capture_start",
        "capture_complete",
        "capture_skipped",
        "capture_error",
        "item_captured",
        "entry_rejected",
        "entry_duplicate",
        "email_text_unavailable",
        "feed_error",
        "feed_warning",
        "feed_entries_capped",
        "feed_paused",
        "feed_moved",
        "feed_host_paused",
        "feed_state_reset",
        # external calls, limits, money
        "api_call_complete",
        "api_call_retry",
        "api_call_error",
        "rate_limit_adjusted",
        "budget_exhausted",
        "openai_price_unknown",
        "openai_output_retry",
        "openai_json_mode_fallback",
        "openai_context_reduced",
        "openai_chunk_skipped",
        "document_chunks_capped",
        "taxonomy_label_mapped",
        "taxonomy_fallback",
        # LLM providers (f"{provider}_..." events of the core), context windows, analyses, batches
        "anthropic_price_unknown",
        "anthropic_output_retry",
        "anthropic_context_reduced",
        "anthropic_chunk_skipped",
        "openai_cache_key_dropped",
        "context_window_detected",
        "context_window_unknown",
        "context_window_sized",
        "analysis_missing",
        "item_deferred",
        "batch_mode",
        "batch_discarded",
        "batch_items_held",
        "batch_submitted",
        "batch_submit_pending",
        "batch_submit_failed",
        "batch_poll_failed",
        "batch_collected",
        "notion_schema_warning",
        # circuit breaker (issue 12)
        "service_unavailable",
        "item_requeued",
        "item_requeue_failed",
        # Notion (issue 12)
        "notion_data_sources",
        # migrate_to_parallel.py
        "migration_preflight",
        "migration_backup",
        "migration_phase",
        "migration_test",
        "migration_rollback",
        # after the run
        "metrics_export_failed",
        "alert",
        "alert_webhook_failed",
        # sync --to notion / --from notion
        "sync_start",
        "sync_item_failed",
        "sync_complete",
        # the logging setup itself: a plain record (no event data), a torn last line moved aside
        "log",
        "log_repaired",
    }
)

_ROTATED = re.compile(re.escape(LOG_NAME) + r"\.(\d+)$")


@dataclass(frozen=True)
class Event:
    """One usable log record."""

    timestamp: datetime
    level: str
    logger: str
    message: str
    event_type: str
    fields: dict[str, Any]

    @property
    def run_id(self) -> str | None:
        value = self.fields.get("run_id")
        return str(value) if value not in (None, "") else None


@dataclass
class LineCount:
    """Lines read and skipped; final once the event iterator is exhausted."""

    read: int = 0
    skipped: int = 0
    files: list[Path] = field(default_factory=list)

    def __int__(self) -> int:
        return self.skipped


def log_files(log_dir: Path) -> list[Path]:
    """``pipeline.jsonl.N`` ... ``.1`` then ``pipeline.jsonl``: oldest first."""
    if not log_dir.is_dir():
        return []
    rotated = []
    for path in log_dir.iterdir():
        match = _ROTATED.fullmatch(path.name)
        if match and path.is_file():
            rotated.append((int(match.group(1)), path))
    files = [path for _, path in sorted(rotated, reverse=True)]
    current = log_dir / LOG_NAME
    if current.is_file():
        files.append(current)
    return files


def read_events(log_dir: Path) -> tuple[Iterator[Event], LineCount]:
    """Lazily read every usable event of the log, oldest first.

    Returns the events and a :class:`LineCount` whose ``skipped`` is the
    number of unusable lines, complete once the iterator has been consumed.
    """
    count = LineCount(files=log_files(Path(log_dir)))
    return _events(count), count


def _events(count: LineCount) -> Iterator[Event]:
    for path in count.files:
        try:
            handle = path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            continue
        with handle:
            for line in handle:
                if not line.strip():
                    continue
                count.read += 1
                event = parse_line(line)
                if event is None:
                    count.skipped += 1
                else:
                    yield event


def parse_line(line: str) -> Event | None:
    """The event of one log line, or None when the line is not a usable record."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not RECORD_KEYS <= record.keys():
        return None
    fields = record["extra_fields"]
    if not isinstance(fields, dict) or fields.get("event_type") not in KNOWN_EVENTS:
        return None
    timestamp = parse_timestamp(record["timestamp"])
    if timestamp is None:
        return None
    return Event(
        timestamp=timestamp,
        level=str(record["level"]),
        logger=str(record["logger"]),
        message=str(record["message"]),
        event_type=fields["event_type"],
        fields=fields,
    )


def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text; naive times are taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
