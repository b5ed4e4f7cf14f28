import json
from pathlib import Path

from knowledge_pipeline.migration.runlog import last_summary


def _line(metrics: dict, event_type: str = "pipeline_summary") -> str:
    return json.dumps({"timestamp": "t", "level": "INFO", "logger": "l", "message": "m",
                       "extra_fields": {"event_type": event_type, "metrics": metrics}})


def test_the_last_summary_wins_and_garbage_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "pipeline.jsonl"
    log.write_text("\n".join([
        _line({"items_processed": 1}),
        _line({"items_processed": 2}),
        '{"pipeline_summary": broken',
        "\xff not json pipeline_summary",
        _line({"items_processed": 3}, event_type="other_pipeline_summary"),
    ]) + "\n")
    assert last_summary(log).metrics == {"items_processed": 2}


def test_no_log_no_summary(tmp_path: Path) -> None:
    assert last_summary(tmp_path / "missing.jsonl") is None
