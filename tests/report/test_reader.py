from __future__ import annotations

import ast
from pathlib import Path

from knowledge_pipeline.report import KNOWN_EVENTS, log_files, read_events
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


def _emitted_event_types() -> set[str]:
    """String constants passed as the event type to ``.event(...)`` or ``._warn(...)`` in the package."""
    package = Path(__file__).resolve().parents[2] / "knowledge_pipeline"
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("event", "_warn")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def test_every_event_the_package_emits_is_known_to_the_report() -> None:
    emitted = _emitted_event_types()
    assert {"run_start", "item_complete", "pipeline_summary", "alert"} <= emitted
    assert emitted - KNOWN_EVENTS == set()
