from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from knowledge_pipeline.metrics_export import write_textfile
from knowledge_pipeline.telemetry import RunMetrics


def _metrics(enriched: int, failed: int, *, cost: float | None = 0.002) -> dict:
    """pipeline_summary metrics of a run, from the real aggregator."""
    now = [1000.0]
    metrics = RunMetrics(clock=lambda: now[0])
    metrics.items_total = enriched + failed + 1
    metrics("item_skipped", {"reason": "archived"})
    for _ in range(enriched):
        metrics("item_complete", {"duration": 2.0})
        metrics("api_call_complete", {
            "service": "openai", "duration": 1.0, "prompt_tokens": 100, "completion_tokens": 20,
            "total_tokens": 120, "cached_tokens": 10, "estimated_cost_usd": cost,
        })
    for _ in range(failed):
        metrics("api_call_retry", {"service": "web", "duration": 0.5})
        metrics("api_call_error", {"service": "web", "duration": 0.5})
        metrics("item_error", {"duration": 4.0, "error": "timeout"})
    now[0] += 10.0
    return metrics.summary()


def _read(path: Path) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, parsed the way Prometheus would."""
    values = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def _value(values: dict, name: str, **labels: str) -> float:
    return values[(name, tuple(sorted(labels.items())))]


def test_textfile_holds_the_run(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "pipeline.prom"
    write_textfile(path, metrics=_metrics(3, 1), script="enrich.py", mode="parallel", success=True, finished_at=1700000000.5)
    values = _read(path)
    s = {"script": "enrich.py"}
    assert _value(values, "knowledge_pipeline_items_total", outcome="enriched", **s) == 3
    assert _value(values, "knowledge_pipeline_items_total", outcome="failed", **s) == 1
    assert _value(values, "knowledge_pipeline_items_total", outcome="skipped", **s) == 1
    assert _value(values, "knowledge_pipeline_last_run_items", outcome="enriched", **s) == 3
    assert _value(values, "knowledge_pipeline_run_duration_seconds", **s) == pytest.approx(10.0)
    assert _value(values, "knowledge_pipeline_run_items_per_second", **s) == pytest.approx(0.4)
    assert _value(values, "knowledge_pipeline_run_failure_ratio", **s) == pytest.approx(0.25)
    assert _value(values, "knowledge_pipeline_api_calls_total", service="openai", **s) == 3
    assert _value(values, "knowledge_pipeline_api_calls_total", service="web", **s) == 2
    assert _value(values, "knowledge_pipeline_api_errors_total", service="web", **s) == 2
    assert _value(values, "knowledge_pipeline_api_retries_total", service="web", **s) == 1
    assert _value(values, "knowledge_pipeline_api_call_duration_p95_seconds", service="openai", **s) == 1.0
    assert _value(values, "knowledge_pipeline_item_duration_p50_seconds", **s) == 2.0
    assert _value(values, "knowledge_pipeline_tokens_total", provider="openai", kind="prompt", **s) == 300
    assert _value(values, "knowledge_pipeline_tokens_total", provider="openai", kind="completion", **s) == 60
    assert _value(values, "knowledge_pipeline_tokens_total", provider="openai", kind="cached", **s) == 30
    assert _value(values, "knowledge_pipeline_cost_usd_total", tier="direct", **s) == pytest.approx(0.006)
    assert _value(values, "knowledge_pipeline_run_info", mode="parallel", **s) == 1
    assert _value(values, "knowledge_pipeline_run_success", **s) == 1
    assert _value(values, "knowledge_pipeline_runs_total", result="success", **s) == 1
    assert _value(values, "knowledge_pipeline_last_run_timestamp_seconds", **s) == 1700000000.5
    assert _value(values, "knowledge_pipeline_last_success_timestamp_seconds", **s) == 1700000000.5


def test_counters_add_up_and_scripts_do_not_clash(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.prom"
    write_textfile(path, metrics=_metrics(3, 1), script="enrich.py", mode="sequential", success=True, finished_at=100.0)
    write_textfile(path, metrics=_metrics(5, 0), script="enrich_rss.py", mode="parallel", success=True, finished_at=200.0)
    write_textfile(path, metrics=_metrics(2, 0, cost=None), script="enrich.py", mode="parallel", success=True,
                   finished_at=300.0)
    values = _read(path)
    assert _value(values, "knowledge_pipeline_items_total", script="enrich.py", outcome="enriched") == 5
    assert _value(values, "knowledge_pipeline_items_total", script="enrich.py", outcome="failed") == 1
    assert _value(values, "knowledge_pipeline_api_calls_total", script="enrich.py", service="web") == 2
    assert _value(values, "knowledge_pipeline_runs_total", script="enrich.py", result="success") == 2
    # an unknown price adds nothing to the cost
    assert _value(values, "knowledge_pipeline_cost_usd_total", script="enrich.py", tier="direct") == pytest.approx(0.006)
    assert _value(values, "knowledge_pipeline_last_run_items", script="enrich.py", outcome="enriched") == 2
    assert _value(values, "knowledge_pipeline_items_total", script="enrich_rss.py", outcome="enriched") == 5
    assert _value(values, "knowledge_pipeline_last_run_timestamp_seconds", script="enrich_rss.py") == 200.0
    # the mode series of the older run is replaced, not kept next to the new one
    assert ("knowledge_pipeline_run_info", (("mode", "sequential"), ("script", "enrich.py"))) not in values
    assert _value(values, "knowledge_pipeline_run_info", script="enrich.py", mode="parallel") == 1


def test_failed_run_keeps_the_last_success_time(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.prom"
    write_textfile(path, metrics=_metrics(1, 0), script="enrich.py", mode="sequential", success=True, finished_at=100.0)
    write_textfile(path, metrics=_metrics(0, 4), script="enrich.py", mode="sequential", success=False, finished_at=200.0)
    values = _read(path)
    assert _value(values, "knowledge_pipeline_last_success_timestamp_seconds", script="enrich.py") == 100.0
    assert _value(values, "knowledge_pipeline_last_run_timestamp_seconds", script="enrich.py") == 200.0
    assert _value(values, "knowledge_pipeline_run_success", script="enrich.py") == 0
    assert _value(values, "knowledge_pipeline_runs_total", script="enrich.py", result="failure") == 1


def test_a_script_that_never_succeeded_has_no_success_time(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.prom"
    write_textfile(path, metrics=_metrics(0, 2), script="enrich.py", mode="sequential", success=False, finished_at=5.0)
    assert "knowledge_pipeline_last_success_timestamp_seconds" not in path.read_text()


def test_file_is_replaced_by_rename_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.prom"
    write_textfile(path, metrics=_metrics(1, 0), script="enrich.py", mode="sequential", success=True, finished_at=1.0)
    first_inode = path.stat().st_ino
    held_open = path.open()  # a reader (the collector) holding the old file still sees a whole file
    write_textfile(path, metrics=_metrics(2, 0), script="enrich.py", mode="sequential", success=True, finished_at=2.0)
    assert path.stat().st_ino != first_inode
    assert "knowledge_pipeline_last_run_timestamp_seconds{script=\"enrich.py\"} 1.0" in held_open.read()
    held_open.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.prom", "pipeline.prom.lock"]


def test_corrupt_previous_file_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.prom"
    path.write_text("this is {not prometheus\n")
    write_textfile(path, metrics=_metrics(1, 0), script="enrich.py", mode="sequential", success=True, finished_at=1.0)
    assert _value(_read(path), "knowledge_pipeline_items_total", script="enrich.py", outcome="enriched") == 1


def test_unwritable_target_raises_oserror(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        write_textfile(blocker / "pipeline.prom", metrics=_metrics(1, 0), script="enrich.py", mode="sequential",
                       success=True, finished_at=1.0)


# --- the file passes promtool's checks ------------------------------------------------------------

def lint_problems(text: str) -> list[str]:
    """The rules ``promtool check metrics`` applies (client_golang's promlint) that our file could break."""
    problems = []
    for family in text_string_to_metric_families(text):
        name, kind = family.name, family.type
        if not family.documentation:
            problems.append(f"{name}: no help text")
        if kind == "counter" and not any(s.name.endswith("_total") for s in family.samples):
            problems.append(f"{name}: counter metrics should have _total suffix")
        if kind != "counter" and name.endswith("_total"):
            problems.append(f"{name}: non-counter metrics should not have _total suffix")
        if name != name.lower():
            problems.append(f"{name}: metric names should be written in snake_case")
        for sample in family.samples:
            if kind not in ("summary",) and "quantile" in sample.labels:
                problems.append(f"{name}: non-summary metrics should not have quantile label")
            if kind not in ("histogram", "gaugehistogram") and "le" in sample.labels:
                problems.append(f"{name}: non-histogram metrics should not have le label")
            for suffix in ("_count", "_sum", "_bucket"):
                if kind not in ("histogram", "summary") and sample.name.endswith(suffix):
                    problems.append(f"{name}: non-histogram and non-summary metrics should not have {suffix} suffix")
    return sorted(set(problems))


def _written(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.prom"
    write_textfile(path, metrics=_metrics(3, 1), script="enrich.py", mode="parallel", success=True, finished_at=100.0)
    write_textfile(path, metrics=_metrics(2, 0), script="enrich_rss.py", mode="sequential", success=False,
                   finished_at=200.0)
    return path


def test_percentiles_are_gauges_of_their_own(tmp_path: Path) -> None:
    values = _read(_written(tmp_path))
    s = {"script": "enrich.py"}
    assert _value(values, "knowledge_pipeline_item_duration_p50_seconds", **s) == 2.0
    assert _value(values, "knowledge_pipeline_item_duration_p95_seconds", **s) == pytest.approx(3.7)
    assert _value(values, "knowledge_pipeline_api_call_duration_p95_seconds", service="openai", **s) == 1.0
    assert _value(values, "knowledge_pipeline_api_call_duration_p50_seconds", service="web", **s) == 0.5


def test_the_textfile_passes_the_lint_rules_of_promtool(tmp_path: Path) -> None:
    assert lint_problems(_written(tmp_path).read_text()) == []


def test_the_lint_rules_catch_a_quantile_label_on_a_gauge() -> None:
    text = "# HELP x_seconds t\n# TYPE x_seconds gauge\nx_seconds{quantile=\"0.5\"} 1\n"
    assert lint_problems(text) == ["x_seconds: non-summary metrics should not have quantile label"]


def test_the_textfile_passes_the_real_promtool(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import require_system_dep

    promtool = require_system_dep("promtool", "promtool", ".ci/run extracts it from Debian's prometheus package")
    done = subprocess.run([promtool, "check", "metrics"], input=_written(tmp_path).read_text(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
def test_feed_gauges_count_feeds_by_status_without_a_label_per_feed(tmp_path: Path) -> None:
    metrics = RunMetrics()
    statuses = ["ok"] * 3 + ["not_modified"] * 480 + ["failing"] * 2 + ["paused"]
    for n, status in enumerate(statuses):
        metrics("capture_complete", {"kind": "feed", "source": f"https://feed{n}.example/rss", "status": status,
                                     "source_failed": status not in ("ok", "not_modified")})
    path = tmp_path / "pipeline.prom"
    write_textfile(path, metrics=metrics.summary(), script="enrich_rss_enhanced.py", mode="sequential",
                   success=True, finished_at=1700000000.0)
    values = _read(path)
    s = {"script": "enrich_rss_enhanced.py"}
    assert [_value(values, "knowledge_pipeline_last_run_feeds", status=status, **s)
            for status in ("ok", "not_modified", "failing", "paused", "deferred")] == [3, 480, 2, 1, 0]
    assert _value(values, "knowledge_pipeline_last_run_sources", **s) == 486
    assert _value(values, "knowledge_pipeline_last_run_sources_failed", **s) == 3
    assert not any("feed" in dict(labels) or "source" in dict(labels) for _, labels in values)
    assert len(path.read_text().splitlines()) < 120, "500 feeds add a handful of series, not 500"


def test_tokens_and_cost_are_told_apart_by_provider_and_price_tier(tmp_path: Path) -> None:
    """Anthropic calls and collected Batch API results are LLM spend too, and said so (issue 18)."""
    metrics = RunMetrics()
    metrics("api_call_complete", {"service": "anthropic", "duration": 1.0, "prompt_tokens": 1000,
                                  "completion_tokens": 200, "cached_tokens": 600, "estimated_cost_usd": 0.003})
    metrics("batch_collected", {"service": "openai", "tier": "batch", "prompt_tokens": 4000, "completion_tokens": 800,
                                "cached_tokens": 0, "estimated_cost_usd": 0.001, "items_enriched": 4})
    path = tmp_path / "pipeline.prom"
    for _ in range(2):
        write_textfile(path, metrics=metrics.summary(), script="enrich.py", mode="sequential", success=True,
                       finished_at=1.0)
    values = _read(path)
    s = {"script": "enrich.py"}
    assert _value(values, "knowledge_pipeline_tokens_total", provider="anthropic", kind="prompt", **s) == 2000
    assert _value(values, "knowledge_pipeline_tokens_total", provider="anthropic", kind="cached", **s) == 1200
    assert _value(values, "knowledge_pipeline_tokens_total", provider="openai", kind="completion", **s) == 1600
    assert _value(values, "knowledge_pipeline_cost_usd_total", tier="direct", **s) == pytest.approx(0.006)
    assert _value(values, "knowledge_pipeline_cost_usd_total", tier="batch", **s) == pytest.approx(0.002)
    text = path.read_text()
    helps = [line for line in text.splitlines() if line.startswith(("# HELP knowledge_pipeline_tokens",
                                                                    "# HELP knowledge_pipeline_cost"))]
    assert len(helps) == 2 and not any("OpenAI tokens" in h or "OpenAI cost" in h for h in helps), helps
    assert lint_problems(text) == []
