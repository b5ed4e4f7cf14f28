"""Scheduling: the sequential path and the ParallelEnricher run the same process_item().

Items reach one bounded queue as workers free up, so memory stays flat however
long the Inbox is: either pulled from a stream (the store's paginated Inbox),
or handed over by a *producer*, a coroutine that puts items as it finds them
and waits while the queue is full (enrich-first mode: pending items of a killed
run, then capture, then the Inbox; capture and enrichment overlap). Sequential
mode is the same engine with one worker. On a stop request (SIGINT/SIGTERM,
a fatal error, an exhausted budget) no new item starts; items in flight get
``grace`` seconds to finish and are then cancelled, which leaves them in the
Inbox for the next run (the journal repairs any half-written body). An item
whose request waits out a 429's ``Retry-After`` lends its worker slot to the
next item for the rest of its run (the wait uses no service, and the limiter
has already slowed every worker down), so at most twice the workers' items
are in flight, and a steady share of 429s costs throughput in proportion to
it rather than parking workers. Nothing
in the shutdown waits without bound (see shutdown.py): the producer is
cancelled rather than left blocked on a full queue, and a task that does not
end within CANCEL_WAIT of its cancellation is abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Union

from .budget import Budget
from .errors import FatalRunError, ServiceUnavailableError
from .models import Item, OutcomeKind
from .processing import Deps, process_item
from .services import rate_limit_wait
from .shutdown import CANCEL_WAIT, cancel_and_wait
from .telemetry import RunMetrics

# put(item) -> False once no new item may start (a stop, the budget); the producer should then return.
Put = Callable[[Item], Awaitable[bool]]
# Worker tasks per slot in parallel mode: a slot lent during a Retry-After wait is taken by a spare worker.
LENDING_FACTOR = 2
Producer = Callable[[Put], Awaitable[None]]


@dataclass
class EngineResult:
    interrupted: bool = False
    fatal_error: str | None = None
    budget_exhausted: bool = False
    cancelled: int = 0
    abandoned: int = 0


class ParallelEnricher:
    """Runs process_item over a stream of items with N workers under shared limits."""

    def __init__(
        self,
        deps: Deps,
        *,
        max_workers: int = 5,
        rate_limit: float = 0.1,
        metrics: RunMetrics | None = None,
        budget: Budget | None = None,
        stop: asyncio.Event | None = None,
        grace_seconds: float = 30.0,
        progress_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deps = deps
        self.max_workers = max_workers
        self.rate_limit = rate_limit
        self.metrics = metrics or RunMetrics()
        self.budget = budget or Budget()
        self.stop = stop or asyncio.Event()
        self.grace_seconds = grace_seconds
        self.progress_interval = progress_interval
        self._clock = clock
        self._result = EngineResult()
        self._outage: ServiceUnavailableError | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._last_progress = 0.0
        self._progress_step = 1
        self._last_completed = -1

    @property
    def telemetry(self):
        return self.deps.telemetry

    async def run(self, items: Union[AsyncIterator[Item], Producer], total: int, *,
                  mode: str = "parallel") -> EngineResult:
        """Process ``items`` (a stream, or a producer) with ``total`` known at the start.

        A producer that finds more items calls :meth:`count_more` so progress shows the growing total.
        """
        workers = self.max_workers if mode == "parallel" else 1
        self.metrics.items_total = total
        self._progress_step = max(1, total // 10)
        self._last_progress = self._clock()
        self.telemetry.event(
            f"{mode}_start",
            f"Starting {mode} processing of {total} items",
            total_items=total,
            max_workers=workers,
            rate_limit=self.rate_limit,
        )
        queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=workers)
        produce = items if callable(items) else _streamed(items)
        lending = mode == "parallel"
        slots = asyncio.Semaphore(workers)
        pool_size = workers * LENDING_FACTOR if lending else workers
        producer = asyncio.create_task(self._produce(produce, queue, pool_size))
        pool = [asyncio.create_task(self._work(queue, slots, lending)) for _ in range(pool_size)]
        tasks = [producer, *pool]
        try:
            failed = await self._until_done_stopped_or_failed(tasks)
            if not all(t.done() for t in tasks):
                if failed is None and self._result.fatal_error is None and not self._result.budget_exhausted:
                    self._result.interrupted = True
                await self._wind_down(producer, pool, queue)
                if failed is None and producer.done() and not producer.cancelled():
                    failed = producer.exception()  # capture failing during the wind-down (the store is gone)
        except asyncio.CancelledError:
            self._result.interrupted = True
            self._abandon(await cancel_and_wait([*tasks, *self._in_flight]))
            raise
        outage = self._outage or (failed if isinstance(failed, ServiceUnavailableError) else None)
        if outage is not None:
            await self._requeue(outage)
        if failed is not None:
            raise failed
        self._emit_progress(force=True)
        return self._result

    async def _until_done_stopped_or_failed(self, tasks: list[asyncio.Task]) -> BaseException | None:
        """Wait until every task is done, a stop is requested, or one task failed (whose error is returned).

        A failed producer (the Inbox cannot be read further) winds the run down like a stop.
        """
        stopping = asyncio.create_task(self.stop.wait())
        try:
            while True:
                failed = next((t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()),
                              None)
                if failed is not None or self.stop.is_set() or all(t.done() for t in tasks):
                    return failed
                await asyncio.wait({*[t for t in tasks if not t.done()], stopping},
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    async def _wind_down(self, producer: asyncio.Task, pool: list[asyncio.Task], queue: asyncio.Queue) -> None:
        """Stop pulling, let the items in flight finish within the grace period, then cancel (bounded).

        Nothing here waits on the queue: the items queued are dropped (they stay
        in the Inbox, or pending in the journal) and each worker gets its end
        marker as soon as the queue has room for it. The producer queues nothing more (``put`` answers False)
        and gets the same grace period to end, so a capture under way records
        what it finds for the next run instead of being cut mid-source.
        """
        while not queue.empty():
            queue.get_nowait()

        async def end_markers() -> None:
            for _ in pool:
                await queue.put(None)

        markers = asyncio.create_task(end_markers())
        await asyncio.wait([producer, *pool], timeout=self.grace_seconds)
        left = [t for t in (producer, *pool, markers) if not t.done()]
        if left:
            self._abandon(await cancel_and_wait([*left, *self._in_flight]))

    def _abandon(self, stuck: set[asyncio.Task]) -> None:
        if stuck:
            self._result.abandoned += len(stuck)
            self.telemetry.event(
                "shutdown_abandoned",
                f"{len(stuck)} task(s) did not end within {CANCEL_WAIT:g}s of their cancellation; left behind",
                level=logging.WARNING,
                tasks=len(stuck),
            )

    async def _produce(self, produce: Producer, queue: asyncio.Queue, pool_size: int) -> None:
        async def put(item: Item) -> bool:
            return self._may_start() and await self._enqueue(queue, item)

        await produce(put)
        for _ in range(pool_size):
            if not await self._enqueue(queue, None):
                return  # stopping: the wind-down gives the workers their end markers

    async def _enqueue(self, queue: asyncio.Queue, item: Item | None) -> bool:
        """Queue ``item``, waiting while the queue is full, unless a stop comes first (then False)."""
        if self.stop.is_set():
            return False
        if not queue.full():
            queue.put_nowait(item)
            return True
        putting = asyncio.ensure_future(queue.put(item))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({putting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not putting.done():
                putting.cancel()
        return putting.done() and not putting.cancelled()

    def count_more(self, count: int = 1) -> None:
        """The producer found ``count`` items more than the total the run started with."""
        self.metrics.items_total += count

    def _may_start(self) -> bool:
        if self.stop.is_set():
            return False
        if self.budget.exhausted:
            if not self._result.budget_exhausted:
                self._result.budget_exhausted = True
                self.telemetry.event(
                    "budget_exhausted",
                    f"Budget of ${self.budget.limit_usd:.2f} spent (${self.budget.spent_usd:.4f}); "
                    "remaining items stay in the Inbox",
                    level=logging.WARNING,
                    limit_usd=self.budget.limit_usd,
                    spent_usd=round(self.budget.spent_usd, 6),
                )
            self.stop.set()
            return False
        return True

    async def _work(self, queue: asyncio.Queue, slots: asyncio.Semaphore, lending: bool) -> None:
        while True:
            slot = await _Slot.take(slots)
            try:
                item = await queue.get()
            except BaseException:
                slot.release()
                raise
            if item is None or not self._may_start():
                slot.release()
                if item is None:
                    return
                continue
            lend = rate_limit_wait.set(slot.release if lending else None)
            try:
                task = asyncio.create_task(process_item(item, self.deps))
            finally:
                rate_limit_wait.reset(lend)
            self._in_flight.add(task)
            try:
                outcome = await asyncio.shield(task)
            except asyncio.CancelledError:
                task.cancel()
                self._result.cancelled += 1
                self.telemetry.event(
                    "item_cancelled",
                    f"Cancelled at shutdown, left in Inbox: {item.title}",
                    level=logging.WARNING,
                    item_id=item.id,
                    title=item.title,
                )
                raise
            except FatalRunError as exc:
                if isinstance(exc, ServiceUnavailableError) and self._outage is None:
                    self._outage = exc
                if self._result.fatal_error is None:
                    self._result.fatal_error = str(exc)
                    self.telemetry.event(
                        "run_aborted",
                        f"Stopping the run: {exc}",
                        level=logging.ERROR,
                        error=str(exc),
                        item_id=item.id,
                    )
                self.stop.set()
                continue
            finally:
                self._in_flight.discard(task)
                slot.release()
            if outcome.kind is not OutcomeKind.CANCELLED:
                self._emit_progress()

    async def _requeue(self, outage: ServiceUnavailableError) -> None:
        """Put back in the Inbox the items marked Failed only because ``outage.service`` was down."""
        if self.deps.breaker is None:
            return
        for item, reason in self.deps.breaker.casualties(outage.service):
            try:
                await self.deps.store.return_to_inbox(item)
            except Exception as exc:  # noqa: BLE001 - the service may still be down; the item stays Failed
                self.telemetry.event(
                    "item_requeue_failed", f"Could not put {item.title} back in the Inbox: {exc}",
                    level=logging.WARNING, item_id=item.id, title=item.title, error=str(exc),
                )
                continue
            self.telemetry.event(
                "item_requeued",
                f"Back in the Inbox (failed only because {outage.service} was down): {item.title}",
                level=logging.WARNING, item_id=item.id, title=item.title, service=outage.service, error=reason,
            )

    def _emit_progress(self, force: bool = False) -> None:
        completed = self.metrics.completed
        now = self._clock()
        due = completed % self._progress_step == 0 or now - self._last_progress >= self.progress_interval
        if completed == self._last_completed or not (force or (due and completed)):
            return
        self._last_progress = now
        self._last_completed = completed
        progress = self.metrics.progress()
        self.telemetry.event(
            "progress_update",
            f"Progress: {progress['completed']}/{progress['total']} "
            f"({progress['failed']} failed, {progress['items_per_second']:.2f} items/s)",
            **progress,
        )


class _Slot:
    """One of the workers' slots, held by the item running in it until it ends or lends it."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = True

    @classmethod
    async def take(cls, slots: asyncio.Semaphore) -> _Slot:
        await slots.acquire()
        return cls(slots)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


def _streamed(items: AsyncIterator[Item]) -> Producer:
    """A stream as a producer; the stream is closed (bounded wait) however the producer ends."""

    async def produce(put: Put) -> None:
        try:
            async for item in items:
                if not await put(item):
                    break
        finally:
            await close_stream(items)

    return produce


async def close_stream(items: AsyncIterator[Item]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        try:
            await asyncio.wait_for(close(), CANCEL_WAIT)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - closing must not mask the run's result
            pass
