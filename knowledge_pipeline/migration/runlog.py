"""The last run's ``pipeline_summary`` from ``pipeline.jsonl`` (garbage lines are skipped)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TAIL_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class RunSummary:
    timestamp: str
    logger: str
    metrics: dict[str, Any]


def last_summary(log_file: Path, tail_bytes: int = _TAIL_BYTES) -> RunSummary | None:
    """The newest summary within the file's last ``tail_bytes`` (the file rotates at LOG_MAX_BYTES)."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - tail_bytes, 0))
            lines = handle.read().splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        if b"pipeline_summary" not in raw:
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        fields = record.get("extra_fields") if isinstance(record, dict) else None
        if not isinstance(fields, dict) or fields.get("event_type") != "pipeline_summary":
            continue
        metrics = fields.get("metrics")
        if isinstance(metrics, dict):
            return RunSummary(str(record.get("timestamp", "")), str(record.get("logger", "")), metrics)
    return None
