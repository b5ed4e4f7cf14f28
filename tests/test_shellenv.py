"""One .env reader: pipeline_enhanced.sh asks Python, so the wrapper and the scripts agree on every line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from knowledge_pipeline import shellenv
from knowledge_pipeline.config import load_settings

from .conftest import clean_env, events, list_items
from .test_cron import project_copy


def settings_in(folder: Path, environ: dict[str, str] | None = None):
    return load_settings(environ or {}, env_file=folder / ".env")


def test_exported_beats_env_migration_beats_env(tmp_path: Path):
    (tmp_path / ".env").write_text("ENABLE_PARALLEL=false\nPARALLEL_MAX_WORKERS=2\nLOG_LEVEL=ERROR\n")
    (tmp_path / ".env.migration").write_text("ENABLE_PARALLEL=true\nPARALLEL_MAX_WORKERS=3\n")
    settings = settings_in(tmp_path)
    assert (settings.enable_parallel, settings.parallel_max_workers, settings.log_level) == (True, 3, "ERROR")
    exported = settings_in(tmp_path, {"ENABLE_PARALLEL": "false"})
    assert (exported.enable_parallel, exported.parallel_max_workers) == (False, 3)


def test_the_wrapper_reads_what_python_dotenv_reads(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / ".env").write_text('LOG_LEVEL="WARNING"  # quieter\nLOG_DIR="my logs"  # spaces\n'
                                   "export USE_ENHANCED='false' # originals\n")
    monkeypatch.chdir(tmp_path)
    for name in ("LOG_LEVEL", "LOG_DIR", "USE_ENHANCED", "ENABLE_PARALLEL"):
        monkeypatch.delenv(name, raising=False)
    assert shellenv.main([]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "use_enhanced=false", "enable_parallel=false", "log_dir='my logs'", "workers=5", "rate_limit=0.1",
    ]


def test_a_bad_value_is_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / ".env.migration").write_text("ENABLE_PARALLEL=maybe\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENABLE_PARALLEL", raising=False)
    assert shellenv.main(["--for", "pipeline_enhanced.sh"]) == 2
    assert capsys.readouterr().err == ("pipeline_enhanced.sh: configuration error: ENABLE_PARALLEL='maybe' is "
                                       "invalid: expected true or false\n")


def run_wrapper(copy: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(copy / "pipeline_enhanced.sh")], cwd="/", env=clean_env(**env), capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    copy = project_copy(tmp_path)
    feed = copy / "my feeds" / "one.xml"
    feed.parent.mkdir()
    feed.write_text((copy / "examples" / "feeds" / "ai_markets_daily.rss.xml").read_text())
    return copy


def test_the_two_lines_that_broke_the_old_bash_reader(copy: Path):
    (copy / ".env").write_text(f'RSS_FEEDS="{copy}/my feeds/one.xml"  # the team feed\nRSS_WINDOW_DAYS=0\n'
                               'LOG_LEVEL="WARNING"  # quieter\n')
    done = run_wrapper(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    items = list_items(copy, clean_env(SOURCES_DB_PATH=str(copy / "data" / "sources.db")))
    assert len(items) == 7 and all(i["status"] == "Enriched" for i in items)
    assert not events(copy / "logs", "run_start")  # INFO events are below LOG_LEVEL=WARNING


def test_the_wrapper_and_the_scripts_follow_env_migration_unless_exported(copy: Path):
    (copy / ".env").write_text(f"RSS_FEEDS={copy}/my feeds/one.xml\nRSS_WINDOW_DAYS=0\nENABLE_PARALLEL=false\n")
    (copy / ".env.migration").write_text("ENABLE_PARALLEL=true\nPARALLEL_MAX_WORKERS=3\n")
    done = run_wrapper(copy)
    assert done.returncode == 0, done.stderr
    assert "enhanced, parallel: 3 workers" in done.stdout
    assert {e["mode"] for e in events(copy / "logs", "run_start")} == {"parallel"}
    done = run_wrapper(copy, ENABLE_PARALLEL="false")
    assert done.returncode == 0 and "enhanced, sequential" in done.stdout
