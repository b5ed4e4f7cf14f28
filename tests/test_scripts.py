"""The scripts run as processes, as a user or cron runs them (issues: foundation, enhanced logging)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from knowledge_pipeline.models import DEFAULT_AI_PRIMITIVES, DEFAULT_CONTENT_TYPES

from .conftest import EXAMPLE_FEEDS, PYTHON, ROOT, clean_env, events, jq_values, list_items, read_log, run_script
from .fakes.notion_server import start_fake_notion
from .fakes.openai_server import start_fake_openai
from .fakes.web_server import FakeWebServer

ARTICLE = "<html><head><title>{t}</title></head><body><article><h1>{t}</h1>{p}</article></body></html>"
PARAGRAPHS = "".join(
    f"<p>Paragraph {i}: Anthropic and OpenAI shipped new agent tooling this week, and researchers measured "
    f"a 23% gain in coding tasks across {i + 3} benchmarks. Analysts said enterprise automation budgets grow.</p>"
    for i in range(6)
)


def feed_file(path: Path, links: list[tuple[str, str]]) -> Path:
    items = "".join(f"<item><title>{title}</title><link>{link}</link></item>" for title, link in links)
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Test feed</title>'
        f"<link>https://example.com</link><description>t</description>{items}</channel></rss>"
    )
    return path


def test_demo_enriches_every_example_and_a_second_run_adds_nothing(tmp_path: Path, demo_env: dict):
    first = run_script(["pipeline_enhanced.sh"], tmp_path, demo_env)
    assert first.returncode == 0, first.stderr
    items = list_items(tmp_path, demo_env)
    assert len(items) >= 15
    for item in items:
        assert item["status"] == "Enriched", item
        assert item["summary"] and item["content_type"] in DEFAULT_CONTENT_TYPES
        assert item["source_type"] in ("RSS", "PDF")
        assert item["ai_primitives"] and set(item["ai_primitives"]) <= set(DEFAULT_AI_PRIMITIVES)
    assert {"RSS", "PDF"} == {item["source_type"] for item in items}
    second = run_script(["pipeline_enhanced.sh"], tmp_path, demo_env)
    assert second.returncode == 0, second.stderr
    assert len(list_items(tmp_path, demo_env)) == len(items)
    summaries = events(tmp_path / "logs", "pipeline_summary")
    assert [s["metrics"]["items_total"] for s in summaries[2:]] == [0, 0]


def test_summary_counts_match_the_store(tmp_path: Path, demo_env: dict):
    with FakeWebServer() as web:
        web.page("/good", ARTICLE.format(t="Good", p=PARAGRAPHS))
        web.page("/empty", "<html><body></body></html>")
        web.route("/gone", status=404, body=b"not here")
        feed = feed_file(tmp_path / "f.xml", [("Good one", f"{web.url}/good"), ("Empty page", f"{web.url}/empty"),
                                              ("Gone", f"{web.url}/gone")])
        env = {**demo_env, "RSS_FEEDS": str(feed), "ALLOW_PRIVATE_URLS": "true", "ALERT_FAILURE_RATE": "1"}
        done = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    by_status: dict[str, int] = {}
    for item in list_items(tmp_path, env):
        by_status[item["status"]] = by_status.get(item["status"], 0) + 1
    metrics = events(tmp_path / "logs", "pipeline_summary")[-1]["metrics"]
    assert metrics["items_processed"] == by_status.get("Enriched", 0) == 1
    assert metrics["items_failed"] == by_status.get("Failed", 0) == 2
    assert metrics["items_total"] == 3
    assert metrics["api_calls"]["web"]["count"] >= 3


def test_original_scripts_print_plain_lines_and_write_no_jsonl(tmp_path: Path, demo_env: dict):
    env = {**demo_env, "USE_ENHANCED": "false"}
    done = run_script(["pipeline_enhanced.sh"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "original scripts" in done.stdout
    assert "pipeline.jsonl" not in done.stdout.splitlines()[0], "the banner names no log the originals do not write"
    assert "Enriched:" in done.stdout and "enrich_rss.py: captured" in done.stdout
    assert not (tmp_path / "logs" / "pipeline.jsonl").exists()
    assert all(not line.lstrip().startswith("{") for line in done.stdout.splitlines())
    assert all(i["status"] == "Enriched" for i in list_items(tmp_path, env))


def test_pipeline_sh_works_from_any_directory(tmp_path: Path, demo_env: dict):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([str(ROOT / "pipeline.sh")], cwd=elsewhere, env=demo_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "enrich.py: captured 3 new" in done.stdout


def test_pipeline_sh_stops_at_the_first_failing_step(tmp_path: Path, demo_env: dict):
    env = {**demo_env, "PDF_DIR": str(tmp_path / "missing"), "RSS_WINDOW_DAYS": "x"}
    done = run_script(["pipeline.sh"], tmp_path, env)
    assert done.returncode == 2
    assert "enrich_rss.py failed with exit code 2" in done.stderr
    assert "enrich.py:" not in done.stdout


@pytest.fixture
def guide_run(tmp_path: Path, demo_env: dict) -> Path:
    """A parallel run with a web article, a failing article and the examples: every event kind."""
    with FakeWebServer() as web:
        web.page("/article", ARTICLE.format(t="Agents", p=PARAGRAPHS))
        web.route("/broken", status=500, body=b"oops")
        feed = feed_file(tmp_path / "web.xml", [("Agents", f"{web.url}/article"), ("Broken", f"{web.url}/broken")])
        env = {**demo_env, "RSS_FEEDS": demo_env["RSS_FEEDS"] + "," + str(feed), "ALLOW_PRIVATE_URLS": "true",
               "ENABLE_PARALLEL": "true", "RETRY_ATTEMPTS": "1", "LOG_DIR": "logs"}
        done = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
    assert done.returncode == 0, done.stderr + done.stdout
    return tmp_path


def sh(command: str, cwd: Path) -> str:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (CI installs it in .ci/run)")
def test_every_monitoring_command_of_the_guide_works_as_written(guide_run: Path):
    cwd = guide_run
    follow = subprocess.run(["bash", "-c", "timeout 2 tail -f logs/pipeline.jsonl | jq '.'"], cwd=cwd,
                            capture_output=True, text=True)
    assert jq_values(follow.stdout) and all("extra_fields" in v for v in jq_values(follow.stdout))
    metrics = jq_values(sh("""grep "pipeline_summary" logs/pipeline.jsonl | jq '.extra_fields.metrics'""", cwd))
    assert len(metrics) == 1 and metrics[0]["items_processed"] >= 13 and metrics[0]["items_failed"] == 1
    errors = jq_values(sh("""jq 'select(.level=="ERROR")' logs/pipeline.jsonl""", cwd))
    assert errors and all(e["level"] == "ERROR" for e in errors)
    assert {"item_error", "api_call_error"} <= {e["extra_fields"]["event_type"] for e in errors}
    calls = jq_values(sh("""jq 'select(.extra_fields.event_type=="api_call_complete")' logs/pipeline.jsonl""", cwd))
    assert calls and all(c["extra_fields"]["service"] == "web" for c in calls)
    summaries = jq_values(sh("""jq 'select(.extra_fields.event_type=="pipeline_summary")' logs/pipeline.jsonl""", cwd))
    assert len(summaries) == 1 and summaries[0]["extra_fields"]["mode"] == "parallel"
    api_errors = jq_values(sh("""jq 'select(.extra_fields.event_type=="api_call_error")' logs/pipeline.jsonl""", cwd))
    assert api_errors and api_errors[0]["extra_fields"]["service"] == "web"
    durations = jq_values(sh(
        """jq 'select(.extra_fields.event_type=="api_call_complete") | .extra_fields.duration' logs/pipeline.jsonl""",
        cwd))
    assert durations and all(isinstance(d, (int, float)) and d >= 0 for d in durations)
    started = sh('grep "parallel_start" logs/pipeline.jsonl', cwd).splitlines()
    assert len(started) == 1 and "Starting parallel processing of" in started[0]
    reasons = jq_values(sh("""jq 'select(.level=="ERROR") | .extra_fields.error' logs/pipeline.jsonl""", cwd))
    assert any("500" in r for r in reasons if isinstance(r, str))


def test_every_log_line_has_exactly_the_five_keys_and_utc_timestamps(guide_run: Path):
    records = read_log(guide_run / "logs")
    assert len(records) > 20
    for record in records:
        assert list(record) == ["timestamp", "level", "logger", "message", "extra_fields"]
        assert record["timestamp"].endswith("Z") and len(record["timestamp"]) == 24
        datetime.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert isinstance(record["extra_fields"], dict) and "event_type" in record["extra_fields"]
    kinds = {r["extra_fields"]["event_type"] for r in records}
    assert {"run_start", "parallel_start", "item_complete", "item_error", "api_call_complete",
            "api_call_retry", "api_call_error", "progress_update", "pipeline_summary"} <= kinds
    start = next(r for r in records if r["extra_fields"]["event_type"] == "parallel_start")
    assert start["message"].startswith("Starting parallel processing of ")
    assert {"total_items", "max_workers", "rate_limit"} <= set(start["extra_fields"])
    assert oct(stat.S_IMODE(os.stat(guide_run / "logs" / "pipeline.jsonl").st_mode)) == "0o600"


def test_secrets_never_reach_logs_or_console(tmp_path: Path, demo_env: dict):
    openai_key, notion_token = "sk-test-SECRET123", "secret_TEST456"
    with start_fake_openai() as fake:
        env = {
            **demo_env,
            "OPENAI_API_KEY": openai_key,
            "NOTION_TOKEN": notion_token,
            "SOURCES_BACKEND": "sqlite",
            "OPENAI_BASE_URL": fake.url,
            "RETRY_ATTEMPTS": "0",
            "RSS_FEEDS": f"http://127.0.0.1:9/feed.xml?key={openai_key}&token={notion_token},{EXAMPLE_FEEDS[0]}",
            "LOG_LEVEL": "DEBUG",
        }
        done = run_script(["pipeline_enhanced.sh"], tmp_path, env)
    assert done.returncode == 1, "a wrong API key is fatal: exit 1"
    written = done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            written += path.read_bytes().decode("utf-8", "replace")
    assert "invalid_api_key" in written or "401" in written, "the run did meet the error"
    assert openai_key not in written and notion_token not in written
    assert "[REDACTED]" in written


def second_run_while_the_first_is_busy(
    tmp_path: Path, env: dict, first: list[str], second: list[str],
    first_cwd: Path | None = None, second_cwd: Path | None = None, second_env: dict | None = None,
) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, float]:
    """Start ``first`` on a feed whose one article takes 3 s, run ``second`` while it fetches.

    ``second_env`` (default: ``env``) gets the same feed. Returns both results
    and how long the second run took.
    """
    with FakeWebServer() as web:
        web.page("/slow", ARTICLE.format(t="Slow", p=PARAGRAPHS), delay=3)
        feed = feed_file(tmp_path / "slow.xml", [("Slow", f"{web.url}/slow")])
        env = {**env, "RSS_FEEDS": str(feed), "ALLOW_PRIVATE_URLS": "true"}
        command = [PYTHON, str(ROOT / first[0]), *first[1:]] if first[0].endswith(".py") else [str(ROOT / first[0])]
        running = subprocess.Popen(command, cwd=first_cwd or tmp_path, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not web.paths():
            time.sleep(0.05)
        started = time.monotonic()
        other_env = env if second_env is None else {**second_env, "RSS_FEEDS": env["RSS_FEEDS"],
                                                     "ALLOW_PRIVATE_URLS": "true"}
        other = run_script(second, second_cwd or tmp_path, other_env)
        elapsed = time.monotonic() - started
        out, err = running.communicate(timeout=60)
    return subprocess.CompletedProcess(command, running.returncode, out, err), other, elapsed


def test_a_second_concurrent_run_exits_at_once_with_its_own_code(tmp_path: Path, demo_env: dict):
    env = {**demo_env, "LOG_DIR": str(tmp_path / "logs")}
    first, second, elapsed = second_run_while_the_first_is_busy(
        tmp_path, env, ["pipeline_enhanced.sh"], ["pipeline_enhanced.sh"])
    assert second.returncode == 75
    assert "another pipeline run is active" in second.stderr
    assert elapsed < 2
    assert first.returncode == 0, first.stderr


def test_enrich_scripts_refuse_to_run_twice_even_by_hand(tmp_path: Path, demo_env: dict):
    _, second, _ = second_run_while_the_first_is_busy(tmp_path, demo_env, ["enrich_rss_enhanced.py"], ["enrich.py"])
    assert second.returncode == 75 and "another enrichment run is active" in second.stderr


def test_dry_run_writes_nothing(tmp_path: Path, demo_env: dict):
    done = run_script(["enrich_rss_enhanced.py", "--dry-run"], tmp_path, demo_env)
    assert done.returncode == 0, done.stderr
    assert "would capture [RSS]" in done.stdout
    assert not (tmp_path / "logs").exists()
    assert not Path(demo_env["SOURCES_DB_PATH"]).exists()
    assert not Path(demo_env["JOURNAL_PATH"]).exists()


def test_add_one_url_by_hand(tmp_path: Path, demo_env: dict):
    with FakeWebServer() as web:
        web.page("/later", ARTICLE.format(t="Read later", p=PARAGRAPHS))
        env = {**demo_env, "RSS_FEEDS": "", "ALLOW_PRIVATE_URLS": "true"}
        done = run_script(["enrich_rss.py", "--add", f"{web.url}/later", "--title", "Read later"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    [item] = list_items(tmp_path, env)
    assert (item["title"], item["status"], item["source_type"]) == ("Read later", "Enriched", "Website")
    assert item["vendor"] in ("Anthropic", "OpenAI")


def test_retry_failed_puts_failed_items_back(tmp_path: Path, demo_env: dict):
    with FakeWebServer() as web:
        route = web.route("/flaky", status=503, body=b"down")
        feed = feed_file(tmp_path / "f.xml", [("Flaky", f"{web.url}/flaky")])
        env = {**demo_env, "RSS_FEEDS": str(feed), "ALLOW_PRIVATE_URLS": "true", "RETRY_ATTEMPTS": "0"}
        run_script(["enrich_rss.py"], tmp_path, env)
        [failed] = list_items(tmp_path, env)
        assert failed["status"] == "Failed" and "503" in failed["error"]
        route.status, route.body = 200, ARTICLE.format(t="Back", p=PARAGRAPHS).encode()
        untouched = run_script(["enrich_rss.py", "--retry-failed", "no such reason"], tmp_path, env)
        assert untouched.returncode == 0 and list_items(tmp_path, env)[0]["status"] == "Failed"
        done = run_script(["enrich_rss_enhanced.py", "--retry-failed", "503"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert list_items(tmp_path, env)[0]["status"] == "Enriched"


@pytest.mark.parametrize("script", ["enrich.py", "enrich_rss.py", "enrich_enhanced.py", "enrich_rss_enhanced.py",
                                    "parallel_enricher.py", "migrate_to_parallel.py", "structured_logging.py"])
def test_every_script_has_help_that_names_it(tmp_path: Path, script: str):
    done = run_script([script, "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script} ")


def test_the_package_help_introduces_the_tool(tmp_path: Path):
    done = run_script(["-m", "knowledge_pipeline", "--help"], tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("usage: python3 -m knowledge_pipeline ")
    intro = done.stdout.split("\n\n")[1]
    assert "not in the guide" not in done.stdout
    assert "Sources" in intro and "enrich" in intro
    for command in ("list", "report", "notion"):
        assert f"    {command} " in done.stdout


def test_structured_logging_prints_where_the_log_is(tmp_path: Path):
    done = run_script(["structured_logging.py"], tmp_path, clean_env(LOG_DIR=str(tmp_path / "mylogs")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "mylogs" / "pipeline.jsonl")


def test_two_runs_on_one_store_exclude_each_other_whatever_their_journal(tmp_path: Path, demo_env: dict):
    """Started from different directories, relative JOURNAL_PATHs differ; the store's own lock still holds."""
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    first, second, _ = second_run_while_the_first_is_busy(
        tmp_path, {**demo_env, "JOURNAL_PATH": "journal.db"}, ["enrich_rss_enhanced.py"], ["enrich_rss.py"],
        first_cwd=first_dir, second_cwd=second_dir)
    assert second.returncode == 75 and "another enrichment run is active" in second.stderr
    assert first.returncode == 0, first.stderr


def files_of(folder: Path) -> dict[str, tuple]:
    """Every file under ``folder`` with its size, mtime and content hash."""
    state = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st = path.stat()
            state[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).digest())
    return state


DRY_RUNS = {
    "feeds": ["enrich_rss_enhanced.py", "--dry-run"],
    "pdfs": ["enrich_enhanced.py", "--dry-run"],
    "add": ["enrich_rss.py", "--dry-run", "--add", "https://example.com/read-later", "--title", "Later"],
    "retry-failed": ["enrich_rss_enhanced.py", "--dry-run", "--retry-failed", "503"],
}
DRY_RUN_SAYS = {
    "feeds": "would capture [RSS]", "pdfs": "would capture [PDF]", "add": "would capture [Website] Later",
    "retry-failed": "would put 1 Failed items back in the Inbox",
}


@pytest.mark.parametrize("path", list(DRY_RUNS))
def test_a_dry_run_writes_nothing_on_any_path(tmp_path: Path, demo_env: dict, enrich_in_process, path: str):
    """Store, journal and log unchanged (or not created), whatever the dry run would have done."""
    with FakeWebServer() as web:
        web.route("/flaky", status=503, body=b"down")
        failing = feed_file(tmp_path / "failing.xml", [("Flaky", f"{web.url}/flaky")])
        env = {**demo_env, "ALLOW_PRIVATE_URLS": "true", "RETRY_ATTEMPTS": "0", "ALERT_FAILURE_RATE": "1"}
        first = enrich_in_process(["enrich_rss_enhanced.py"], tmp_path, {**env, "RSS_FEEDS": str(failing)})
    assert first.returncode == 0, first.stderr
    assert [i["status"] for i in list_items(tmp_path, env)] == ["Failed"]
    before = files_of(tmp_path)
    assert {"data/sources.db", "data/journal.db", "logs/pipeline.jsonl"} <= set(before)

    done = enrich_in_process(DRY_RUNS[path], tmp_path, env)

    assert done.returncode == 0, done.stderr
    assert DRY_RUN_SAYS[path] in done.stdout
    assert files_of(tmp_path) == before
    assert [i["status"] for i in list_items(tmp_path, env)] == ["Failed"]


@pytest.mark.parametrize("path", list(DRY_RUNS))
def test_a_dry_run_on_a_new_project_creates_no_file(tmp_path: Path, demo_env: dict, enrich_in_process, path: str):
    done = enrich_in_process(DRY_RUNS[path], tmp_path, demo_env)
    assert done.returncode == 0, done.stderr
    assert files_of(tmp_path) == {}


def test_two_runs_on_one_sqlite_store_exclude_each_other_whatever_tmpdir_and_spelling(tmp_path: Path, demo_env: dict):
    """The store's lock lies beside the database file, found by its real path (not in TMPDIR)."""
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    for folder in (first_dir, second_dir, tmp_path / "t1", tmp_path / "t2"):
        folder.mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data", target_is_directory=True)
    (tmp_path / "data").mkdir()
    first_env = {**demo_env, "JOURNAL_PATH": "journal.db", "TMPDIR": str(tmp_path / "t1")}
    second_env = {**first_env, "TMPDIR": str(tmp_path / "t2"),
                  "SOURCES_DB_PATH": str(tmp_path / "link" / ".." / "link" / "sources.db")}
    first, second, _ = second_run_while_the_first_is_busy(
        tmp_path, first_env, ["enrich_rss_enhanced.py"], ["enrich_rss.py"],
        first_cwd=first_dir, second_cwd=second_dir, second_env=second_env)
    assert second.returncode == 75 and "another enrichment run is active" in second.stderr
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "data" / "sources.db.lock").exists()


@pytest.mark.parametrize("spelling", ["undashed-capitals-trailing-slash", "data-source-id"])
def test_two_runs_on_one_notion_database_exclude_each_other_however_it_is_spelled(
        tmp_path: Path, demo_env: dict, spelling: str):
    """The Notion lock is keyed on the normalized id in a per-user state folder, and on the data source it resolves to."""
    with start_fake_notion(rps=None) as notion:
        common = {**demo_env, "SOURCES_BACKEND": "notion", "NOTION_TOKEN": notion.token,
                  "XDG_STATE_HOME": str(tmp_path / "state"), "PARALLEL_RATE_LIMIT": "0", "NOTION_MAX_RPS": "1000"}
        first_env = {**common, "NOTION_SOURCES_DB": notion.database_id, "NOTION_BASE_URL": notion.url,
                     "TMPDIR": str(tmp_path / "t1"), "JOURNAL_PATH": str(tmp_path / "j1.db")}
        other_id = (notion.database_id.replace("-", "").upper() if spelling.startswith("undashed")
                    else notion.data_source_id)
        second_env = {**common, "NOTION_SOURCES_DB": other_id, "NOTION_BASE_URL": notion.url + "/",
                      "TMPDIR": str(tmp_path / "t2"), "JOURNAL_PATH": str(tmp_path / "j2.db")}
        for folder in ("t1", "t2"):
            (tmp_path / folder).mkdir()
        first, second, _ = second_run_while_the_first_is_busy(
            tmp_path, first_env, ["enrich_rss_enhanced.py"], ["enrich_rss.py"], second_env=second_env)
    assert second.returncode == 75 and "another enrichment run is active" in second.stderr, second.stderr
    assert first.returncode == 0, first.stderr
    assert list((tmp_path / "state" / "knowledge-pipeline").glob("notion-*.lock"))
def test_an_added_url_gets_the_page_title_and_a_pdf_its_document_title(tmp_path: Path, demo_env: dict):
    from tests.data.generate import text_pdf

    with FakeWebServer() as web:
        web.page("/later", "<html><head><title>Agents ship in the enterprise | Example News</title></head><body>"
                           f"<article><h1>Agents ship in the enterprise</h1>{PARAGRAPHS}</article></body></html>")
        web.pdf("/files/q3.pdf", text_pdf([["Q3 Inference Cost Review", "OpenAI and Anthropic prices fell."]],
                                          title="Microsoft Word - q3.docx"))
        env = {**demo_env, "RSS_FEEDS": "", "ALLOW_PRIVATE_URLS": "true"}
        for path in ("/later", "/files/q3.pdf"):
            done = run_script(["enrich_rss.py", "--add", web.url + path], tmp_path, env)
            assert done.returncode == 0, done.stderr
        done = run_script(["enrich.py"], tmp_path, {**env, "PDF_DIR": ""})
        assert done.returncode == 0, done.stderr
    titles = {item["url"]: (item["title"], item["status"]) for item in list_items(tmp_path, env)}
    assert titles == {web.url + "/later": ("Agents ship in the enterprise", "Enriched"),
                      web.url + "/files/q3.pdf": ("Q3 Inference Cost Review", "Enriched")}


def test_partial_reads_are_logged_and_kept_with_the_item(tmp_path: Path, demo_env: dict):
    from tests.data.generate import incremental_pdf, truncated_long_pdf

    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "cut.pdf").write_bytes(truncated_long_pdf(23))
    (folder / "long.pdf").write_bytes(incremental_pdf(40)[0])
    env = {**demo_env, "RSS_FEEDS": "", "PDF_DIR": str(folder), "MAX_PDF_PAGES": "30"}
    done = run_script(["enrich_enhanced.py"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    kept = {Path(item["url"]).name: item["warnings"] for item in list_items(tmp_path, env)}
    assert kept == {"cut.pdf": ["9 of 23 pages read (damaged or truncated PDF)"],
                    "long.pdf": ["30 of 40 pages read (MAX_PDF_PAGES)"]}
    logged = {e["warning"]: (e["unit"], e["kept"], e["total"], e["cause"])
              for e in events(Path(env["LOG_DIR"]), "item_warning")}
    assert logged == {"9 of 23 pages read (damaged or truncated PDF)": ("pages", 9, 23, "damaged or truncated PDF"),
                      "30 of 40 pages read (MAX_PDF_PAGES)": ("pages", 30, 40, "MAX_PDF_PAGES")}
    warned = [r for r in read_log(Path(env["LOG_DIR"])) if r["extra_fields"]["event_type"] == "item_warning"]
    assert {r["level"] for r in warned} == {"WARNING"}


def test_a_store_whose_folder_cannot_be_made_is_one_line_and_exit_1(tmp_path: Path, demo_env: dict, enrich_in_process):
    """The store's lock lies beside it: a path under a file fails there, cleanly, before anything is written."""
    (tmp_path / "a-file").write_text("")
    env = {**demo_env, "SOURCES_DB_PATH": str(tmp_path / "a-file" / "data" / "sources.db")}
    done = enrich_in_process(["enrich_rss_enhanced.py"], tmp_path, env)
    assert done.returncode == 1
    assert "a-file" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
