"""How many feeds are fetched at once: ``FEED_CONCURRENCY`` in all, at most two per host.

A feed waits for its host's turn before it takes one of the shared slots, so
a host with many feeds never holds slots that feeds of other hosts could
use. The spacing between two requests to one host is the gateway's per-host
limiter (``web:<host>``, ``PARALLEL_RATE_LIMIT``), as for every web request.

A downloaded feed is parsed and stored under ``processing``, another
``FEED_CONCURRENCY`` slots, taken before its download slot is given back:
the next downloads start while it is processed, and no more than
``FEED_CONCURRENCY`` downloaded bodies ever wait in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

PER_HOST = 2


class HostGate:
    def __init__(self, concurrency: int, per_host: int = PER_HOST) -> None:
        self.concurrency = concurrency
        self.per_host = per_host
        self._all = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self.processing = asyncio.Semaphore(concurrency)

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        turn = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with turn:
            async with self._all:
                yield
