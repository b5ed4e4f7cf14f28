"""Stopping a run: it may take a grace period, it may never hang.

* First SIGINT/SIGTERM: ``stop`` is set. No new item starts; work in flight
  (capture, the items being enriched) gets ``SHUTDOWN_GRACE_SECONDS`` to end,
  then it is cancelled.
* Second signal: the run's main task is cancelled at once.
* A cancelled task that does not end within ``CANCEL_WAIT`` seconds (code that
  swallows the cancellation) is abandoned, never awaited without bound.
* Calls handed to a thread (parsing, file reads) run on daemon threads
  (:class:`DaemonThreadExecutor`): a call stuck in C code can neither be
  cancelled nor keep the process alive at exit.

Whatever happens, the run then writes its ``pipeline_summary``, releases its
locks and exits 130.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import threading
import weakref
from typing import Any, Awaitable, Callable, Coroutine, Iterable, TypeVar

from .telemetry import Telemetry

T = TypeVar("T")
CANCEL_WAIT = 5.0
_ABANDONED: weakref.WeakSet[asyncio.Task] = weakref.WeakSet()
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    """The run's answer to SIGINT/SIGTERM: first ``stop``, then cancel the main task."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.stop = asyncio.Event()
        self.signal: str | None = None
        self.forced = False
        self._main: asyncio.Task | None = None

    @property
    def interrupted(self) -> bool:
        return self.signal is not None

    def install(self) -> None:
        """Handle both signals in the running loop, on behalf of the current (main) task."""
        loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        for signum in SIGNALS:
            try:
                loop.add_signal_handler(signum, self._received, signum)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError):
                pass

    def _received(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.signal is None:
            self.signal = name
            self.telemetry.event(
                "shutdown_requested",
                f"{name} received: finishing work in flight, starting nothing new (again to stop at once)",
                level=logging.WARNING,
                signal=name,
            )
            self.stop.set()
        elif not self.forced:
            self.forced = True
            self.telemetry.event("shutdown_forced", f"{name} received again: cancelling everything now",
                                 level=logging.WARNING, signal=name)
            self.stop.set()
            if self._main is not None:
                self._main.cancel()


async def cancel_and_wait(tasks: Iterable[asyncio.Task], timeout: float = CANCEL_WAIT) -> set[asyncio.Task]:
    """Cancel ``tasks`` and wait at most ``timeout`` s for them to end; the ones that did not are returned.

    A task already abandoned by an earlier call is cancelled again but not waited for again.
    """
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    waited = {task for task in pending if task not in _ABANDONED}
    if not waited:
        return pending
    _, still = await asyncio.wait(waited, timeout=timeout)
    for task in still:
        _ABANDONED.add(task)
        # reported once as shutdown_abandoned; asyncio would log it again as an ERROR when it is collected
        with contextlib.suppress(AttributeError):
            task._log_destroy_pending = False  # type: ignore[attr-defined]
    return still | (pending - waited)


async def finish_or_cancel(work: Awaitable[T], stop: asyncio.Event, grace: float) -> T:
    """Await ``work``; once ``stop`` is set it has ``grace`` seconds more, then it is cancelled.

    Raises CancelledError when it was cut short (or when the caller is cancelled: the work is then
    cancelled too, with a bounded wait).
    """
    task = asyncio.ensure_future(work)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace)
    except asyncio.CancelledError:
        await cancel_and_wait([task])
        raise
    finally:
        stopping.cancel()
    if not task.done():
        await cancel_and_wait([task])
        raise asyncio.CancelledError
    return task.result()


class DaemonThreadExecutor(concurrent.futures.ThreadPoolExecutor):
    """Each call in a daemon thread of its own (a ThreadPoolExecutor only in name: asyncio requires one).

    ``ThreadPoolExecutor`` joins its threads at interpreter exit, so one call
    stuck for good (a parser in C code on hostile input) would keep the
    process alive for ever after the run ended. A daemon thread does not.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=call, name="knowledge-pipeline-call", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to join: the threads are daemons and each ends with its call."""


def run_bounded(main: Coroutine[Any, Any, T]) -> T:
    """Like ``asyncio.run``, but its clean-up cannot hang.

    ``asyncio.run`` waits without bound for leftover tasks to finish
    cancelling and for the default executor's threads; here leftover tasks
    get ``CANCEL_WAIT`` seconds and threads are daemons that are not waited for.
    """
    loop = asyncio.new_event_loop()
    loop.set_default_executor(DaemonThreadExecutor())
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
            if leftovers:
                loop.run_until_complete(cancel_and_wait(leftovers))
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), CANCEL_WAIT))
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        finally:
            asyncio.set_event_loop(None)
            loop.close()
