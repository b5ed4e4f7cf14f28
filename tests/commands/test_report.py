from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_pipeline.__main__ import main
from tests.report.conftest import sample_runs, write_sample_log


@pytest.fixture
def in_log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log_dir = write_sample_log(tmp_path / "logs", sample_runs())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOG_DIR", str(log_dir))
    for name in ("SOURCES_BACKEND", "ENRICHER", "NOTION_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return log_dir


def test_report_prints_the_table(in_log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert out.count("enrich_rss_enhanced.py") == 2 and "incomplete" in out
    assert "Top error reasons" in out


def test_report_json_with_runs_and_since(in_log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--json", "--runs", "1", "--since", "2024-01-15"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [run["run_id"] for run in data["runs"]] == ["run-c"]
    assert data["top_errors"] == [["Timeout fetching article", 1]]
    assert data["skipped_lines"] == 6


def test_report_html_writes_the_page(in_log_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.html"
    assert main(["report", "--html", str(target)]) == 0
    assert "chart-latency" in target.read_text(encoding="utf-8")
    assert f"Wrote {target}" in capsys.readouterr().out


def test_bad_since_is_a_usage_error(in_log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--since", "last tuesday"])
    assert exit_info.value.code == 2
    assert "not an ISO date" in capsys.readouterr().err


def test_no_log_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "empty"))
    assert main(["report"]) == 1
    assert "No log found" in capsys.readouterr().err
