"""A real feed run whose extractor never returns, for the shutdown tests: ``python -m tests.stuck_run MODE``.

MODE ``thread``: the extraction blocks for good in a worker thread (a parser
stuck in C code); ``coroutine``: it awaits for good; ``ignores-cancel``: it
swallows every cancellation and keeps waiting. Settings come from the
environment as for the scripts; the file ``$STUCK_MARKER`` is created when the
first extraction starts, so the test knows when to send its signals.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.extract import Extracted, TextExtractor
from knowledge_pipeline.logging_setup import setup_logging
from knowledge_pipeline.models import Item
from knowledge_pipeline.runner import FEED_TYPES, RunOptions, run
from knowledge_pipeline.telemetry import Telemetry


class NeverReturns(TextExtractor):
    mode = "coroutine"

    async def read(self, item: Item, *, title: bool = False) -> Extracted:
        Path(os.environ["STUCK_MARKER"]).touch()
        if self.mode == "thread":
            await asyncio.to_thread(threading.Event().wait)
        elif self.mode == "coroutine":
            await asyncio.Event().wait()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue


def main(mode: str) -> int:
    NeverReturns.mode = mode
    settings = load_settings()
    setup_logging(settings, console="none")
    options = RunOptions(script="stuck_run", source_types=FEED_TYPES, capture="feeds", parallel=True,
                         extractor_factory=NeverReturns)
    return run(settings, options, Telemetry("stuck_run")).exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
