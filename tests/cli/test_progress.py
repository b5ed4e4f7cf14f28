from __future__ import annotations

import io
import os
import select

from knowledge_pipeline.cli.progress import ProgressBar
from knowledge_pipeline.telemetry import Telemetry


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(bar: ProgressBar, *events: str) -> None:
    telemetry = Telemetry("knowledge_pipeline.test_progress")
    telemetry.add_observer(bar)
    for index, event in enumerate(events):
        telemetry.event(event, event, item_id=f"i{index}")
    bar.close()


def test_terminal_shows_done_total_rate_eta_and_failures() -> None:
    screen = _Terminal()
    bar = ProgressBar(4, file=screen)
    assert bar.enabled
    _feed(bar, "item_start", "item_complete", "item_error", "item_skipped", "api_call_complete", "item_error")
    final = screen.getvalue().rstrip("\n").split("\r")[-1]
    assert "4/4" in final
    assert "item/s" in final
    assert "<00:00" in final  # elapsed<remaining
    assert "failed=2" in final
    assert (bar.done, bar.failed) == (4, 2)


def test_not_a_terminal_prints_nothing() -> None:
    output = io.StringIO()
    bar = ProgressBar(3, file=output)
    assert not bar.enabled
    _feed(bar, "item_complete", "item_error", "item_skipped")
    bar.write("a line")
    assert output.getvalue() == ""
    assert (bar.done, bar.failed) == (3, 1)


def test_enabled_overrides_detection() -> None:
    screen = _Terminal()
    _feed(ProgressBar(1, file=screen, enabled=False), "item_complete")
    assert screen.getvalue() == ""
    forced = io.StringIO()
    _feed(ProgressBar(1, file=forced, enabled=True), "item_complete")
    assert "1/1" in forced.getvalue()


def test_total_follows_the_run_start_event() -> None:
    screen = _Terminal()
    bar = ProgressBar(0, file=screen)
    telemetry = Telemetry("knowledge_pipeline.test_progress")
    telemetry.add_observer(bar)
    telemetry.event("run_start", "start", total_items=5)
    telemetry.event("item_complete", "done", item_id="a")
    bar.close()
    assert "1/5" in screen.getvalue().split("\r")[-1]


def test_real_pseudo_terminal_is_detected() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", encoding="utf-8", closefd=True) as terminal:
            bar = ProgressBar(2, file=terminal)
            assert bar.enabled
            _feed(bar, "item_complete", "item_complete")
            terminal.flush()
            seen = b""
            while select.select([master], [], [], 0.2)[0]:
                chunk = os.read(master, 65536)
                if not chunk:
                    break
                seen += chunk
    finally:
        os.close(master)
    assert "2/2" in seen.decode("utf-8", "replace")
