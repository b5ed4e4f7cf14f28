"""A reader that goes away (``| head``, a closed pipe) ends a command quietly and loses no work.

The subprocess is the point here: only a real pipe whose reader has closed it
makes the writes fail with EPIPE.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PYTHON, ROOT, clean_env, list_items


def _with_reader_gone(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``args`` with a stdout pipe whose reader is gone before the first line; (exit code, stderr)."""
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    return process.returncode, err.decode()


def test_a_reading_command_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    env = clean_env(RSS_FEEDS=",".join(f"https://feed{n}.example/rss" for n in range(200)))
    code, err = _with_reader_gone([PYTHON, "-m", "knowledge_pipeline", "feeds", "export"], tmp_path, env)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141, "as a shell reports a process stopped by SIGPIPE"


def test_an_enrich_run_whose_console_reader_went_away_finishes_its_work_quietly(tmp_path: Path,
                                                                               demo_env: dict) -> None:
    code, err = _with_reader_gone([PYTHON, str(ROOT / "enrich_rss_enhanced.py")], tmp_path, demo_env)
    assert "Traceback" not in err and "Logging error" not in err, err[:2000]
    assert code == 0, "the run's own exit code: its work was done"
    items = list_items(tmp_path, demo_env)
    assert len(items) == 13 and {item["status"] for item in items} == {"Enriched"}
