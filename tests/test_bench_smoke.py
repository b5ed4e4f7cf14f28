"""The benchmark keeps working: a tiny run of both modes exits 0 and prints its JSON.

Its numbers are not asserted (two shared cores make them noisy); only that
every item was enriched and that the keys docs/performance.md relies on exist.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, clean_env

KEYS = {
    "items", "workers", "profile", "sequential", "parallel", "speedup", "notion_requests_per_item",
    "openai_calls_per_item", "bound_items_per_second", "efficiency", "max_requests_per_second", "http_429",
    "failed_items", "peak_rss_mb", "cpu_ms_per_item",
}


def test_a_short_benchmark_runs_both_modes_and_prints_the_json_keys() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_parallel.py"), "--json", "--items", "6", "--workers", "3",
         "--openai-latency", "0.01", "--notion-latency", "0.002", "--web-latency", "0.002", "--notion-rps", "0",
         "--timeout", "60"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    result = json.loads(done.stdout)
    assert KEYS <= set(result)
    for mode in ("sequential", "parallel"):
        assert result[mode]["items_per_second"] is not None
        assert result[mode]["enriched_items"] == 6
    assert set(result["max_requests_per_second"]) == {"notion", "openai", "web"}


def test_the_analyses_benchmark_prints_its_ratios() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_analyses.py"), "--json", "--sizes", "12000"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(done.stdout)["rows"]
    assert row["original"]["calls"] == 1 and row["per_call"]["calls"] > 10
    assert row["prompt_ratio_original"] <= 1.2 < row["prompt_ratio_per_call"]


CAPTURE_KEYS = {
    "feeds", "hosts", "latency", "concurrency", "sequential", "concurrent", "second_run", "speedup",
    "not_modified_share", "bytes_ratio", "second_run_store_requests", "max_in_flight_per_host", "peak_rss_mb",
    "targets",
}


def test_a_short_capture_benchmark_prints_its_json() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_capture.py"), "--json", "--feeds", "24", "--entries", "3",
         "--latency", "0.01", "--spacing", "0", "--timeout", "60"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    result = json.loads(done.stdout)
    assert CAPTURE_KEYS <= set(result)
    assert result["sequential"]["items_added"] == result["concurrent"]["items_added"] == 24 * 3
    assert result["sequential"]["max_in_flight"] == 1 and result["max_in_flight_per_host"] <= 2
    assert result["not_modified_share"] == 1.0 and result["second_run_store_requests"] == 0
    assert result["second_run"]["body_bytes"] == 0
