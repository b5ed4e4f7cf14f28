from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.report.logs import ENRICHED, FAILED, SKIPPED, SimulatedRun, utc, write_log

GARBAGE = [
    "this is not json",
    '{"foo": 1}',
    "[1, 2, 3]",
    '{"timestamp": "2024-01-15T10:',
    json.dumps({"timestamp": "2024-01-15T10:00:00.000Z", "level": "INFO", "logger": "x", "message": "m",
                "extra_fields": {"event_type": "mystery_event"}}),
    json.dumps({"timestamp": "yesterday", "level": "INFO", "logger": "x", "message": "m",
                "extra_fields": {"event_type": "item_start"}}),
]


def sample_runs() -> list[SimulatedRun]:
    """Three runs: finished ok, finished with exit 1, killed (no pipeline_summary)."""
    return [
        SimulatedRun("run-a", "enrich_rss_enhanced.py", "sequential", utc(2024, 1, 14, 10, 0),
                     [ENRICHED] * 4 + [FAILED, SKIPPED]),
        SimulatedRun("run-b", "enrich_enhanced.py", "parallel", utc(2024, 1, 15, 9, 0),
                     [ENRICHED, FAILED] * 3 + [ENRICHED] * 3, workers=5, exit_code=1, error="HTTP 404 Not Found"),
        SimulatedRun("run-c", "enrich_rss_enhanced.py", "parallel", utc(2024, 1, 15, 12, 0),
                     [ENRICHED, ENRICHED, FAILED], workers=3, complete=False),
    ]


def write_sample_log(directory: Path, runs: list[SimulatedRun]) -> Path:
    """The runs spread over pipeline.jsonl.2, .1 and pipeline.jsonl, garbage lines in between."""
    lines = [line for run in runs for line in run.lines]
    step = len(lines) // len(GARBAGE)
    for offset, garbage in enumerate(GARBAGE):
        lines.insert(offset * step + offset, garbage)
    write_log(directory, lines, parts=3)
    return directory


@pytest.fixture
def runs() -> list[SimulatedRun]:
    return sample_runs()


@pytest.fixture
def log_dir(tmp_path: Path, runs: list[SimulatedRun]) -> Path:
    return write_sample_log(tmp_path / "logs", runs)
