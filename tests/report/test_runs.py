from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_pipeline.report import build_runs, read_events, render_json, render_text, select_runs, top_errors
from knowledge_pipeline.report.runs import FAILED as RUN_FAILED, INCOMPLETE, OK
from tests.report.logs import (
    CACHED_TOKENS,
    COMPLETION_TOKENS,
    COST_PER_CALL,
    ENRICHED,
    FAILED,
    PROMPT_TOKENS,
    SKIPPED,
    SimulatedRun,
    utc,
    write_log,
)


def _runs(log_dir: Path):
    events, count = read_events(log_dir)
    return build_runs(events), count


def test_each_run_shows_what_it_did(log_dir: Path, runs: list[SimulatedRun]) -> None:
    reports, _ = _runs(log_dir)
    assert [r.run_id for r in reports] == ["run-a", "run-b", "run-c"]
    for report, run in zip(reports, runs):
        assert report.script == run.script
        assert report.mode == run.mode
        assert report.workers == run.workers
        assert report.items_total == len(run.outcomes)
        assert (report.enriched, report.failed, report.skipped) == (
            run.count(ENRICHED), run.count(FAILED), run.count(SKIPPED)
        )
        attempted = run.count(ENRICHED) + run.count(FAILED)
        assert report.success_rate == pytest.approx(run.count(ENRICHED) / attempted, abs=1e-4)
        assert report.item_p95 == pytest.approx(run.item_seconds)
        assert report.tokens["prompt"] == PROMPT_TOKENS * run.count(ENRICHED)
        assert report.tokens["total"] == (PROMPT_TOKENS + COMPLETION_TOKENS) * run.count(ENRICHED)
        assert report.cost_usd == pytest.approx(COST_PER_CALL * run.count(ENRICHED))
        assert report.api_calls["openai"]["count"] == run.count(ENRICHED)
        assert report.api_calls["web"]["errors"] == run.count(FAILED)
        assert len(report.api_durations["web"]) == attempted

    a, b, c = reports
    assert (a.status, b.status, c.status) == (OK, RUN_FAILED, INCOMPLETE)
    assert b.exit_code == 1 and c.exit_code is None
    # run a: 5 attempted items of 2 s each plus one skipped item of 0.1 s
    assert a.duration_seconds == pytest.approx(10.1)
    assert a.items_per_second == pytest.approx(5 / 10.1, abs=1e-3)
    # the killed run is measured from its own events
    assert c.duration_seconds == pytest.approx(6.0)
    assert c.items_per_second == pytest.approx(0.5)


def test_top_errors_count_item_errors_of_the_shown_runs(log_dir: Path) -> None:
    reports, _ = _runs(log_dir)
    assert top_errors(reports) == [("HTTP 404 Not Found", 3), ("Timeout fetching article", 2)]
    assert top_errors(reports[2:]) == [("Timeout fetching article", 1)]


def test_last_and_since_choose_runs(log_dir: Path) -> None:
    reports, _ = _runs(log_dir)
    assert [r.run_id for r in select_runs(reports, last=2)] == ["run-b", "run-c"]
    assert [r.run_id for r in select_runs(reports, since=utc(2024, 1, 15))] == ["run-b", "run-c"]
    assert [r.run_id for r in select_runs(reports, since=utc(2024, 1, 15, 10), last=20)] == ["run-c"]


def test_text_table_lists_runs_status_and_errors(log_dir: Path) -> None:
    reports, count = _runs(log_dir)
    text = render_text(reports, skipped_lines=count.skipped)
    lines = text.splitlines()
    run_a = next(line for line in lines if line.startswith("2024-01-14 10:00"))
    assert "enrich_rss_enhanced.py" in run_a and "sequential" in run_a
    assert run_a.split()[5:10] == ["6", "4", "1", "1", "80.0%"]
    assert run_a.endswith("ok")
    assert any(line.startswith("2024-01-15 09:00") and line.endswith("failed (exit 1)") for line in lines)
    assert any(line.startswith("2024-01-15 12:00") and line.endswith("incomplete") for line in lines)
    assert any("openai 4 calls, 0 errors" in line for line in lines)
    assert "      3  HTTP 404 Not Found" in text
    assert "6 log line(s) skipped" in text


def test_json_output_is_machine_readable(log_dir: Path) -> None:
    reports, count = _runs(log_dir)
    data = json.loads(render_json(reports, skipped_lines=count.skipped))
    assert set(data) == {"runs", "feeds", "top_errors", "skipped_lines"}
    assert data["skipped_lines"] == 6
    assert data["top_errors"][0] == ["HTTP 404 Not Found", 3]
    b = data["runs"][1]
    assert (b["items_enriched"], b["items_failed"], b["status"], b["exit_code"]) == (6, 3, "failed", 1)
    assert b["api_calls"]["openai"]["count"] == 6
    assert b["started_at"] == "2024-01-15T09:00:00+00:00"


def test_runs_without_run_id_follow_log_order(tmp_path: Path) -> None:
    first = SimulatedRun(None, "enrich.py", "sequential", utc(2024, 2, 1, 8), [ENRICHED, FAILED])
    # killed after its item: no pipeline_summary, and the next run_start opens a new run
    killed = SimulatedRun(None, "enrich.py", "sequential", utc(2024, 2, 1, 9), [ENRICHED])
    last = SimulatedRun(None, "enrich_rss.py", "sequential", utc(2024, 2, 1, 10), [SKIPPED, ENRICHED])
    write_log(tmp_path, first.lines + killed.lines[:-1] + last.lines, parts=2)
    reports, _ = _runs(tmp_path)
    assert [(r.script, r.status, r.enriched, r.failed, r.skipped) for r in reports] == [
        ("enrich.py", OK, 1, 1, 0),
        ("enrich.py", INCOMPLETE, 1, 0, 0),
        ("enrich_rss.py", OK, 1, 0, 1),
    ]


def test_interleaved_runs_are_told_apart_by_run_id(tmp_path: Path) -> None:
    one = SimulatedRun("r1", "enrich.py", "sequential", utc(2024, 3, 1, 8), [ENRICHED] * 3)
    two = SimulatedRun("r2", "enrich_rss.py", "parallel", utc(2024, 3, 1, 8, 0, 1), [FAILED] * 2, workers=2)
    mixed = [line for pair in zip(one.lines, two.lines) for line in pair]
    mixed += one.lines[len(two.lines):]
    write_log(tmp_path, mixed)
    reports, _ = _runs(tmp_path)
    assert [(r.run_id, r.enriched, r.failed) for r in reports] == [("r1", 3, 0), ("r2", 0, 2)]


@pytest.mark.parametrize("complete", [True, False])
def test_direct_and_batch_spend_and_the_cache_share_are_shown_apart(tmp_path: Path, complete: bool) -> None:
    run = SimulatedRun("run-batch", "enrich_rss_enhanced.py", "parallel", utc(2024, 2, 1, 8), [ENRICHED, ENRICHED],
                       batch_cost=0.0021, complete=complete)
    write_log(tmp_path, run.lines)
    (report,), _ = _runs(tmp_path)
    assert report.cost_by_tier == {"direct": pytest.approx(2 * COST_PER_CALL), "batch": pytest.approx(0.0021)}
    assert report.cost_usd == pytest.approx(2 * COST_PER_CALL + 0.0021)
    assert report.cache_hit_share == pytest.approx(2 * CACHED_TOKENS / (5 * PROMPT_TOKENS), abs=1e-4)
    text = render_text([report])
    header, row = text.splitlines()[:2]
    assert "Cache" in header and "Batch" in header
    assert "4.0%" in row and "$0.0031" in row and "$0.0021" in row
    data = json.loads(render_json([report]))["runs"][0]
    assert data["cost_by_tier"]["batch"] == pytest.approx(0.0021) and data["cache_hit_share"] == pytest.approx(0.04)
