"""The Prometheus textfile written after each run (``METRICS_TEXTFILE``).

Meant for node_exporter's textfile collector (the file name must end in
``.prom``). One file serves every script: each sample carries a ``script``
label, and writing a run keeps the other scripts' samples, so
``enrich.py`` and ``enrich_rss.py`` never overwrite each other.

Two kinds of metric:

- ``*_total`` counters add up over all runs of a script (the previous value
  is read back from the file), so ``increase()`` and ``rate()`` work. If the
  file is deleted they start again from zero, which Prometheus treats as a
  counter reset.
- gauges describe the last run of a script and are replaced by each run,
  except ``knowledge_pipeline_last_success_timestamp_seconds``, which a
  failed run leaves as it was. The run's percentiles are gauges of their own
  (``*_p50_seconds``, ``*_p95_seconds``): a ``quantile`` label is reserved
  for summaries, and ``promtool check metrics`` rejects it anywhere else.

The file is written to a temporary file and renamed over the old one
(``prometheus_client.write_to_textfile``), so the collector never reads half a
file; a lock file (``<name>.lock``) keeps two scripts finishing together from
losing each other's update.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from .telemetry import FEED_STATUSES

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

PREFIX = "knowledge_pipeline_"
COUNTER, GAUGE = "counter", "gauge"
OUTCOMES = ("enriched", "failed", "skipped", "cancelled", "duplicate")
TOKEN_KINDS = ("prompt", "completion", "cached")
PERCENTILES = ("p50", "p95")

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...]

    @property
    def sample_name(self) -> str:
        return self.name + "_total" if self.kind == COUNTER else self.name


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(PREFIX + "runs", COUNTER, "Runs finished, by result (success or failure).", ("script", "result")),
    MetricSpec(PREFIX + "items", COUNTER, "Items processed over all runs, by outcome.", ("script", "outcome")),
    MetricSpec(PREFIX + "api_calls", COUNTER, "API call attempts over all runs, retries included.", ("script", "service")),
    MetricSpec(PREFIX + "api_errors", COUNTER, "Failed API call attempts over all runs.", ("script", "service")),
    MetricSpec(PREFIX + "api_retries", COUNTER, "API call attempts that were retried, over all runs.", ("script", "service")),
    MetricSpec(PREFIX + "tokens", COUNTER,
               "LLM tokens over all runs, by provider (openai, anthropic; Batch API results included) and kind "
               "(cached is part of prompt).", ("script", "provider", "kind")),
    MetricSpec(PREFIX + "cost_usd", COUNTER,
               "Estimated LLM cost in US dollars over all runs, every provider, by price tier (direct calls, "
               "Batch API results at batch prices); known prices only.", ("script", "tier")),
    MetricSpec(PREFIX + "last_run_items", GAUGE, "Items of the last run, by outcome.", ("script", "outcome")),
    MetricSpec(PREFIX + "run_duration_seconds", GAUGE, "Wall time of the last run.", ("script",)),
    MetricSpec(PREFIX + "run_items_per_second", GAUGE, "Items enriched or failed per second in the last run.", ("script",)),
    MetricSpec(PREFIX + "run_failure_ratio", GAUGE, "Failed / attempted items in the last run (0-1).", ("script",)),
    *(
        MetricSpec(PREFIX + f"item_duration_{p}_seconds", GAUGE, f"Item processing time, {p} of the last run.", ("script",))
        for p in PERCENTILES
    ),
    *(
        MetricSpec(PREFIX + f"api_call_duration_{p}_seconds", GAUGE, f"API call time, {p} of the last run.",
                   ("script", "service"))
        for p in PERCENTILES
    ),
    MetricSpec(PREFIX + "run_info", GAUGE, "Always 1; the mode (sequential or parallel) of the last run.", ("script", "mode")),
    MetricSpec(PREFIX + "run_success", GAUGE, "1 if the last run succeeded (exit code 0), else 0.", ("script",)),
    MetricSpec(PREFIX + "last_run_timestamp_seconds", GAUGE, "Unix time the last run finished.", ("script",)),
    MetricSpec(PREFIX + "last_success_timestamp_seconds", GAUGE, "Unix time the last successful run finished.", ("script",)),
    # feeds: per-run counts only, never one series per feed (cardinality)
    MetricSpec(PREFIX + "last_run_feeds", GAUGE, "Feeds of the last run, by status.", ("script", "status")),
    MetricSpec(PREFIX + "last_run_sources", GAUGE, "Configured sources (feeds, PDF folder) the last run tried.", ("script",)),
    MetricSpec(
        PREFIX + "last_run_sources_failed", GAUGE, "Configured sources the last run could not read.", ("script",)
    ),
)
_BY_NAME = {spec.name: spec for spec in METRICS}
_LAST_SUCCESS = PREFIX + "last_success_timestamp_seconds"

Samples = dict[str, dict[Labels, float]]


def write_textfile(
    path: Path, *, metrics: dict[str, Any], script: str, mode: str, success: bool, finished_at: float
) -> None:
    """Write this run's metrics into ``path``, keeping other scripts' samples.

    ``metrics`` is the ``pipeline_summary`` metrics dict; ``finished_at`` a
    Unix time. Raises only ``OSError`` (the file or its folder is not writable).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        previous = read_samples(target)
        merged = _merge(previous, run_samples(metrics, script=script, mode=mode, success=success,
                                              finished_at=finished_at), script=script, success=success)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(merged))
        write_to_textfile(str(target), registry)


def read_samples(path: Path) -> Samples:
    """Samples of our metrics in an existing textfile; empty if absent or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            spec = _BY_NAME.get(family.name)
            if spec is None or family.type != spec.kind:
                continue
            for sample in family.samples:
                if sample.name == spec.sample_name and set(sample.labels) == set(spec.labels):
                    samples.setdefault(spec.name, {})[_key(sample.labels)] = float(sample.value)
    except (ValueError, TypeError, IndexError):
        return {}
    return samples


def run_samples(metrics: dict[str, Any], *, script: str, mode: str, success: bool, finished_at: float) -> Samples:
    """This run's samples: increments for the counters, values for the gauges."""
    samples: Samples = {}

    def put(name: str, value: float | None, **labels: str) -> None:
        if value is not None:
            samples.setdefault(name, {})[_key({"script": script, **labels})] = float(value)

    counts = {
        "enriched": metrics.get("items_processed"),
        "failed": metrics.get("items_failed"),
        "skipped": metrics.get("items_skipped"),
        "cancelled": metrics.get("items_cancelled"),
        "duplicate": metrics.get("duplicates_skipped"),
    }
    put(PREFIX + "runs", 1, result="success" if success else "failure")
    for outcome in OUTCOMES:
        put(PREFIX + "items", _number(counts[outcome]) or 0, outcome=outcome)
        put(PREFIX + "last_run_items", _number(counts[outcome]) or 0, outcome=outcome)
    for service, data in sorted((metrics.get("api_calls") or {}).items()):
        put(PREFIX + "api_calls", _number(data.get("count")) or 0, service=service)
        put(PREFIX + "api_errors", _number(data.get("errors")) or 0, service=service)
        put(PREFIX + "api_retries", _number(data.get("retries")) or 0, service=service)
        for p in PERCENTILES:
            put(PREFIX + f"api_call_duration_{p}_seconds", _number(data.get(p)), service=service)
    for provider, data in sorted((metrics.get("api_calls") or {}).items()):
        tokens = data.get("tokens")
        for kind in TOKEN_KINDS if isinstance(tokens, dict) else ():
            put(PREFIX + "tokens", _number(tokens.get(kind)) or 0, provider=provider, kind=kind)
    for tier, cost in sorted((metrics.get("cost_by_tier") or {}).items()):
        put(PREFIX + "cost_usd", _number(cost) or 0.0, tier=tier)
    put(PREFIX + "run_duration_seconds", _number(metrics.get("duration_seconds")))
    put(PREFIX + "run_items_per_second", _number(metrics.get("items_per_second")))
    put(PREFIX + "run_failure_ratio", _number(metrics.get("failure_rate")))
    item_duration = metrics.get("item_duration") or {}
    for p in PERCENTILES:
        put(PREFIX + f"item_duration_{p}_seconds", _number(item_duration.get(p)))
    for status in FEED_STATUSES:
        put(PREFIX + "last_run_feeds", _number(metrics.get(f"feeds_{status}")) or 0, status=status)
    put(PREFIX + "last_run_sources", _number(metrics.get("sources_total")) or 0)
    put(PREFIX + "last_run_sources_failed", _number(metrics.get("sources_failed")) or 0)
    put(PREFIX + "run_info", 1, mode=mode)
    put(PREFIX + "run_success", 1 if success else 0)
    put(PREFIX + "last_run_timestamp_seconds", finished_at)
    if success:
        put(_LAST_SUCCESS, finished_at)
    return samples


def _merge(previous: Samples, current: Samples, *, script: str, success: bool) -> Samples:
    merged: Samples = {}
    for spec in METRICS:
        before = previous.get(spec.name, {})
        series = {key: value for key, value in before.items() if dict(key).get("script") != script}
        mine = {key: value for key, value in before.items() if dict(key).get("script") == script}
        now = current.get(spec.name, {})
        if spec.kind == COUNTER:
            for key, increment in now.items():
                mine[key] = mine.get(key, 0.0) + increment
        elif spec.name != _LAST_SUCCESS or success:
            mine = dict(now)
        series.update(mine)
        if series:
            merged[spec.name] = series
    return merged


class _Collector:
    def __init__(self, samples: Samples) -> None:
        self._samples = samples

    def collect(self) -> Iterator[Metric]:
        for spec in METRICS:
            series = self._samples.get(spec.name)
            if not series:
                continue
            family = Metric(spec.name, spec.help, spec.kind)
            for key, value in sorted(series.items()):
                family.add_sample(spec.sample_name, dict(key), value)
            yield family


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _key(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
