"""The per-run spending budget (``MAX_COST_USD``)."""

from __future__ import annotations

import threading


class Budget:
    """Money spent in this run against an optional limit.

    The enricher adds what each call cost; the scheduler asks ``exhausted``
    before starting an item, so an item in flight always finishes. Requests
    handed to a batch are paid later, when their results come back; what they
    are expected to cost is ``reserved`` meanwhile, so one run cannot submit
    more than ``MAX_COST_USD`` worth of batch requests.
    """

    def __init__(self, limit_usd: float | None = None) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self._lock = threading.Lock()

    def add(self, cost_usd: float | None) -> None:
        if cost_usd:
            with self._lock:
                self.spent_usd += cost_usd

    def reserve(self, cost_usd: float | None) -> None:
        if cost_usd:
            with self._lock:
                self.reserved_usd += cost_usd

    @property
    def exhausted(self) -> bool:
        return self.limit_usd is not None and self.spent_usd + self.reserved_usd >= self.limit_usd
