"""Grouping events into runs, one :class:`RunReport` per run.

Events are grouped by their ``run_id``. A line without one belongs to the run
opened by the last ``run_start`` without a ``run_id`` (or, failing that, the
most recent open run) until its ``pipeline_summary``.

A finished run's numbers come from its ``pipeline_summary``. A run without one
(killed, or its end not yet written) is "incomplete": its numbers are rebuilt
from its own events with the same :class:`RunMetrics` the scripts use, so both
kinds of run are measured alike.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from ..telemetry import CAPTURE_COUNTS, RunMetrics, add_capture_counts
from .reader import Event

OK = "ok"
FAILED = "failed"
INCOMPLETE = "incomplete"

_START_EVENTS = ("sequential_start", "parallel_start")
_REASON_CHARS = 200


@dataclass
class RunReport:
    """What one run did, in the shape of the ``pipeline_summary`` metrics."""

    run_id: str | None
    script: str
    mode: str
    status: str
    exit_code: int | None
    started_at: datetime
    ended_at: datetime
    workers: int | None
    backend: str | None
    enricher: str | None
    metrics: dict[str, Any]
    errors: Counter[str] = field(default_factory=Counter)
    api_durations: dict[str, list[float]] = field(default_factory=dict)
    captured: dict[str, int] = field(default_factory=dict)
    captured_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    feed_events: dict[str, tuple[datetime, dict[str, Any]]] = field(default_factory=dict)

    @property
    def feeds(self) -> dict[str, int]:
        """This run's feeds by status (``feeds_ok``... of its metrics); empty for a run without feeds."""
        counts = {key[len("feeds_"):]: int(value or 0) for key, value in self.metrics.items()
                  if key.startswith("feeds_") and isinstance(value, (int, float))}
        return counts if any(counts.values()) else {}

    @property
    def items_total(self) -> int:
        return int(self.metrics.get("items_total") or 0)

    @property
    def enriched(self) -> int:
        return int(self.metrics.get("items_processed") or 0)

    @property
    def failed(self) -> int:
        return int(self.metrics.get("items_failed") or 0)

    @property
    def skipped(self) -> int:
        return int(self.metrics.get("items_skipped") or 0)

    @property
    def cancelled(self) -> int:
        return int(self.metrics.get("items_cancelled") or 0)

    @property
    def success_rate(self) -> float | None:
        """None when no item was attempted."""
        if self.enriched + self.failed == 0:
            return None
        return _float(self.metrics.get("success_rate"))

    @property
    def failure_rate(self) -> float | None:
        if self.enriched + self.failed == 0:
            return None
        return _float(self.metrics.get("failure_rate"))

    @property
    def duration_seconds(self) -> float:
        return _float(self.metrics.get("duration_seconds")) or 0.0

    @property
    def items_per_second(self) -> float:
        return _float(self.metrics.get("items_per_second")) or 0.0

    @property
    def item_p95(self) -> float | None:
        return _float((self.metrics.get("item_duration") or {}).get("p95"))

    @property
    def api_calls(self) -> dict[str, dict[str, Any]]:
        calls = self.metrics.get("api_calls") or {}
        return {name: dict(data) for name, data in sorted(calls.items()) if isinstance(data, dict)}

    @property
    def tokens(self) -> dict[str, int]:
        tokens = self.metrics.get("tokens") or {}
        return {k: int(tokens.get(k) or 0) for k in ("prompt", "completion", "cached", "total")}

    @property
    def cost_usd(self) -> float | None:
        """None when the cost is unknown (a model without a price)."""
        return _float(self.metrics.get("estimated_cost_usd"))

    @property
    def cost_by_tier(self) -> dict[str, float | None]:
        """Spend on direct calls and on collected Batch API results (older logs: all direct)."""
        tiers = self.metrics.get("cost_by_tier")
        if not isinstance(tiers, dict):
            return {"direct": self.cost_usd, "batch": 0.0}
        return {"direct": _float(tiers.get("direct")) if "direct" in tiers else 0.0,
                "batch": _float(tiers.get("batch")) if "batch" in tiers else 0.0}

    @property
    def cache_hit_share(self) -> float | None:
        """Share of prompt tokens read from the provider's prompt cache; None without LLM calls."""
        return _float(self.metrics.get("cache_hit_share"))

    def to_dict(self) -> dict[str, Any]:
        """The run as plain JSON data (``report --json``)."""
        return {
            "run_id": self.run_id,
            "script": self.script,
            "mode": self.mode,
            "status": self.status,
            "exit_code": self.exit_code,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "workers": self.workers,
            "backend": self.backend,
            "enricher": self.enricher,
            "items_total": self.items_total,
            "items_enriched": self.enriched,
            "items_failed": self.failed,
            "items_skipped": self.skipped,
            "items_cancelled": self.cancelled,
            "success_rate": self.success_rate,
            "failure_rate": self.failure_rate,
            "duration_seconds": self.duration_seconds,
            "items_per_second": self.items_per_second,
            "item_duration_p95": self.item_p95,
            "api_calls": {
                name: {k: data.get(k) for k in ("count", "errors", "retries", "p50", "p95")}
                for name, data in self.api_calls.items()
            },
            "tokens": self.tokens,
            "estimated_cost_usd": self.cost_usd,
            "cost_by_tier": self.cost_by_tier,
            "cache_hit_share": self.cache_hit_share,
            "captured": dict(self.captured),
            "captured_by_kind": {kind: dict(counts) for kind, counts in self.captured_by_kind.items()},
            "feeds": self.feeds,
            "top_errors": [[reason, count] for reason, count in self.errors.most_common(5)],
        }


class _RunBuilder:
    def __init__(self, run_id: str | None, first: Event) -> None:
        self.run_id = run_id
        self.started_at = first.timestamp
        self.ended_at = first.timestamp
        self._now = first.timestamp.timestamp()
        self.aggregate = RunMetrics(clock=lambda: self._now)
        self.start: dict[str, Any] = {}
        self.summary: dict[str, Any] | None = None
        self.errors: Counter[str] = Counter()
        self.api_durations: dict[str, list[float]] = {}
        self.captured: Counter[str] = Counter()
        self.captured_by_kind: dict[str, dict[str, int]] = {}
        self.feed_events: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self.workers: int | None = None

    @property
    def closed(self) -> bool:
        return self.summary is not None

    def add(self, event: Event) -> None:
        self.ended_at = max(self.ended_at, event.timestamp)
        self._now = max(self._now, event.timestamp.timestamp())
        data = event.fields
        kind = event.event_type
        if kind == "run_start" and not self.start:
            self.start = data
            self.started_at = min(self.started_at, event.timestamp)
            self._set_total(data.get("total_items"))
        elif kind in _START_EVENTS:
            self._set_total(data.get("total_items"))
            if data.get("max_workers") is not None:
                self.workers = _int(data.get("max_workers"))
        elif kind == "item_error":
            self.errors[str(data.get("error", ""))[:_REASON_CHARS]] += 1
        elif kind == "api_call_complete" and data.get("service"):
            duration = _float(data.get("duration"))
            if duration is not None:
                self.api_durations.setdefault(str(data["service"]), []).append(duration)
        elif kind == "capture_complete":
            for key in CAPTURE_COUNTS:
                self.captured[key] += _int(data.get(key)) or 0
            add_capture_counts(self.captured_by_kind, data)
            if data.get("kind") == "feed" and data.get("source"):
                self.feed_events[str(data["source"])] = (event.timestamp, data)
        elif kind == "pipeline_summary":
            self.summary = data
        if kind != "pipeline_summary":
            try:
                self.aggregate(kind, data)
            except (KeyError, TypeError, ValueError):
                pass

    def _set_total(self, value: object) -> None:
        total = _int(value)
        if total is not None and total > 0:
            self.aggregate.items_total = total

    def report(self) -> RunReport:
        summary = self.summary or {}
        start = self.start
        config = start.get("config") if isinstance(start.get("config"), dict) else {}
        metrics = summary.get("metrics") if isinstance(summary.get("metrics"), dict) else None
        if metrics is None:
            metrics = self.aggregate.summary()
        exit_code = _int(summary.get("exit_code")) if self.summary is not None else None
        if self.summary is None:
            status = INCOMPLETE
        else:
            status = OK if exit_code in (0, None) else FAILED
        mode = str(summary.get("mode") or start.get("mode") or "?")
        workers = _int(config.get("workers")) or self.workers
        if workers is None and mode == "sequential":
            workers = 1
        errors = self.errors
        if not errors and metrics.get("top_errors"):
            errors = Counter({str(r): int(c) for r, c in metrics["top_errors"]})
        return RunReport(
            run_id=self.run_id,
            script=str(summary.get("script") or start.get("script") or "?"),
            mode=mode,
            status=status,
            exit_code=exit_code,
            started_at=self.started_at,
            ended_at=self.ended_at,
            workers=workers,
            backend=config.get("backend"),
            enricher=config.get("enricher"),
            metrics=metrics,
            errors=errors,
            api_durations=self.api_durations,
            captured=dict(self.captured),
            captured_by_kind=self.captured_by_kind,
            feed_events=self.feed_events,
        )


def build_runs(events: Iterable[Event]) -> list[RunReport]:
    """Every run found in the events, oldest first."""
    builders: list[_RunBuilder] = []
    by_id: dict[str, _RunBuilder] = {}
    anonymous: _RunBuilder | None = None
    for event in events:
        run_id = event.run_id
        if run_id is not None:
            builder = by_id.get(run_id)
            if builder is None:
                builder = by_id[run_id] = _RunBuilder(run_id, event)
                builders.append(builder)
        else:
            if event.event_type == "run_start":
                anonymous = _RunBuilder(None, event)
                builders.append(anonymous)
            builder = anonymous if anonymous is not None and not anonymous.closed else _last_open(builders)
            if builder is None:
                continue
        builder.add(event)
        if builder is anonymous and builder.closed:
            anonymous = None
    return sorted((b.report() for b in builders), key=lambda run: run.started_at)


def _last_open(builders: list[_RunBuilder]) -> _RunBuilder | None:
    for builder in reversed(builders):
        if not builder.closed:
            return builder
    return None


def select_runs(runs: list[RunReport], *, last: int | None = 20, since: datetime | None = None) -> list[RunReport]:
    """The runs started at or after ``since`` (aware datetime), then the last ``last`` of them."""
    chosen = [run for run in runs if since is None or run.started_at >= since]
    if last is not None:
        chosen = chosen[-last:] if last > 0 else []
    return chosen


def top_errors(runs: Iterable[RunReport], limit: int = 10) -> list[tuple[str, int]]:
    """The most frequent ``item_error`` reasons across the runs."""
    total: Counter[str] = Counter()
    for run in runs:
        total.update(run.errors)
    return total.most_common(limit)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: object) -> int | None:
    number = _float(value)
    return None if number is None else int(number)
