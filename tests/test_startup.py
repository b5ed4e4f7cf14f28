"""Start fast (issue 15): the heavy clients and parsers are imported only where used.

cron starts the scripts every hour; what an hourly run imports before its first
request is start-up time. The scripts run as processes here (what is imported
is the point); at exit a wrapper lists which heavy modules the run loaded. The
time itself is measured by ``benchmarks/bench_startup.py`` (docs/performance.md),
not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, clean_env
from .fakes.notion_server import start_fake_notion

HEAVY = ("openai", "anthropic", "notion_client", "trafilatura", "pypdf", "plotly", "feedparser", "google.auth",
         "tqdm", "lxml", "yaml", "cryptography")

# Runs an entry script as __main__ and writes the heavy modules it loaded to $LOADED_FILE at exit.
WRAPPER = """
import atexit, json, os, runpy, sys
heavy = {heavy!r}
def report():
    loaded = sorted(h for h in heavy if h in sys.modules)
    with open(os.environ["LOADED_FILE"], "w") as out:
        json.dump(loaded, out)
atexit.register(report)
sys.argv = [{script!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def loaded_by(script: str, tmp_path: Path, **env: str) -> tuple[list[str], subprocess.CompletedProcess]:
    out = tmp_path / "loaded.json"
    code = WRAPPER.format(heavy=HEAVY, script=str(ROOT / script))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=clean_env(LOADED_FILE=str(out), LOG_DIR=str(tmp_path / "logs"),
                                        SOURCES_DB_PATH=str(tmp_path / "data" / "sources.db"),
                                        JOURNAL_PATH=str(tmp_path / "data" / "journal.db"), **env))
    return json.loads(out.read_text()), done


def test_an_hourly_run_with_nothing_new_imports_no_heavy_module(tmp_path: Path):
    loaded, done = loaded_by("enrich_rss_enhanced.py", tmp_path, RSS_FEEDS="", PDF_DIR="")
    assert done.returncode == 0, done.stderr
    assert loaded == [], f"imported without being used: {loaded}"


def test_a_notion_and_openai_run_imports_only_the_notion_client_when_no_item_needs_the_rest(tmp_path: Path):
    with start_fake_notion(rps=None) as notion:
        loaded, done = loaded_by(
            "enrich_enhanced.py", tmp_path, SOURCES_BACKEND="notion", NOTION_TOKEN=notion.token,
            NOTION_SOURCES_DB=notion.database_id, NOTION_BASE_URL=notion.url, ENRICHER="openai",
            OPENAI_API_KEY="sk-test-not-used", OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_BATCH="never",
            PDF_DIR="", RSS_FEEDS="")
    assert done.returncode == 0, done.stderr
    assert loaded == ["notion_client"], "openai, the parsers and plotly wait for an item (or a report) to need them"


def test_the_parsers_come_with_the_first_item_that_needs_them(tmp_path: Path):
    feeds = ",".join(str(p) for p in sorted((ROOT / "examples" / "feeds").glob("*.xml")))
    loaded, done = loaded_by("enrich_rss_enhanced.py", tmp_path, RSS_FEEDS=feeds, RSS_WINDOW_DAYS="0", PDF_DIR="")
    assert done.returncode == 0, done.stderr
    assert "feedparser" in loaded and "openai" not in loaded and "notion_client" not in loaded
