"""Events and run metrics.

The package records what happens through :class:`Telemetry`: every event is a
log record whose ``extra_fields`` carry an ``event_type`` and its data, and
every event is also shown to the observers (run metrics, progress bar). Where
records go (JSONL file, console) is decided by the logging setup of the
script, never here: the package does not print.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Protocol

Observer = Callable[[str, dict[str, Any]], None]
# a feed's status in one run, as counted in pipeline_summary (feeds_ok, feeds_failing...)
FEED_STATUSES = ("ok", "not_modified", "failing", "paused", "deferred")


class Telemetry:
    """Emits structured events and fans them out to observers."""

    def __init__(self, logger_name: str = "knowledge_pipeline") -> None:
        self.logger = logging.getLogger(logger_name)
        self._observers: list[Observer] = []
        self.context: dict[str, Any] = {}

    def bind(self, **fields: Any) -> None:
        """Fields added to every later event (e.g. the run_id of this run)."""
        self.context.update(fields)

    def add_observer(self, observer: Observer) -> None:
        self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def event(self, event_type: str, message: str, *, level: int = logging.INFO, **fields: Any) -> None:
        data = {"event_type": event_type, **self.context, **fields}
        for observer in list(self._observers):
            observer(event_type, data)
        self.logger.log(level, message, extra={"extra_fields": data})

    def child(self, logger_name: str) -> Telemetry:
        """Same observers, another logger name."""
        other = Telemetry(logger_name)
        other._observers = self._observers
        other.context = self.context
        return other


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class CostSource(Protocol):
    def cost(self, model: str, prompt: int, completion: int, cached: int) -> float | None: ...


class RunMetrics:
    """Aggregates one run's events into the ``pipeline_summary`` metrics."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock()
        self.items_total = 0
        self.succeeded = 0
        self.failed = 0
        self.skipped = 0
        self.cancelled = 0
        self.duplicates = 0
        self.deferred = 0
        self.item_durations: list[float] = []
        self.api: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"count": 0, "errors": 0, "retries": 0, "durations": []}
        )
        self.usage: dict[str, TokenTally] = {}
        self.tiers: dict[str, TokenTally] = {}
        self.unanswered = {"count": 0, "prompt_tokens": 0, "cost_usd": 0.0}
        self.batches = {"submitted": 0, "items_submitted": 0, "collected": 0, "items_collected": 0}
        self.error_reasons: dict[str, int] = defaultdict(int)
        self.captured: dict[str, dict[str, int]] = {}
        # capture: each feed's status, and the configured sources that failed
        self.feeds: dict[str, int] = defaultdict(int)
        self.sources_total = 0
        self.sources_failed = 0

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        with self._lock:
            handler = getattr(self, "_on_" + event_type, None)
            if handler is not None:
                handler(data)

    def _on_item_complete(self, data: dict[str, Any]) -> None:
        self.succeeded += 1
        self.item_durations.append(float(data.get("duration", 0.0)))

    def _on_item_error(self, data: dict[str, Any]) -> None:
        self.failed += 1
        self.item_durations.append(float(data.get("duration", 0.0)))
        self.error_reasons[str(data.get("error", ""))[:200]] += 1

    def _on_item_requeued(self, data: dict[str, Any]) -> None:
        """An item_error that was the outage's, not the item's: it is back in the Inbox."""
        self.failed = max(self.failed - 1, 0)
        reason = str(data.get("error", ""))[:200]
        if self.error_reasons.get(reason, 0) > 1:
            self.error_reasons[reason] -= 1
        else:
            self.error_reasons.pop(reason, None)

    def _on_item_skipped(self, data: dict[str, Any]) -> None:
        self.skipped += 1

    def _on_item_cancelled(self, data: dict[str, Any]) -> None:
        self.cancelled += 1

    def _on_item_duplicate(self, data: dict[str, Any]) -> None:
        """A duplicate found before the LLM was paid: done, neither a success nor a failure."""
        self.duplicates += 1

    def _on_item_deferred(self, data: dict[str, Any]) -> None:
        self.deferred += 1

    def _on_capture_complete(self, data: dict[str, Any]) -> None:
        add_capture_counts(self.captured, data)
        if data.get("kind") == "feed" and data.get("status"):
            self.feeds[str(data["status"])] += 1
        failed = data.get("source_failed")
        if isinstance(failed, bool):
            self.sources_total += 1
            self.sources_failed += failed

    @property
    def all_sources_failed(self) -> bool:
        """Every configured source (feed, PDF folder) failed in this run: nothing could be captured."""
        return self.sources_total > 0 and self.sources_failed == self.sources_total

    def _on_api_call_complete(self, data: dict[str, Any]) -> None:
        service = self.api[data["service"]]
        service["count"] += 1
        service["durations"].append(float(data.get("duration", 0.0)))
        self._count_tokens(data)

    def _on_api_call_error(self, data: dict[str, Any]) -> None:
        service = self.api[data["service"]]
        service["count"] += 1
        service["errors"] += 1
        service["durations"].append(float(data.get("duration", 0.0)))
        self._count_tokens(data)

    def _on_api_call_retry(self, data: dict[str, Any]) -> None:
        service = self.api[data["service"]]
        service["count"] += 1
        service["errors"] += 1
        service["retries"] += 1
        service["durations"].append(float(data.get("duration", 0.0)))
        self._count_tokens(data)

    def _on_batch_submitted(self, data: dict[str, Any]) -> None:
        self.batches["submitted"] += 1
        self.batches["items_submitted"] += int(data.get("items") or 0)

    def _on_batch_collected(self, data: dict[str, Any]) -> None:
        self.batches["collected"] += 1
        self.batches["items_collected"] += int(data.get("items_enriched") or 0)
        self._count_tokens(data)

    def _count_tokens(self, data: dict[str, Any]) -> None:
        """Tokens and cost of an LLM call (or a collected batch), per provider and per price tier.

        Failed attempts carry tokens too when the provider bills them although
        the answer was lost (``tokens_estimated``): they count, marked.
        """
        if "prompt_tokens" not in data:
            return
        for tally in (
            self.usage.setdefault(str(data["service"]), TokenTally()),
            self.tiers.setdefault(str(data.get("tier") or "direct"), TokenTally()),
        ):
            tally.add(data)
        if data.get("event_type") != "api_call_complete" and data.get("tokens_estimated"):
            self.unanswered["count"] += 1
            self.unanswered["prompt_tokens"] += int(data.get("prompt_tokens") or 0)
            self.unanswered["cost_usd"] += float(data.get("estimated_cost_usd") or 0.0)

    @property
    def completed(self) -> int:
        return self.succeeded + self.failed + self.skipped + self.deferred + self.duplicates

    def elapsed(self) -> float:
        return max(self._clock() - self.started, 0.0)

    def items_per_second(self) -> float:
        elapsed = self.elapsed()
        return round((self.succeeded + self.failed) / elapsed, 4) if elapsed > 0 else 0.0

    def progress(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "total": self.items_total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "items_per_second": self.items_per_second(),
        }

    def summary(self) -> dict[str, Any]:
        with self._lock:
            attempted = self.succeeded + self.failed
            api_calls = {}
            # a provider whose tokens came only from a collected batch has no call of its own in this run
            for name in sorted(set(self.api) | set(self.usage)):
                data = self.api.get(name) or {"count": 0, "errors": 0, "retries": 0, "durations": []}
                durations = data["durations"]
                entry = {
                    "count": data["count"],
                    "errors": data["errors"],
                    "retries": data["retries"],
                    "total_duration": round(sum(durations), 4),
                    "p50": _round(percentile(durations, 50)),
                    "p95": _round(percentile(durations, 95)),
                }
                if name in self.usage:
                    entry["tokens"] = self.usage[name].tokens()
                    entry["estimated_cost_usd"] = self.usage[name].cost()
                api_calls[name] = entry
            tokens = self._total().tokens()
            return {
                "items_total": self.items_total,
                "items_processed": self.succeeded,
                "items_failed": self.failed,
                "items_skipped": self.skipped,
                "items_cancelled": self.cancelled,
                "duplicates_skipped": self.duplicates,
                "items_deferred": self.deferred,
                "success_rate": round(self.succeeded / attempted, 4) if attempted else 1.0,
                "failure_rate": round(self.failed / attempted, 4) if attempted else 0.0,
                "duration_seconds": round(self.elapsed(), 4),
                "items_per_second": self.items_per_second(),
                "item_duration": {
                    "p50": _round(percentile(self.item_durations, 50)),
                    "p95": _round(percentile(self.item_durations, 95)),
                    "max": _round(max(self.item_durations) if self.item_durations else None),
                },
                "api_calls": api_calls,
                "tokens": tokens,
                "estimated_cost_usd": self._total().cost(),
                "cost_by_tier": {tier: self.tiers[tier].cost() for tier in sorted(self.tiers)},
                "cache_hit_share": round(tokens["cached"] / tokens["prompt"], 4) if tokens["prompt"] else None,
                "unanswered_calls": {
                    "count": self.unanswered["count"],
                    "prompt_tokens": self.unanswered["prompt_tokens"],
                    "estimated_cost_usd": round(self.unanswered["cost_usd"], 6),
                },
                **({"batches": dict(self.batches)} if any(self.batches.values()) else {}),
                "top_errors": sorted(self.error_reasons.items(), key=lambda kv: -kv[1])[:5],
                "captured": {kind: dict(counts) for kind, counts in sorted(self.captured.items())},
                **{f"feeds_{status}": self.feeds.get(status, 0) for status in FEED_STATUSES},
                "sources_total": self.sources_total,
                "sources_failed": self.sources_failed,
            }

    def _total(self) -> TokenTally:
        total = TokenTally()
        for tally in self.usage.values():
            total.merge(tally)
        return total

    def estimated_cost(self) -> float | None:
        with self._lock:
            return self._total().cost()


class TokenTally:
    """Tokens and estimated cost summed over calls; the cost is unknown once one call was unpriced."""

    KEYS = ("prompt", "completion", "cached", "total", "estimated")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(self.KEYS, 0)
        self.cost_usd = 0.0
        self.cost_known = True

    def add(self, data: dict[str, Any]) -> None:
        prompt = int(data.get("prompt_tokens") or 0)
        self.counts["prompt"] += prompt
        self.counts["completion"] += int(data.get("completion_tokens") or 0)
        self.counts["cached"] += int(data.get("cached_tokens") or 0)
        self.counts["total"] += int(data.get("total_tokens") or 0)
        if data.get("tokens_estimated"):
            self.counts["estimated"] += prompt
        if "estimated_cost_usd" in data:
            cost = data["estimated_cost_usd"]
            if cost is None:
                self.cost_known = False
            else:
                self.cost_usd += float(cost)

    def merge(self, other: TokenTally) -> None:
        for key in self.KEYS:
            self.counts[key] += other.counts[key]
        self.cost_usd += other.cost_usd
        self.cost_known = self.cost_known and other.cost_known

    def tokens(self) -> dict[str, int]:
        return dict(self.counts)

    def cost(self) -> float | None:
        return round(self.cost_usd, 6) if self.cost_known else None


CAPTURE_COUNTS = ("found", "added", "duplicates", "rejected")


def add_capture_counts(totals: dict[str, dict[str, int]], data: dict[str, Any]) -> None:
    """Add one ``capture_complete`` event to per-kind totals (feed, website, pdf, drive, manual...)."""
    counts = totals.setdefault(str(data.get("kind") or "other"), {key: 0 for key in (*CAPTURE_COUNTS, "errors")})
    for key in CAPTURE_COUNTS:
        try:
            counts[key] += int(data.get(key) or 0)
        except (TypeError, ValueError):
            pass
    errors = data.get("errors")
    counts["errors"] += len(errors) if isinstance(errors, list) else 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
