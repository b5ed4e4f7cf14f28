"""Writes pipeline.jsonl logs of simulated runs, in the format of logging_setup.

The ``pipeline_summary`` of a finished run is computed by the real
:class:`RunMetrics` fed the same events, so the report is checked against
what the scripts would have logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from knowledge_pipeline.telemetry import RunMetrics

ENRICHED, FAILED, SKIPPED = "enriched", "failed", "skipped"
PROMPT_TOKENS, COMPLETION_TOKENS, CACHED_TOKENS = 1000, 200, 100
COST_PER_CALL = 0.0005


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class SimulatedRun:
    run_id: str | None
    script: str
    mode: str
    start: datetime
    outcomes: list[str]
    workers: int = 1
    item_seconds: float = 2.0
    complete: bool = True
    exit_code: int = 0
    error: str = "Timeout fetching article"
    batch_cost: float = 0.0
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._now = self.start
        self._metrics = RunMetrics(clock=lambda: self._now.timestamp())
        self._build()

    def _emit(self, event_type: str, level: str = "INFO", advance: float = 0.0, **fields: Any) -> None:
        self._now += timedelta(seconds=advance)
        data = {"event_type": event_type, **({"run_id": self.run_id} if self.run_id else {}), **fields}
        self._metrics(event_type, data)
        record = {
            "timestamp": stamp(self._now),
            "level": level,
            "logger": "knowledge_pipeline",
            "message": event_type,
            "extra_fields": data,
        }
        self.lines.append(json.dumps(record))

    def _build(self) -> None:
        total = len(self.outcomes)
        self._metrics.items_total = total
        config = {"workers": self.workers, "rate_limit": 0.1, "backend": "sqlite", "enricher": "openai"}
        self._emit("run_start", script=self.script, mode=self.mode, total_items=total, config=config)
        self._emit(f"{self.mode}_start", total_items=total, max_workers=self.workers, rate_limit=0.1)
        for index, outcome in enumerate(self.outcomes):
            item = f"item-{index}"
            self._emit("item_start", item_id=item, title=f"Title {index}")
            if outcome == SKIPPED:
                self._emit("item_skipped", advance=0.1, item_id=item, reason="archived")
                continue
            self._emit("api_call_complete", advance=0.5, service="web", operation="fetch", duration=0.5, attempt=1)
            if outcome == FAILED:
                self._emit(
                    "api_call_retry", "WARNING", advance=0.5, service="web", operation="fetch",
                    attempt=1, wait=0.1, error="HTTP 503", duration=0.5,
                )
                self._emit(
                    "item_error", "ERROR", advance=self.item_seconds - 1.0, item_id=item, title=f"Title {index}",
                    error=self.error, error_type="extraction_error", duration=self.item_seconds,
                )
                continue
            self._emit(
                "api_call_complete", advance=1.0, service="openai", operation="chat", duration=1.0, attempt=1,
                prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS,
                total_tokens=PROMPT_TOKENS + COMPLETION_TOKENS, cached_tokens=CACHED_TOKENS,
                model="gpt-4.1-mini", estimated_cost_usd=COST_PER_CALL,
            )
            self._emit(
                "item_complete", advance=self.item_seconds - 1.5, item_id=item, title=f"Title {index}",
                duration=self.item_seconds, content_length=1000, content_type="Market News", vendor=None, chunks=1,
            )
        if self.batch_cost:
            self._emit(
                "batch_collected", advance=0.5, service="openai", tier="batch", batch_id="batch_x", status="completed",
                items_enriched=3, prompt_tokens=3 * PROMPT_TOKENS, completion_tokens=3 * COMPLETION_TOKENS,
                total_tokens=3 * (PROMPT_TOKENS + COMPLETION_TOKENS), cached_tokens=0, model="gpt-4.1-mini",
                estimated_cost_usd=self.batch_cost,
            )
        if self.complete:
            self._emit(
                "pipeline_summary", script=self.script, mode=self.mode,
                exit_code=self.exit_code, metrics=self._metrics.summary(),
            )

    def count(self, outcome: str) -> int:
        return self.outcomes.count(outcome)


def write_log(log_dir: Path, lines: list[str], *, parts: int = 1) -> list[Path]:
    """Split the lines over pipeline.jsonl.(parts-1) ... .1 and pipeline.jsonl, oldest first."""
    log_dir.mkdir(parents=True, exist_ok=True)
    names = [f"pipeline.jsonl.{n}" for n in range(parts - 1, 0, -1)] + ["pipeline.jsonl"]
    size = -(-len(lines) // parts)
    paths = []
    for index, name in enumerate(names):
        path = log_dir / name
        chunk = lines[index * size:(index + 1) * size]
        path.write_text("".join(line + "\n" for line in chunk), encoding="utf-8")
        paths.append(path)
    return paths
