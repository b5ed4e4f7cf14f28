"""SIGINT/SIGTERM end every run in bounded time (issue 12, point 14), with real processes and real signals.

Always: exit 130, one pipeline_summary, the locks free for the next run, the
journal intact. The extractor that never returns is injected into a real run
(``tests/stuck_run.py``); the last test shows the same with the real script
and an article server that never answers.
"""

from __future__ import annotations

import fcntl
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from .conftest import ROOT, clean_env, events, list_items
from .data.generate import rss_feed, rss_item

GRACE = 1.0
BOUND = 25.0  # grace + two bounded cancellation waits + start-up, with room for a loaded machine


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    feed = tmp_path / "feed.xml"
    feed.write_text(rss_feed(rss_item(n) for n in range(8)))
    return clean_env(**{"RSS_FEEDS": str(feed), "RSS_WINDOW_DAYS": "0", "LOG_DIR": str(tmp_path / "logs"),
                        "SOURCES_DB_PATH": str(tmp_path / "data" / "sources.db"),
                        "JOURNAL_PATH": str(tmp_path / "data" / "journal.db"), "PARALLEL_MAX_WORKERS": "2",
                        "PARALLEL_RATE_LIMIT": "0", "SHUTDOWN_GRACE_SECONDS": str(GRACE),
                        "STUCK_MARKER": str(tmp_path / "stuck"), **extra})


def wait_for(ready: Callable[[], bool], proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until ``ready()``; fails if the run ends or takes too long to get there."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got to the point where it waits"
        time.sleep(0.05)


def stop(proc: subprocess.Popen, *signals: signal.Signals, pause: float = 0.5) -> tuple[float, str]:
    """Send the signals, ``pause`` apart; how long the process then took to end, and its stderr."""
    started = time.monotonic()
    for n, signum in enumerate(signals):
        if n:
            time.sleep(pause)
        proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=BOUND + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the run did not end after its signals: it hangs")
    return time.monotonic() - started, err


def check_after_the_stop(tmp_path: Path, env: dict[str, str]) -> None:
    """One summary with exit 130; no item lost or Failed; the locks free; the journal intact."""
    summaries = events(tmp_path / "logs", "pipeline_summary")
    assert [s["exit_code"] for s in summaries] == [130]
    assert {i["status"] for i in list_items(tmp_path, env)} == {"Inbox"}
    for lock in (tmp_path / "data").glob("*.lock"):
        with open(lock, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a process still holds it
    journal = sqlite3.connect(tmp_path / "data" / "journal.db")
    assert journal.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert journal.execute("SELECT COUNT(*) FROM steps WHERE writing = 1").fetchone() == (0,)
    journal.close()


def start_stuck(tmp_path: Path, mode: str, **extra: str) -> tuple[subprocess.Popen, dict[str, str]]:
    env = env_for(tmp_path, **extra)
    proc = subprocess.Popen([sys.executable, "-m", "tests.stuck_run", mode], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for((tmp_path / "stuck").exists, proc)
    return proc, env


@pytest.mark.parametrize("mode", ["thread", "coroutine", "ignores-cancel"])
def test_sigterm_ends_a_run_whose_extractor_never_returns(tmp_path: Path, mode: str):
    proc, env = start_stuck(tmp_path, mode)
    elapsed, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 130, err
    assert elapsed < BOUND, f"took {elapsed:.1f}s"
    check_after_the_stop(tmp_path, env)
    assert events(tmp_path / "logs", "shutdown_requested")
    if mode == "ignores-cancel":
        assert events(tmp_path / "logs", "shutdown_abandoned")


def test_a_second_signal_cancels_at_once_whatever_the_grace_period(tmp_path: Path):
    proc, env = start_stuck(tmp_path, "coroutine", SHUTDOWN_GRACE_SECONDS="600")
    elapsed, err = stop(proc, signal.SIGTERM, signal.SIGINT)
    assert proc.returncode == 130, err
    assert elapsed < 10, f"took {elapsed:.1f}s after the second signal"
    check_after_the_stop(tmp_path, env)
    assert events(tmp_path / "logs", "shutdown_forced")


class SilentServer:
    """Accepts connections and never answers: an article server that hangs."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


def stopped_while_waiting_on_a_silent_server(
    tmp_path: Path, args: list[str], settings: Callable[[SilentServer], dict[str, str]]
) -> tuple[subprocess.Popen, float, str, dict[str, str]]:
    """Run an enrich script whose requests go to a server that never answers; SIGTERM once one is waiting."""
    server = SilentServer()
    try:
        env = {**env_for(tmp_path), "API_TIMEOUT": "600", "ALLOW_PRIVATE_URLS": "true", **settings(server)}
        proc = subprocess.Popen([sys.executable, str(ROOT / args[0]), *args[1:]], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: bool(server.held), proc)
        time.sleep(0.5)
        elapsed, err = stop(proc, signal.SIGTERM)
    finally:
        server.close()
    return proc, elapsed, err, env


def test_sigterm_ends_the_real_script_while_its_one_worker_waits_on_a_silent_server(tmp_path: Path):
    """The issue's case: one worker busy past the grace period, the producer blocked on a full queue."""
    def silent_articles(server: SilentServer) -> dict[str, str]:
        feed = tmp_path / "silent.xml"
        feed.write_text(rss_feed(rss_item(n, link=f"{server.url}/post/{n}") for n in range(6)))
        return {"RSS_FEEDS": str(feed), "PARALLEL_MAX_WORKERS": "1"}

    proc, elapsed, err, env = stopped_while_waiting_on_a_silent_server(
        tmp_path, ["enrich_rss_enhanced.py", "--parallel"], silent_articles)
    assert proc.returncode == 130, err
    assert elapsed < BOUND, f"took {elapsed:.1f}s"
    check_after_the_stop(tmp_path, env)


def test_sigterm_during_capture_ends_it_after_the_grace_period(tmp_path: Path):
    """Capture is work in flight too: a feed whose server never answers does not hold the run for API_TIMEOUT."""
    proc, elapsed, err, _ = stopped_while_waiting_on_a_silent_server(
        tmp_path, ["enrich_rss_enhanced.py"], lambda server: {"RSS_FEEDS": f"{server.url}/feed.xml"})
    assert proc.returncode == 130, err
    assert elapsed < BOUND, f"took {elapsed:.1f}s"
    assert [s["exit_code"] for s in events(tmp_path / "logs", "pipeline_summary")] == [130]
