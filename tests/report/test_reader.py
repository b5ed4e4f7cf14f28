from __future__ import annotations

from pathlib import Path

from knowledge_pipeline.report import log_files, read_events
from tests.report.conftest import GARBAGE


def test_rotated_files_are_read_oldest_first(tmp_path: Path) -> None:
    for name in ("pipeline.jsonl", "pipeline.jsonl.1", "pipeline.jsonl.10", "pipeline.jsonl.2", "other.jsonl"):
        (tmp_path / name).write_text("")
    assert [p.name for p in log_files(tmp_path)] == [
        "pipeline.jsonl.10",
        "pipeline.jsonl.2",
        "pipeline.jsonl.1",
        "pipeline.jsonl",
    ]


def test_events_come_in_log_order_and_garbage_is_counted(log_dir: Path, runs) -> None:
    events, count = read_events(log_dir)
    events = list(events)
    assert len(count.files) == 3
    assert count.skipped == len(GARBAGE)
    assert len(events) == sum(len(run.lines) for run in runs)
    stamps = [event.timestamp for event in events]
    assert stamps == sorted(stamps)


def test_missing_log_dir_gives_no_events(tmp_path: Path) -> None:
    events, count = read_events(tmp_path / "nope")
    assert list(events) == [] and count.skipped == 0
