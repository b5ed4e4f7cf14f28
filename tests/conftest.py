"""Shared test helpers: run the project's scripts as processes in a temp dir."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import pytest

if TYPE_CHECKING:
    from knowledge_pipeline.runner import RunResult
    from tests.extract.support import Recorder

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
EXAMPLE_FEEDS = sorted((ROOT / "examples" / "feeds").glob("*.xml"))
EXAMPLE_PDFS = ROOT / "examples" / "pdfs"

_SCRUBBED = (
    "NOTION_TOKEN", "NOTION_SOURCES_DB", "NOTION_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
    "SOURCES_BACKEND", "ENRICHER", "RSS_FEEDS", "PDF_DIR", "USE_ENHANCED", "ENABLE_PARALLEL",
    "PARALLEL_MAX_WORKERS", "PARALLEL_RATE_LIMIT", "LOG_DIR", "LOG_LEVEL", "METRICS_TEXTFILE",
    "ALERT_WEBHOOK_URL", "SOURCES_DB_PATH", "JOURNAL_PATH", "MAX_COST_USD", "RSS_WINDOW_DAYS",
    "TAXONOMY_FILE", "DIGEST_WEBHOOK_URL",
    "GOOGLE_APP_CREDENTIALS", "DRIVE_FOLDER_ID", "GOOGLE_DRIVE_BASE_URL", "WEBSITE_SOURCES", "WEBSITE_AUTH_CONFIGS",
    "FIRECRAWL_API_KEY", "FIRECRAWL_BASE_URL",
    "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "OPENAI_CONTEXT_TOKENS", "MAX_OUTPUT_TOKENS",
    "OPENAI_BATCH", "BATCH_MIN_ITEMS", "ANALYSES", "ANALYSES_FILE",
    "FEEDS_FILE", "FEED_STATE_PATH", "FEED_CONCURRENCY", "FEED_MAX_ERRORS", "FEED_STALE_DAYS", "CATEGORY_PROP",
)


@pytest.fixture(autouse=True, scope="session")
def _state_dir_of_the_test_session(tmp_path_factory: pytest.TempPathFactory):
    """Run locks of Notion stores (XDG_STATE_HOME) go to a folder of this session, not ~/.local/state."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any pipeline setting, plus overrides."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("EMAIL_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def require_system_dep(name: str, executable: str, install: str) -> str:
    """The path of a system component a test needs (Dovecot, Chromium...).

    Missing, the test is skipped with the reason, unless KP_REQUIRE_SYSTEM_DEPS=1
    (CI): then it fails, so a missing component never passes for a tested one.
    """
    path = shutil.which(executable) or shutil.which(executable, path="/usr/sbin:/sbin:/usr/local/sbin")
    if path:
        return path
    reason = f"{name} is not installed ({executable} not found; {install})"
    if os.environ.get("KP_REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(f"KP_REQUIRE_SYSTEM_DEPS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def run_script(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120, **kwargs
) -> subprocess.CompletedProcess:
    """Run a project script (``enrich_rss.py``, ``pipeline_enhanced.sh``...) with cwd in a temp dir."""
    script = args[0]
    path = ROOT / script if (ROOT / script).exists() else None
    if path is not None and script.endswith(".py"):
        command = [PYTHON, str(path), *args[1:]]
    elif path is not None:
        command = [str(path), *args[1:]]
    else:
        command = [PYTHON, *args]
    return subprocess.run(
        command, cwd=cwd, env=env if env is not None else clean_env(), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, **kwargs,
    )


_SCRIPTS = {
    "enrich_rss.py": ("feeds", False), "enrich_rss_enhanced.py": ("feeds", True),
    "enrich.py": ("pdfs", False), "enrich_enhanced.py": ("pdfs", True),
}


@pytest.fixture
def enrich_in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run one of the four enrich scripts' main() in this process, with ``env`` and ``cwd`` as run_script sets them.

    For tests where the process itself is not the point: much faster than a subprocess.
    """
    from knowledge_pipeline.cli.scripts import enrich_main

    def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        for name in _SCRUBBED:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            if os.environ.get(name) != value:
                monkeypatch.setenv(name, value)
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        capture, enhanced = _SCRIPTS[args[0]]
        try:
            code = enrich_main(args[1:], script=args[0], capture=capture, enhanced=enhanced)
        finally:
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
                handler.close()
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return run


def run_in_process(
    env: Mapping[str, str], *, capture: str = "feeds", source_types: frozenset | None = None, script: str = "test",
    parallel: bool = False, retry_failed: bool = False, add_url: str | None = None,
) -> tuple[RunResult, Recorder]:
    """One enrich run (``run_async``: capture, then enrichment) in this process, with the settings ``env`` gives
    (no ``.env``); its result and every event it reported.

    ``source_types``: the feed types, or the PDF ones when ``capture`` is not ``feeds``, unless given.
    """
    from knowledge_pipeline.config import load_settings
    from knowledge_pipeline.runner import FEED_TYPES, PDF_TYPES, RunOptions, run_async
    from knowledge_pipeline.telemetry import Telemetry
    from tests.extract.support import Recorder

    settings = load_settings(dict(env), env_file=None)
    telemetry, recorder = Telemetry("test"), Recorder()
    telemetry.add_observer(recorder)
    if source_types is None:
        source_types = FEED_TYPES if capture == "feeds" else PDF_TYPES
    options = RunOptions(script=script, source_types=source_types, capture=capture, parallel=parallel,
                         retry_failed=retry_failed, add_url=add_url)
    return asyncio.run(run_async(settings, options, telemetry)), recorder


def pipeline_twice(tmp_path: Path, **settings: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess,
                                                              list[dict], subprocess.CompletedProcess]:
    """``pipeline_enhanced.sh`` run twice on a temp embedded store: (first, second, items, ``report --json``)."""
    env = clean_env(SOURCES_DB_PATH=str(tmp_path / "data" / "sources.db"),
                    JOURNAL_PATH=str(tmp_path / "data" / "journal.db"), LOG_DIR=str(tmp_path / "logs"), **settings)
    done = run_script(["pipeline_enhanced.sh"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    again = run_script(["pipeline_enhanced.sh"], tmp_path, env)
    items = list_items(tmp_path, env)
    return done, again, items, run_script(["-m", "knowledge_pipeline", "report", "--json"], tmp_path, env)


def list_items(cwd: Path, env: dict[str, str]) -> list[dict]:
    done = run_script(["-m", "knowledge_pipeline", "list", "--json"], cwd, env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def pending_titles(journal: Path) -> list[str]:
    """Titles of the items enrich-first captured and holds in the journal without a page yet (issue 15).

    They are what a stopped run leaves for the next one, as inbox-first leaves Inbox items.
    """
    import sqlite3

    if not journal.exists():
        return []
    db = sqlite3.connect(journal)
    try:
        return sorted(json.loads(item)["title"] for (item,) in db.execute("SELECT item FROM steps WHERE item IS NOT NULL"))
    finally:
        db.close()


def read_log(log_dir: Path) -> list[dict]:
    path = log_dir / "pipeline.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def events(log_dir: Path, event_type: str) -> list[dict]:
    return [r["extra_fields"] for r in read_log(log_dir) if r["extra_fields"].get("event_type") == event_type]


def jq_values(output: str) -> list:
    """The JSON values jq printed (pretty-printed, one after another)."""
    decoder, values, text = json.JSONDecoder(), [], output.strip()
    while text:
        value, end = decoder.raw_decode(text)
        values.append(value)
        text = text[end:].lstrip()
    return values


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """Settings for a run on the example feeds and PDFs into a temp embedded store."""
    return clean_env(
        RSS_FEEDS=",".join(str(p) for p in EXAMPLE_FEEDS),
        PDF_DIR=str(EXAMPLE_PDFS),
        RSS_WINDOW_DAYS="0",
        SOURCES_DB_PATH=str(tmp_path / "data" / "sources.db"),
        JOURNAL_PATH=str(tmp_path / "data" / "journal.db"),
        FEED_STATE_PATH=str(tmp_path / "data" / "feeds.db"),
        LOG_DIR=str(tmp_path / "logs"),
    )


def with_store(store: Any, scenario: Callable[[Any], Awaitable[Any]]) -> Any:
    """Open ``store``, run ``scenario(store)`` in a fresh event loop, close the store; the scenario's result."""

    async def main() -> Any:
        await store.open()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())
