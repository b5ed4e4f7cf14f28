"""Feed health over several runs: back-off, pause after FEED_MAX_ERRORS, resume, Retry-After, dead hosts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from knowledge_pipeline.errors import ServiceError
from knowledge_pipeline.feeds import manage
from knowledge_pipeline.feeds.health import PERMANENT, TRANSIENT, error_kind, retry_delay
from knowledge_pipeline.feeds.state import FeedStateStore
from tests.extract.support import make_settings
from tests.fakes.feed_server import FakeFeedServer, rss_document
from tests.feeds.support import NOW, poll


def test_transient_back_off_doubles_from_15_minutes_and_stops_at_a_day():
    delays = [retry_delay(TRANSIENT, n) for n in range(1, 11)]
    assert delays[:4] == [timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2)]
    assert delays[-1] == timedelta(days=1) and max(delays) == timedelta(days=1)


def test_permanent_failures_are_retried_four_times_less_often_at_most_every_three_days():
    assert retry_delay(PERMANENT, 1) == timedelta(hours=1)
    assert retry_delay(PERMANENT, 3) == 4 * retry_delay(TRANSIENT, 3)
    assert retry_delay(PERMANENT, 30) == timedelta(days=3)


@pytest.mark.parametrize(
    "error, kind",
    [
        (ServiceError("web", "x", status_code=404), PERMANENT),
        (ServiceError("web", "x", status_code=410), PERMANENT),
        (ServiceError("web", "x", status_code=401), PERMANENT),
        (ServiceError("web", "x", status_code=403), PERMANENT),
        (ServiceError("web", "x", code="dns_not_found"), PERMANENT),
        (ServiceError("web", "x", status_code=500), TRANSIENT),
        (ServiceError("web", "x", status_code=429), TRANSIENT),
        (ServiceError("web", "x", code="timeout"), TRANSIENT),
        (ServiceError("web", "x", code="dns_error"), TRANSIENT),
    ],
)
def test_error_kinds(error, kind):
    assert error_kind(error) == kind


def _state(tmp_path, url):
    with FeedStateStore(tmp_path / "feeds.db", read_only=True) as state:
        from knowledge_pipeline.feeds.opml import feed_key

        return state.get(feed_key(url))


def test_a_gone_feed_backs_off_then_is_paused_once_with_how_to_resume(tmp_path):
    with FakeFeedServer() as server:
        gone = server.gone("old.test", "/rss")
        ok = server.feed("news.test", "/rss", rss_document("news.test", 3))
        first = poll(tmp_path, server, [gone, ok], feed_max_errors="3")
        assert sorted(first.statuses()) == ["failing", "ok"]
        assert first.events.of("feed_error")[0]["error_kind"] == "permanent"
        too_soon = poll(tmp_path, server, [gone, ok], now=NOW + timedelta(minutes=30), feed_max_errors="3")
        assert len(server.requests_to("old.test")) == 1, "not retried before its back-off is over"
        assert "failing" in too_soon.statuses()
        later = NOW
        for _ in range(2):
            later += timedelta(days=3, minutes=1)
            last = poll(tmp_path, server, [gone, ok], now=later, feed_max_errors="3")
        assert len(server.requests_to("old.test")) == 3
        paused = last.events.of("feed_paused")
        assert len(paused) == 1
        assert paused[0]["resume_command"] == f"python3 -m knowledge_pipeline feeds resume {gone}"
        assert "HTTP 410" in paused[0]["error"] and paused[0]["consecutive_errors"] == 3
        again = poll(tmp_path, server, [gone, ok], now=later + timedelta(days=30), feed_max_errors="3")
        assert len(server.requests_to("old.test")) == 3, "a paused feed is not polled"
        assert again.events.of("feed_paused") == [] and "paused" in again.statuses()
        assert _state(tmp_path, gone).paused
        settings = make_settings(rss_feeds=f"{gone},{ok}", feed_state_path=str(tmp_path / "feeds.db"),
                                 feeds_file=str(tmp_path / "none.opml"))
        manage.resume_feed(settings, gone)
        poll(tmp_path, server, [gone, ok], now=later + timedelta(days=30), feed_max_errors="3")
        assert len(server.requests_to("old.test")) == 4, "resumed: read again at the next run"


def test_a_success_clears_the_error_count(tmp_path):
    with FakeFeedServer() as server:
        url = server.gone("flaky.test", "/rss", status=503)
        poll(tmp_path, server, [url])
        assert _state(tmp_path, url).consecutive_errors == 1
        server.feed("flaky.test", "/rss", rss_document("flaky.test", 2))
        result = poll(tmp_path, server, [url], now=NOW + timedelta(hours=1))
    state = _state(tmp_path, url)
    assert result.statuses() == ["ok"] and state.consecutive_errors == 0 and state.next_attempt is None
    assert state.last_error is None and len(result.items) == 2


def test_a_long_retry_after_pauses_that_host_only_and_is_remembered_across_runs(tmp_path):
    with FakeFeedServer() as server:
        busy = [server.feed("busy.test", f"/feed{n}", rss_document("busy.test", 2)) for n in range(4)]
        calm = server.feed("calm.test", "/rss", rss_document("calm.test", 2))
        server.busy("busy.test", retry_after=3600)
        first = poll(tmp_path, server, [*busy, calm])
        assert len(server.requests_to("busy.test")) == 2, "the two in flight got the 429; the others waited"
        assert sorted(first.statuses()) == ["deferred", "deferred", "failing", "failing", "ok"]
        paused = first.events.of("feed_host_paused")
        assert len(paused) == 1 and paused[0]["host"] == "busy.test" and paused[0]["retry_after"] == 3600
        server.busy("busy.test", None)
        next_run = poll(tmp_path, server, [*busy, calm], now=NOW + timedelta(minutes=20))
        assert len(server.requests_to("busy.test")) == 2, "the host's pause outlives the run"
        assert next_run.statuses().count("deferred") + next_run.statuses().count("failing") == 4
        after = poll(tmp_path, server, [*busy, calm], now=NOW + timedelta(hours=2))
        assert len(server.requests_to("busy.test")) == 6
        assert after.statuses().count("ok") == 4


def test_a_short_retry_after_is_waited_for_within_the_run(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("brief.test", "/rss", rss_document("brief.test", 2))
        server.busy("brief.test", retry_after=2, status=503)
        result = poll(tmp_path, server, [url], retries=2)
        statuses = server.stats()["hosts"]["brief.test"]["statuses"]
    assert statuses == {503: 3}, "retried by the gateway (Retry-After 2 s is short), not deferred"
    assert result.events.of("feed_host_paused") == []
    assert [e["wait"] for e in result.events.of("api_call_retry")] == [2.0, 2.0]


def test_slow_dead_and_unknown_hosts_fail_alone_with_their_kind(tmp_path):
    with FakeFeedServer() as server:
        slow = server.feed("slow.test", "/rss", rss_document("slow.test", 2))
        server.slow("slow.test", 3.0)
        server.down("down.test")
        server.missing("nowhere.test")
        ok = server.feed("news.test", "/rss", rss_document("news.test", 2))
        feeds = [slow, server.url("down.test", "/rss"), server.url("nowhere.test", "/rss"), ok]
        result = poll(tmp_path, server, feeds, api_timeout="0.5")
    errors = {e["source"]: (e["error_kind"], e["error"]) for e in result.events.of("feed_error")}
    assert errors[slow][0] == "transient" and "timed out" in errors[slow][1]
    assert errors[feeds[1]][0] == "transient" and "connection failed" in errors[feeds[1]][1]
    assert errors[feeds[2]][0] == "permanent" and "cannot resolve host nowhere.test" in errors[feeds[2]][1]
    assert len(result.items) == 2 and sorted(result.statuses()) == ["failing", "failing", "failing", "ok"]


def test_feeds_waiting_for_their_hosts_retry_after_are_not_failed_sources(tmp_path):
    """A cron run every 15 minutes against a host that asked for an hour: one failing run, then quiet runs."""
    with FakeFeedServer() as server:
        feeds = [server.feed("busy.test", f"/feed{n}", rss_document("busy.test", 2)) for n in range(3)]
        server.busy("busy.test", retry_after=3600)
        first = poll(tmp_path, server, feeds)
        feeds.append(server.feed("busy.test", "/feed9", rss_document("busy.test", 2)))  # added meanwhile
        later = poll(tmp_path, server, feeds, now=NOW + timedelta(minutes=20))
        assert len(server.requests_to("busy.test")) == 2
    outcome = sorted((e["status"], e["source_failed"]) for e in first.events.of("capture_complete"))
    assert outcome == [("deferred", None), ("failing", True), ("failing", True)], "the two that got the 429 failed"
    outcome = [(e["status"], e["source_failed"]) for e in later.events.of("capture_complete")]
    assert outcome == [("deferred", None)] * 4, "waiting for the host is not failing: no exit 1, no alert"
