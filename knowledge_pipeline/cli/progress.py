"""The terminal progress bar of the enhanced scripts, fed by Telemetry events.

On a terminal it is a live tqdm bar on stdout (progress is output, not an
error): done/total, rate, ETA and ``failed=N``. Anywhere else (cron, a pipe,
a file) it shows nothing at all:
there the ``progress_update`` events in the log and the script's one-line
summary do the job.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from typing import IO, Any

from tqdm import tqdm

_DONE = ("item_complete", "item_error", "item_skipped")
_STARTS = ("run_start", "sequential_start", "parallel_start")
_FALLBACK_COLUMNS = 80


class ProgressBar:
    """A Telemetry observer: ``telemetry.add_observer(ProgressBar(total))``.

    ``enabled=None`` shows the bar only when ``file`` (default stdout) is a
    terminal; ``True``/``False`` force it on or off.
    """

    def __init__(self, total: int, *, enabled: bool | None = None, file: IO[str] | None = None) -> None:
        stream = file if file is not None else sys.stdout
        self.enabled = _is_terminal(stream) if enabled is None else enabled
        self.done = 0
        self.failed = 0
        self._lock = threading.Lock()
        sized = _has_width(stream)
        self._bar = tqdm(
            total=max(int(total), 0),
            file=stream,
            disable=not self.enabled,
            unit="item",
            dynamic_ncols=sized,
            ncols=None if sized else _FALLBACK_COLUMNS,
            leave=True,
            desc="enriching",
            postfix="failed=0",
        )

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        with self._lock:
            if event_type in _DONE:
                self.done += 1
                if event_type == "item_error":
                    self.failed += 1
                    self._bar.set_postfix_str(f"failed={self.failed}", refresh=False)
                self._bar.update(1)
            elif event_type in _STARTS:
                total = data.get("total_items")
                if isinstance(total, int) and total >= 0 and total != self._bar.total:
                    self._bar.total = total
                    self._bar.refresh()

    def write(self, line: str) -> None:
        """Print a line above the bar without breaking it."""
        if self.enabled:
            self._bar.write(line, file=self._bar.fp)

    def close(self) -> None:
        with self._lock:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _has_width(stream: Any) -> bool:
    """False for a terminal that reports no size (a fresh pty, some CI consoles)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
