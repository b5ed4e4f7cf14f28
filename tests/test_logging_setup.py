"""The JSONL log: format, redaction, rotation, and failures of the log itself."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.logging_setup import Redactor, setup_logging
from knowledge_pipeline.telemetry import Telemetry

from .conftest import clean_env, jq_values, run_script


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


def lines(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (log_dir / "pipeline.jsonl").read_text().splitlines()]


def test_secrets_are_redacted_everywhere_including_exceptions(tmp_path: Path):
    settings = load_settings(
        {"LOG_DIR": str(tmp_path), "OPENAI_API_KEY": "sk-test-SECRET123", "NOTION_TOKEN": "secret_TEST456",
         "ENRICHER": "local", "SOURCES_BACKEND": "sqlite"},
        env_file=None,
    )
    console = io.StringIO()
    setup_logging(settings, console="human", stream=console)
    telemetry = Telemetry("test")
    telemetry.event("api_call_error", "call failed with key sk-test-SECRET123", level=logging.ERROR,
                    error="401 for token secret_TEST456", headers={"Authorization": "Bearer abcdef123456789"})
    try:
        raise RuntimeError("boom secret_TEST456")
    except RuntimeError:
        logging.getLogger("test").exception("failed with %s", "sk-test-SECRET123")
    written = (tmp_path / "pipeline.jsonl").read_text() + console.getvalue()
    assert "SECRET123" not in written and "TEST456" not in written and "abcdef123456789" not in written
    assert written.count("[REDACTED]") >= 5
    record = lines(tmp_path)[-1]
    assert list(record) == ["timestamp", "level", "logger", "message", "extra_fields"]
    assert "RuntimeError" in record["extra_fields"]["traceback"]


def test_redactor_catches_credential_shapes_it_was_not_told_about():
    redact = Redactor()
    assert "sk-proj-abcdefgh1234" not in redact("key sk-proj-abcdefgh1234 leaked")
    assert "ntn_abcdefgh12345" not in redact("token ntn_abcdefgh12345")


def test_redactor_removes_url_user_info_from_messages_and_fields():
    redact = Redactor()
    assert redact("GET https://alice:pw@example.com/x failed") == "GET https://example.com/x failed"
    scrubbed = redact.scrub({"url": "http://bob:s3cret@h:81/a", "nested": ["ftp://u@h/b"]})
    assert scrubbed == {"url": "http://h:81/a", "nested": ["ftp://h/b"]}


def test_rotation_never_loses_or_splits_a_line(tmp_path: Path):
    settings = load_settings({"LOG_DIR": str(tmp_path), "LOG_MAX_BYTES": "4096", "LOG_BACKUP_COUNT": "50"},
                             env_file=None)
    setup_logging(settings, console="none")
    telemetry = Telemetry("rot")
    for n in range(400):
        telemetry.event("progress_update", f"line {n} " + "x" * (n % 97), completed=n)
    files = sorted(tmp_path.glob("pipeline.jsonl*"))
    assert len(files) > 5
    seen = []
    for path in files:
        assert path.stat().st_size <= 4096 + 400
        for line in path.read_text().splitlines():
            seen.append(json.loads(line)["extra_fields"]["completed"])
    assert sorted(seen) == list(range(400))
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in files)


def test_unwritable_log_dir_is_one_clear_configuration_error(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = clean_env(LOG_DIR=str(blocker / "logs"), SOURCES_DB_PATH=str(tmp_path / "s.db"),
                    JOURNAL_PATH=str(tmp_path / "j.db"))
    done = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "LOG_DIR" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_a_full_disk_gives_one_error_not_a_stack_trace_per_record(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "pipeline.jsonl").symlink_to("/dev/full")
    feed = tmp_path / "f.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>')
    env = clean_env(LOG_DIR=str(logs), SOURCES_DB_PATH=str(tmp_path / "s.db"), JOURNAL_PATH=str(tmp_path / "j.db"),
                    RSS_FEEDS=str(feed))
    done = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cannot write log file") == 1
    assert "Traceback" not in done.stderr


GUIDE_JQ = """jq 'select(.extra_fields.event_type=="pipeline_summary")' logs/pipeline.jsonl"""


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (CI installs it in .ci/run)")
def test_a_record_torn_by_a_full_disk_does_not_swallow_the_next_run(tmp_path: Path):
    """The guide's jq query reads on past a line cut mid-record, and the cut piece is kept, quoted."""
    logs = tmp_path / "logs"
    logs.mkdir()
    whole = json.dumps({"timestamp": "2025-01-01T00:00:00.000Z", "level": "INFO", "logger": "x", "message": "old",
                        "extra_fields": {"event_type": "pipeline_summary", "run_id": "old"}})
    torn = whole[: len(whole) // 2]
    (logs / "pipeline.jsonl").write_text(whole + "\n" + torn)
    settings = load_settings({"LOG_DIR": str(logs)}, env_file=None)
    setup_logging(settings, console="none")
    Telemetry("test").event("pipeline_summary", "new run", run_id="new")
    done = subprocess.run(["bash", "-c", GUIDE_JQ], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert [r["extra_fields"]["run_id"] for r in jq_values(done.stdout)] == ["old", "new"]
    [repaired] = [r for r in lines(logs) if r["extra_fields"]["event_type"] == "log_repaired"]
    assert repaired["extra_fields"]["fragment"] == torn


def test_a_log_ending_in_a_whole_line_is_left_as_it_is(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "pipeline.jsonl").write_text('{"a": 1}\n')
    setup_logging(load_settings({"LOG_DIR": str(logs)}, env_file=None), console="none")
    Telemetry("test").event("run_start", "next")
    text = (logs / "pipeline.jsonl").read_text()
    assert text.startswith('{"a": 1}\n{') and "log_repaired" not in text
# --- the console: progress on stdout, failures on stderr, dated in files ------------------------------

DATED = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} "


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("console", ["human", "plain"])
def test_warnings_and_errors_go_to_stderr_and_file_lines_are_dated(tmp_path: Path, console: str):
    import re

    settings = load_settings({"LOG_DIR": str(tmp_path)}, env_file=None)
    out, err = io.StringIO(), io.StringIO()
    setup_logging(settings, console=console, jsonl=False, stream=out, error_stream=err)
    telemetry = Telemetry("test")
    telemetry.event("item_complete", "Enriched: one")
    telemetry.event("item_warning", "Partly read: two", level=logging.WARNING)
    telemetry.event("item_error", "Failed: three", level=logging.ERROR)
    assert [re.sub(DATED, "", line) for line in out.getvalue().splitlines()] == [
        "Enriched: one" if console == "plain" else "INFO    Enriched: one"]
    assert [re.sub(DATED, "", line) for line in err.getvalue().splitlines()] == (
        ["WARNING: Partly read: two", "ERROR: Failed: three"] if console == "plain"
        else ["WARNING Partly read: two", "ERROR   Failed: three"])
    assert all(re.match(DATED, line) for line in (out.getvalue() + err.getvalue()).splitlines())


def test_a_terminal_gets_the_short_time_only(tmp_path: Path):
    import re

    settings = load_settings({"LOG_DIR": str(tmp_path)}, env_file=None)
    out = Terminal()
    setup_logging(settings, console="human", jsonl=False, stream=out, error_stream=io.StringIO())
    Telemetry("test").event("item_complete", "Enriched: one")
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2} INFO    Enriched: one\n", out.getvalue())


def test_a_failed_item_reaches_stderr_and_the_results_stdout(tmp_path: Path):
    import re

    from tests.fakes.web_server import FakeWebServer

    feed = tmp_path / "feed.xml"
    with FakeWebServer() as web:
        feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://e.x/</link>'
                        f"<description>d</description><item><title>Gone</title><link>{web.url}/gone</link></item>"
                        "</channel></rss>")
        env = clean_env(RSS_FEEDS=str(feed), RSS_WINDOW_DAYS="0", ALLOW_PRIVATE_URLS="true", RETRY_ATTEMPTS="0",
                        LOG_DIR=str(tmp_path / "logs"), SOURCES_DB_PATH=str(tmp_path / "s.db"),
                        JOURNAL_PATH=str(tmp_path / "j.db"))
        done = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
    assert done.returncode == 1  # one of one failed: above ALERT_FAILURE_RATE
    assert "Failed: Gone: HTTP 404" in done.stderr and "Failed:" not in done.stdout
    assert "enrich_rss_enhanced.py: captured 1 new, enriched 0, skipped 0, failed 1" in done.stdout
    assert all(re.match(DATED, line) for line in done.stdout.splitlines() + done.stderr.splitlines())
