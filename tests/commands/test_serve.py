"""``serve`` as a user starts it: prints its address, answers, warns before leaving 127.0.0.1."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.commands.conftest import Cli
from tests.conftest import ROOT, clean_env
from tests.reading.library import build_library


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    build_library(tmp_path / "s.db")
    process = subprocess.Popen(
        [sys.executable, "-m", "knowledge_pipeline", "serve", "--port", "0", *args], cwd=tmp_path,
        env=clean_env(SOURCES_DB_PATH=str(tmp_path / "s.db"), PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    return process, line


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    return process.returncode, err


def test_serves_on_loopback_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    process, line = start(tmp_path)
    try:
        assert line.startswith("Reading page on http://127.0.0.1:"), line
        url = line.split()[3]
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "Agents that open pull requests" in page.text
    finally:
        code, err = stop(process)
    assert code == 0 and "WARNING" not in err


def test_another_address_only_with_a_warning(tmp_path: Path) -> None:
    process, line = start(tmp_path, "--host", "0.0.0.0")
    try:
        assert line.startswith("Reading page on http://0.0.0.0:")
    finally:
        _, err = stop(process)
    assert "WARNING: serving on 0.0.0.0: anyone who can reach this address can read your Sources" in err


def test_a_busy_port_and_a_missing_notion_copy_are_one_line(cli: Cli, tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        busy = cli("serve", "--port", str(port), SOURCES_DB_PATH=str(tmp_path / "s.db"))
    assert busy.code == 1 and busy.err.startswith(f"serve: cannot listen on 127.0.0.1:{port}")
    missing = cli("serve", NOTION_TOKEN="t", NOTION_SOURCES_DB="d", SOURCES_DB_PATH=str(tmp_path / "none.db"))
    assert missing.code == 1 and "sync --from notion" in missing.err


def test_the_listening_socket_lets_asyncio_turn_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on IPPROTO_TCP sockets; without it keep-alive responses wait ~40 ms."""
    import socket

    from knowledge_pipeline.commands.serve import bind

    with bind("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[1] > 0
