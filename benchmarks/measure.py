"""Running a benchmark's child process and measuring it alone (not the fakes in the parent)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ChildRun:
    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    started: float
    finished: float
    stdout: str
    stderr: str


def run_measured(command: list[str], env: dict[str, str], workdir: Path, timeout: float) -> ChildRun:
    """Run ``command`` in ``workdir``; its peak RSS and CPU come from ``os.wait4``. SIGTERM after ``timeout``."""
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                process.send_signal(signal.SIGTERM)
                _, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        finished = time.monotonic()
    process.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(
        exit_code=process.returncode,
        wall_seconds=finished - started,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024.0,  # Linux: kilobytes
        started=started,
        finished=finished,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )
