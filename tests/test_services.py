"""The shared limiter and retry policy, with an injected clock: no test sleeps for real."""

import asyncio

import pytest

from knowledge_pipeline.errors import ServiceError, ServiceUnavailableError
from knowledge_pipeline.services import RECOVERY_SECONDS, CircuitBreaker, RetryPolicy, ServiceGateway, ServiceLimiter
from knowledge_pipeline.telemetry import RunMetrics, Telemetry


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def recorder() -> tuple[Telemetry, list]:
    telemetry = Telemetry("test")
    seen: list = []
    telemetry.add_observer(lambda event_type, data: seen.append((event_type, data)))
    return telemetry, seen


def test_spacing_between_request_starts():
    time = FakeTime()
    limiter = ServiceLimiter("openai", 0.1, clock=time.clock, sleep=time.sleep)

    async def starts() -> list[float]:
        stamps = []
        for _ in range(5):
            await limiter.acquire()
            stamps.append(round(time.now, 6))
        return stamps

    assert asyncio.run(starts()) == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_zero_spacing_disables_the_gate():
    time = FakeTime()
    limiter = ServiceLimiter("web:x", 0.0, clock=time.clock, sleep=time.sleep)

    async def go() -> None:
        for _ in range(10):
            await limiter.acquire()

    asyncio.run(go())
    assert time.sleeps == []


def test_a_429_halves_the_rate_for_everyone_but_pauses_no_other_request():
    time = FakeTime()
    telemetry, seen = recorder()
    limiter = ServiceLimiter("notion", 0.1, telemetry=telemetry, clock=time.clock, sleep=time.sleep)
    asyncio.run(limiter.acquire())
    limiter.on_rate_limited(retry_after=2.0)
    assert limiter.interval == pytest.approx(0.2)
    asyncio.run(limiter.acquire())
    assert time.now == pytest.approx(0.1), "only the request that got the 429 waits its Retry-After (the retry)"
    [adjusted] = [d for e, d in seen if e == "rate_limit_adjusted"]
    assert adjusted["reason"] == "slow_down" and adjusted["retry_after"] == 2.0


def test_429s_within_one_retry_after_window_are_one_slow_down():
    time = FakeTime()
    limiter = ServiceLimiter("notion", 0.1, clock=time.clock, sleep=time.sleep)
    for _ in range(5):
        limiter.on_rate_limited(retry_after=1.0)
        time.now += 0.1
    assert limiter.interval == pytest.approx(0.2), "replies to requests sent before the first 429 add nothing"
    time.now = 1.05
    limiter.on_rate_limited(retry_after=1.0)
    assert limiter.interval == pytest.approx(0.4), "a 429 after the window is a new signal"


def test_after_a_slow_down_successes_bring_the_configured_rate_back_within_seconds():
    time = FakeTime()
    telemetry, seen = recorder()
    limiter = ServiceLimiter("notion", 0.1, telemetry=telemetry, clock=time.clock, sleep=time.sleep)
    for n in range(4):
        time.now = n * 1.5
        limiter.on_rate_limited(retry_after=1.0)
    assert limiter.interval == pytest.approx(1.6)
    rates = []
    while limiter.interval > 0.1 and time.now < 60:
        time.now += 0.05
        limiter.on_success()
        rates.append(1 / limiter.interval)
    assert time.now - 4.5 <= RECOVERY_SECONDS + 0.1, "back to the configured rate within RECOVERY_SECONDS"
    steps = [later - earlier for earlier, later in zip(rates, rates[1:-1])]
    assert max(steps) - min(steps) < 0.01, "the rate climbs back linearly (additive increase)"
    assert [d["reason"] for e, d in seen if e == "rate_limit_adjusted"][-1] == "recovered"


def test_a_steady_429_share_costs_throughput_in_proportion_not_a_collapse():
    """Every 5th request gets a 429 (Retry-After 1 s): the service keeps most of its configured rate."""
    time = FakeTime()
    limiter = ServiceLimiter("notion", 0.0, max_rps=30, clock=time.clock, sleep=time.sleep)

    async def requests(count: int) -> int:
        ok = 0
        for n in range(count):
            await limiter.acquire()
            if n % 5 == 4:
                limiter.on_rate_limited(retry_after=1.0)
            else:
                limiter.on_success()
                ok += 1
        return ok

    ok = asyncio.run(requests(3000))
    successes_per_second = ok / time.now
    assert successes_per_second >= 0.6 * 30, successes_per_second


def test_notion_cap_averages_at_most_the_configured_rate():
    async def go() -> float:
        limiter = ServiceLimiter("notion", 0.0, max_rps=50)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(26):
            await limiter.acquire()
        return loop.time() - start

    elapsed = asyncio.run(go())
    assert elapsed >= 25 / 50 * 0.95


def gateway(retries: int = 3) -> tuple[ServiceGateway, FakeTime, list]:
    time = FakeTime()
    telemetry, seen = recorder()
    return (
        ServiceGateway(telemetry, spacing=0, retry=RetryPolicy(retries=retries), clock=time.clock, sleep=time.sleep),
        time,
        seen,
    )


def flaky(failures: list[Exception], result: str = "ok"):
    calls = {"n": 0}

    async def call() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return result

    return call, calls


def classify(exc: BaseException) -> ServiceError:
    return ServiceError("web", str(exc), retryable=True)


def test_retries_honour_retry_after_and_are_reported():
    gw, time, seen = gateway(retries=3)
    fn, calls = flaky(
        [ServiceError("openai", "slow down", status_code=429, retryable=True, retry_after=1.5),
         ServiceError("openai", "boom", status_code=503, retryable=True)]
    )
    assert asyncio.run(gw.call("openai", "chat", fn, classify=classify)) == "ok"
    assert calls["n"] == 3
    retries = [d for e, d in seen if e == "api_call_retry"]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert retries[0]["wait"] == 1.5 and retries[0]["status_code"] == 429
    assert 1.5 in time.sleeps
    assert [e for e, _ in seen if e.startswith("api_call")][-1] == "api_call_complete"


def test_the_look_before_a_retry_and_the_retry_each_take_their_own_limiter_slot():
    time = FakeTime()
    telemetry, _ = recorder()
    gw = ServiceGateway(telemetry, spacing=0.5, notion_max_rps=None, retry=RetryPolicy(retries=2, backoff_base=0),
                        clock=time.clock, sleep=time.sleep)
    sent: list[tuple[str, float]] = []
    failures = [ServiceError("notion", "lost reply", status_code=502, retryable=True)]

    async def write() -> str:
        sent.append(("write", time.now))
        if failures:
            raise failures.pop(0)
        return "written"

    async def look() -> None:
        async def lookup() -> None:
            sent.append(("look", time.now))

        await gw.call("notion", "blocks.children.list", lookup, classify=classify)
        return None

    result = asyncio.run(gw.call("notion", "blocks.children.append", write, classify=classify, before_retry=look))
    assert result == "written"
    assert sent == [("write", 0.0), ("look", 0.5), ("write", 1.0)]


def test_the_first_request_of_a_service_keeps_one_interval_from_its_end():
    """Its connection set-up makes it arrive late: the next start must not crowd it at the server."""
    time = FakeTime()
    telemetry, _ = recorder()
    gw = ServiceGateway(telemetry, spacing=0.5, notion_max_rps=None, clock=time.clock, sleep=time.sleep)
    sent: list[float] = []

    async def request(seconds: float) -> None:
        sent.append(time.now)
        await time.sleep(seconds)

    async def three() -> None:
        for seconds in (0.3, 0.01, 0.01):
            await gw.call("notion", "pages.update", lambda: request(seconds), classify=classify)

    asyncio.run(three())
    assert sent == [0.0, pytest.approx(0.8), pytest.approx(1.3)]


def test_what_the_look_before_a_retry_finds_is_the_result():
    gw, _, _ = gateway()
    fn, calls = flaky([ServiceError("notion", "lost reply", status_code=502, retryable=True)])

    async def landed() -> str:
        return "it landed"

    assert asyncio.run(gw.call("notion", "pages.create", fn, classify=classify, before_retry=landed)) == "it landed"
    assert calls["n"] == 1


def test_gives_up_after_the_retry_budget_with_one_error_event():
    gw, _, seen = gateway(retries=2)
    fn, calls = flaky([ServiceError("web", f"503 #{i}", status_code=503, retryable=True) for i in range(5)])
    with pytest.raises(ServiceError, match="503 #2"):
        asyncio.run(gw.call("web", "GET", fn, classify=classify))
    assert calls["n"] == 3
    assert [e for e, _ in seen if e.startswith("api_call")] == ["api_call_retry", "api_call_retry", "api_call_error"]


def test_non_retryable_errors_fail_at_once():
    gw, _, seen = gateway()
    fn, calls = flaky([ServiceError("notion", "validation_error", status_code=400)])
    with pytest.raises(ServiceError):
        asyncio.run(gw.call("notion", "pages.update", fn, classify=classify))
    assert calls["n"] == 1


def test_library_exceptions_are_classified_and_chained():
    gw, _, _ = gateway(retries=0)

    async def broken() -> None:
        raise ConnectionResetError("reset by peer")

    with pytest.raises(ServiceError) as info:
        asyncio.run(gw.call("web", "GET", broken, classify=classify))
    assert isinstance(info.value.__cause__, ConnectionResetError)


def test_metrics_count_every_request_retry_and_tokens():
    gw, _, _ = gateway(retries=3)
    metrics = RunMetrics()
    gw.telemetry.add_observer(metrics)
    fn, _ = flaky([ServiceError("openai", "x", status_code=500, retryable=True)], result="done")
    asyncio.run(
        gw.call("openai", "chat", fn, classify=classify,
                fields=lambda r: {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                                  "estimated_cost_usd": 0.001})
    )
    summary = metrics.summary()["api_calls"]["openai"]
    assert (summary["count"], summary["errors"], summary["retries"]) == (2, 1, 1)
    assert summary["tokens"]["total"] == 15 and summary["estimated_cost_usd"] == 0.001


def test_retry_after_from_headers_prefers_milliseconds_and_reads_dates():
    from knowledge_pipeline.services import retry_after_seconds

    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "Sat, 28 Nov 2026 10:00:30 GMT"},
                               now=lambda: 1795860000.0) == 30.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def breaker_gateway(threshold: int = 3) -> tuple[ServiceGateway, list]:
    time = FakeTime()
    telemetry, seen = recorder()
    breaker = CircuitBreaker({"openai": "http://user:pw@llm.local/v1"}, threshold, telemetry)
    gw = ServiceGateway(telemetry, spacing=0, retry=RetryPolicy(retries=0), clock=time.clock, sleep=time.sleep,
                        breaker=breaker)
    return gw, seen


def down(service: str, code: str = "connection_error"):
    calls = {"n": 0}

    async def call() -> str:
        calls["n"] += 1
        raise ServiceError(service, f"{service} {code}", code=code, retryable=True)

    return call, calls


def test_the_breaker_opens_after_failures_in_a_row_and_then_sends_nothing():
    gw, seen = breaker_gateway(threshold=3)
    fn, calls = down("openai", "timeout")
    for _ in range(2):
        with pytest.raises(ServiceError):
            asyncio.run(gw.call("openai", "chat", fn, classify=classify))
    with pytest.raises(ServiceUnavailableError) as opened:
        asyncio.run(gw.call("openai", "chat", fn, classify=classify))
    assert str(opened.value).startswith("openai is unreachable at http://llm.local/v1: 3 connection failures")
    with pytest.raises(ServiceUnavailableError):
        asyncio.run(gw.call("openai", "chat", fn, classify=classify))
    assert calls["n"] == 3, "an open breaker sends no request"
    assert [d["service"] for e, d in seen if e == "service_unavailable"] == ["openai"]


def test_any_answer_closes_the_streak_and_web_hosts_never_open_it():
    gw, _ = breaker_gateway(threshold=2)
    fn, _ = down("openai")
    answered, _ = flaky([ServiceError("openai", "bad request", status_code=400)])
    for _ in range(3):
        with pytest.raises(ServiceError) as failed:
            asyncio.run(gw.call("openai", "chat", fn, classify=classify))
        assert not isinstance(failed.value, ServiceUnavailableError)
        with pytest.raises(ServiceError):
            asyncio.run(gw.call("openai", "chat", answered, classify=classify))
        answered, _ = flaky([ServiceError("openai", "bad request", status_code=400)])
    dead_host, _ = down("web")
    for _ in range(5):
        with pytest.raises(ServiceError) as failed:
            asyncio.run(gw.call("web", "GET", dead_host, classify=classify, limiter_key="web:dead.example"))
        assert not isinstance(failed.value, ServiceUnavailableError)


def test_the_attempt_that_opens_the_breaker_is_reported_with_what_it_cost():
    """A timed-out LLM call is billed by the provider: the one that opens the breaker keeps its api_call_error
    (and the estimated tokens the enricher put on the error), like every other last attempt."""
    gw, seen = breaker_gateway(threshold=1)

    async def timed_out() -> str:
        error = ServiceError("openai", "openai timeout", code="timeout", retryable=True)
        error.fields = {"prompt_tokens": 5510, "estimated": True}
        raise error

    with pytest.raises(ServiceUnavailableError):
        asyncio.run(gw.call("openai", "chat", timed_out, classify=classify))
    [error] = [d for e, d in seen if e == "api_call_error"]
    assert error["prompt_tokens"] == 5510 and error["error_type"] == "timeout"
