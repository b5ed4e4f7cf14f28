"""Every external request goes through here: limiter -> retry -> timed call -> event.

One :class:`ServiceLimiter` per service (``openai``, ``notion``, ``web:<host>``)
is shared by all workers, so a 429 seen by one worker slows the service for
everyone. Retries are tenacity's, with the SDKs' own retries turned off, so
each retry is visible as an ``api_call_retry`` event.

Each adapter (Notion store, OpenAI enricher, web fetcher) passes a
``classify`` function that maps its library's exceptions to
:class:`ServiceError`, saying whether the failure is retryable and what
``Retry-After`` the server advised.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from .config import DEFAULT_OPENAI_BASE_URL, Settings
from .errors import ServiceError, ServiceUnavailableError
from .telemetry import Telemetry
from .urls import shown_url

if TYPE_CHECKING:
    from .models import Item

T = TypeVar("T")
Classifier = Callable[[BaseException], ServiceError]

MAX_RETRY_AFTER = 60.0
OUTAGE_CODES = frozenset({"connection_error", "timeout"})
DEFAULT_BREAKER_FAILURES = 5
RECOVERY_SECONDS = 1.0
_MIN_SLOW_INTERVAL = 0.05
_MAX_SLOW_FACTOR = 16.0
# Booked slots sit a hair above 1/max_rps so that even a window that catches the
# first and the last slot exactly stays at or under the cap (clock skew headroom).
_CAP_HEADROOM = 1.005


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` value: delta seconds or an HTTP date; None if absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now(), 0.0)


def retry_after_seconds(headers: Mapping[str, str] | None, now: Callable[[], float] = time.time) -> float | None:
    """The server's advised wait from response headers: ``retry-after-ms`` (OpenAI), else ``retry-after``."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"), now)


class ServiceLimiter:
    """Spacing between request starts, an average cap, and slow-down on 429.

    Every request start is booked on one grid of start times per service:
    the interval is ``spacing`` (``PARALLEL_RATE_LIMIT``) or ``1/max_rps``
    (``NOTION_MAX_RPS``), whichever is longer, so over any window of T
    seconds at most ``1 + T/interval`` requests start.

    On a 429 the rate is halved for every worker (multiplicative decrease),
    once per ``Retry-After`` window: the answers to requests sent before the
    slow-down took effect add nothing. The request that got the 429 waits the
    server's ``Retry-After`` before its retry (the gateway's wait); the other
    workers go on at the lower rate. Each success then adds rate back in
    proportion to the time since the last step (additive increase), so the
    configured rate returns within ``RECOVERY_SECONDS`` of successes. A
    steady share of 429s thus costs throughput in proportion to it instead
    of ratcheting the rate down.

    Booking slots ahead (rather than timing each wait from a late wake-up,
    as aiolimiter does) keeps the average at the cap instead of 2-3% under
    it: measured with ``make bench``, see docs/performance.md.

    With ``warm_up`` the service's first request is waited for before the
    next one is booked, one interval after its end: setting up the
    connection makes it reach the server late (measured: up to 0.16 s on
    loopback), and the request booked one interval after it then arrived
    close behind, 31 within 10 s for a cap of 30.
    """

    def __init__(
        self,
        name: str,
        spacing: float,
        max_rps: float | None = None,
        *,
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        warm_up: bool = False,
    ) -> None:
        self.name = name
        self.spacing = spacing
        self.max_rps = max_rps
        self.slow_factor = 1.0
        self._telemetry = telemetry
        self._clock = clock
        self._sleep = sleep
        self._next_start = 0.0
        self._hold_until = float("-inf")
        self._last_step = 0.0
        self._lock = asyncio.Lock()
        self._cold = warm_up
        self._warming: asyncio.Event | None = None

    @property
    def interval(self) -> float:
        base = max(self.spacing, _CAP_HEADROOM / self.max_rps if self.max_rps else 0.0)
        if self.slow_factor <= 1.0:
            return base
        return (base or _MIN_SLOW_INTERVAL) * self.slow_factor

    async def acquire(self) -> bool:
        """Wait for this request's start; True for a first request that must call :meth:`warmed` when done."""
        async with self._lock:
            if self._warming is not None:
                await self._warming.wait()
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self.interval
            first = self._cold
            if first:
                self._cold = False
                self._warming = asyncio.Event()
            if start > now:
                await self._sleep(start - now)
        return first

    def warmed(self) -> None:
        """The first request ended (answered or not): the next one starts one interval from now."""
        self._next_start = max(self._next_start, self._clock() + self.interval)
        if self._warming is not None:
            self._warming.set()
            self._warming = None

    def on_rate_limited(self, retry_after: float | None) -> None:
        now = self._clock()
        if now < self._hold_until:
            return
        self.slow_factor = min(self.slow_factor * 2.0, _MAX_SLOW_FACTOR)
        window = min(retry_after, MAX_RETRY_AFTER) if retry_after else 0.0
        self._hold_until = now + max(window, self.interval)
        self._last_step = now
        self._report("slow_down", retry_after)

    def on_success(self) -> None:
        if self.slow_factor <= 1.0:
            return
        now = self._clock()
        climb = (1.0 - 1.0 / _MAX_SLOW_FACTOR) / RECOVERY_SECONDS
        rate = min(1.0, 1.0 / self.slow_factor + climb * max(now - self._last_step, 0.0))
        self._last_step = now
        self.slow_factor = 1.0 / rate
        if rate >= 1.0:
            self.slow_factor = 1.0
            self._report("recovered", None)

    def _report(self, reason: str, retry_after: float | None) -> None:
        if self._telemetry is None:
            return
        interval = self.interval
        self._telemetry.event(
            "rate_limit_adjusted",
            f"{self.name}: {reason}, one request every {interval:.3f}s",
            level=logging.WARNING if reason == "slow_down" else logging.INFO,
            service=self.name,
            reason=reason,
            interval_seconds=round(interval, 4),
            requests_per_second=round(1.0 / interval, 3) if interval > 0 else None,
            retry_after=retry_after,
        )

class CircuitBreaker:
    """Opens for a service after ``threshold`` connection failures or timeouts in a row.

    Watched are the services every item needs (``openai``, ``notion``), not
    web hosts: a dead article host fails its item, never the run. Any answer
    from the service (a success, a 4xx, a 5xx) closes the streak. Once open,
    every further call to the service fails at once with
    :class:`ServiceUnavailableError` (a FatalRunError: the engine starts no new
    item). Items marked Failed during the streak with such an error failed
    only because of the outage: :meth:`casualties` lists them so the engine
    puts them back in the Inbox.
    """

    def __init__(self, base_urls: Mapping[str, str], threshold: int, telemetry: Telemetry | None = None) -> None:
        self.base_urls = {service: shown_url(url) for service, url in base_urls.items()}
        self.threshold = threshold
        self._telemetry = telemetry
        self._streak: dict[str, int] = {}
        self._open: dict[str, tuple[int, str]] = {}
        self._casualties: dict[str, list[tuple[Item, str]]] = {}

    def check(self, service: str) -> None:
        """Raise ServiceUnavailableError if the service's breaker is open."""
        if service in self._open:
            failures, last = self._open[service]
            raise ServiceUnavailableError(service, self.base_urls[service], failures, last)

    def answered(self, service: str) -> None:
        self._streak.pop(service, None)
        self._casualties.pop(service, None)

    def failed(self, service: str, error: ServiceError) -> ServiceUnavailableError | None:
        """Count a failed attempt; the error to raise instead when the breaker opens now."""
        if service not in self.base_urls:
            return None
        if error.code not in OUTAGE_CODES:
            self.answered(service)
            return None
        streak = self._streak[service] = self._streak.get(service, 0) + 1
        if streak < self.threshold or service in self._open:
            return None
        self._open[service] = (streak, str(error))
        outage = ServiceUnavailableError(service, self.base_urls[service], streak, str(error))
        if self._telemetry is not None:
            self._telemetry.event(
                "service_unavailable", str(outage), level=logging.ERROR, service=service,
                base_url=self.base_urls[service], failures=streak, error=str(error),
            )
        return outage

    def note_failed_item(self, item: Item, service: str | None, code: str | None, reason: str) -> None:
        """An item was marked Failed; keep it if the failure may be the outage's (its service is in a streak)."""
        if service in self._streak and code in OUTAGE_CODES:
            self._casualties.setdefault(service, []).append((item, reason))

    def casualties(self, service: str) -> list[tuple[Item, str]]:
        return list(self._casualties.get(service, ()))


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0


#: Set by the engine for each item it runs in parallel: called once the item's request got a 429 and is about
#: to wait out its ``Retry-After``. The wait holds no service capacity, so the engine starts another item in
#: the meantime (engine.py); unset, a wait is just a wait.
rate_limit_wait: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "rate_limit_wait", default=None)


class ServiceGateway:
    """Runs external calls under the service's limiter and retry policy, and reports them."""

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        spacing: float = 0.1,
        notion_max_rps: float | None = 3.0,
        retry: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.breaker = breaker or CircuitBreaker({}, DEFAULT_BREAKER_FAILURES, telemetry)
        self.spacing = spacing
        self.notion_max_rps = notion_max_rps
        self.retry = retry
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[str, ServiceLimiter] = {}

    @classmethod
    def from_settings(cls, settings: Settings, telemetry: Telemetry) -> ServiceGateway:
        """The gateway every command uses: spacing, Notion cap and retries from the settings."""
        base_urls = {"openai": settings.openai_base_url or DEFAULT_OPENAI_BASE_URL, "notion": settings.notion_base_url}
        return cls(
            telemetry,
            spacing=settings.parallel_rate_limit,
            notion_max_rps=settings.notion_max_rps,
            retry=RetryPolicy(retries=settings.retry_attempts),
            breaker=CircuitBreaker(base_urls, settings.circuit_breaker_failures, telemetry),
        )

    def limiter(self, key: str) -> ServiceLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            cap = self.notion_max_rps if key == "notion" else None
            limiter = ServiceLimiter(
                key, self.spacing, cap, telemetry=self.telemetry, clock=self._clock, sleep=self._sleep, warm_up=True
            )
            self._limiters[key] = limiter
        return limiter

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ServiceError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER)
        return wait_random_exponential(multiplier=self.retry.backoff_base, max=self.retry.backoff_max)(state)

    async def call(
        self,
        service: str,
        operation: str,
        fn: Callable[[], Awaitable[T]],
        *,
        classify: Classifier,
        limiter_key: str | None = None,
        fields: Callable[[T], dict[str, Any]] | None = None,
        context: dict[str, Any] | None = None,
        before_retry: Callable[[], Awaitable[T | None]] | None = None,
        max_retry_wait: float | None = None,
    ) -> T:
        """Call ``fn`` with limits and retries; raise ServiceError when it fails for good.

        Each attempt takes its own slot of the service's limiter right before
        it is sent. ``before_retry`` runs before every retry, outside that
        slot (its own requests take theirs): a non-idempotent write uses it to
        look whether a failed attempt landed after all, and its non-None
        result is returned instead of sending again. With ``max_retry_wait``, a
        failure whose ``Retry-After`` asks for a longer wait is not retried: the
        caller (feed capture) defers the work instead.
        """
        self.breaker.check(service)
        limiter = self.limiter(limiter_key or service)
        extra = dict(context or {})

        def retryable(exc: BaseException) -> bool:
            if not isinstance(exc, ServiceError) or not exc.retryable:
                return False
            return max_retry_wait is None or exc.retry_after is None or exc.retry_after <= max_retry_wait

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: self._report_retry(service, operation, state, extra),
        )
        async for attempt in retrying:
            number = attempt.retry_state.attempt_number
            with attempt:
                if number > 1 and before_retry is not None:
                    landed = await before_retry()
                    if landed is not None:
                        return landed
                first = await limiter.acquire()
                started = self._clock()
                try:
                    result = await fn()
                except Exception as exc:  # every library error is classified, none escapes raw
                    error = exc if isinstance(exc, ServiceError) else classify(exc)
                    error.duration = round(self._clock() - started, 4)
                    outage = self.breaker.failed(service, error)
                    if outage is not None:
                        self._report_error(service, operation, error, number, extra)  # its tokens, its event
                        raise outage from error
                    if error.status_code == 429:
                        limiter.on_rate_limited(error.retry_after)
                        lend = rate_limit_wait.get()
                        if lend is not None and retryable(error) and number <= self.retry.retries:
                            lend()
                    if not retryable(error) or number > self.retry.retries:
                        self._report_error(service, operation, error, number, extra)
                    if error is exc:
                        raise
                    raise error from exc
                finally:
                    if first:
                        limiter.warmed()
                duration = round(self._clock() - started, 4)
                limiter.on_success()
                self.breaker.answered(service)
                data = fields(result) if fields else {}
                self.telemetry.event(
                    "api_call_complete",
                    f"{service} {operation} ok in {duration:.3f}s",
                    level=logging.INFO,
                    service=service,
                    operation=operation,
                    duration=duration,
                    attempt=number,
                    **extra,
                    **data,
                )
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _report_error(
        self, service: str, operation: str, error: ServiceError, attempt: int, extra: dict[str, Any]
    ) -> None:
        fields = {**extra, **error.fields}
        if error.status_code is not None:
            fields["status_code"] = error.status_code
        self.telemetry.event(
            "api_call_error",
            f"{service} {operation} failed: {error}",
            level=logging.ERROR,
            service=service,
            operation=operation,
            duration=getattr(error, "duration", 0.0),
            error=str(error),
            error_type=error.code or type(error).__name__,
            attempt=attempt,
            **fields,
        )

    def _report_retry(self, service: str, operation: str, state: RetryCallState, extra: dict[str, Any]) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = round(state.next_action.sleep, 3) if state.next_action else None
        fields = {**extra, **(error.fields if isinstance(error, ServiceError) else {})}
        if isinstance(error, ServiceError) and error.status_code is not None:
            fields["status_code"] = error.status_code
        self.telemetry.event(
            "api_call_retry",
            f"{service} {operation} attempt {state.attempt_number} failed, retrying in {wait}s: {error}",
            level=logging.WARNING,
            service=service,
            operation=operation,
            attempt=state.attempt_number,
            wait=wait,
            duration=getattr(error, "duration", 0.0),
            error=str(error),
            **fields,
        )
