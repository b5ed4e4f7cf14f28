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
    """Run ``command`` in ``workdir``; SIGTERM after ``timeout``.

    CPU comes from ``os.wait4``; peak RSS from the child's own high-water mark (``VmHWM``), read
    every 20 ms while it runs: ``wait4``'s ``ru_maxrss`` would include this (parent) process's
    RSS at the spawn, which Linux carries into the child's, the fakes' memory with it.
    """
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    peak_kb = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        while True:
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
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
        peak_rss_mb=(peak_kb or usage.ru_maxrss) / 1024.0,  # Linux: kilobytes
        started=started,
        finished=finished,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def _high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far, in kB (0 when it cannot be read: gone, not Linux)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
