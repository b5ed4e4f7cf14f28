"""Fault tolerance against the fake servers, on every service (issue: reliability).

Each test runs the pipeline in process (``runner.run_async``) against the fake
Notion (the Sources store), the fake OpenAI (the enricher) and the fake web
server (the articles), with faults injected into one service at a time:
5xx answers, 429 with Retry-After, read timeouts (API_TIMEOUT below the
response time), replies lost after the server applied a write, connection
resets (a relay in front of the fake that resets a seeded share of
connections) and slow answers. With a retry budget every item ends Enriched
with one body; with RETRY_ATTEMPTS=0 and a permanent fault the item ends
Failed with the last error, and the run always ends with its summary and an
exit code, never a crash. ``--retry-failed`` then puts items back.
"""

from __future__ import annotations

import asyncio
import random
import selectors
import socket
import struct
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.runner import EXIT_FAILED, EXIT_OK, FEED_TYPES, RunOptions, RunResult, run_async
from knowledge_pipeline.sources.base import BODY_TOGGLES
from knowledge_pipeline.telemetry import Telemetry

from .fakes.notion_server import FakeNotion, start_fake_notion
from .fakes.openai_server import FakeOpenAI, start_fake_openai
from .fakes.web_server import FakeWebServer

SEED = 7
ITEMS = 6
SERVICES = ("notion", "openai", "web")


def article_html(n: int) -> str:
    text = "".join(
        f"<p>Anthropic released agent tooling, note {n}.{p}. Teams measured a {10 + p}% gain on coding "
        f"tasks across {p + 3} benchmarks, and analysts expect automation budgets to grow.</p>"
        for p in range(4)
    )
    return f"<html><head><title>Note {n}</title></head><body><article><h1>Note {n}</h1>{text}</article></body></html>"


class ResetProxy:
    """A TCP relay in front of a fake that resets a seeded share of exchanges.

    Each chunk going either way is, with probability ``share``, not relayed:
    both connections are closed with RST instead. A request reset on its way
    in never reached the server; a reply reset on its way out was already
    applied (a lost reply).
    """

    def __init__(self, upstream_url: str, share: float, seed: int = SEED) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.share = share
        self.resets = {"request": 0, "reply": 0}
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = False
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}{parts.path}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        """Both directions in one thread, so a reset closes sockets nobody else is reading."""
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        peers = {client: (server, "request"), server: (client, "reply")}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select():
                        source = key.fileobj
                        sink, direction = peers[source]
                        chunk = source.recv(65536)
                        if not chunk:
                            return
                        if self._reset(direction):
                            for sock in peers:
                                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                            return
                        sink.sendall(chunk)
            except OSError:
                return
            finally:
                for sock in peers:
                    sock.close()

    def _reset(self, direction: str) -> bool:
        with self._lock:
            if self._random.random() >= self.share:
                return False
            self.resets[direction] += 1
            return True


@dataclass
class World:
    notion: FakeNotion
    openai: FakeOpenAI
    web: FakeWebServer
    tmp_path: Path
    env: dict[str, str]
    page_ids: list[str]
    proxies: dict[str, ResetProxy] = field(default_factory=dict)


@contextmanager
def world(tmp_path: Path, *, schema: str = "full", resets: str | None = None, **env: str) -> Iterator[World]:
    """The three fakes, ITEMS Inbox pages with articles, settings; ``resets`` puts a ResetProxy before a service."""
    with ExitStack() as stack:
        notion = stack.enter_context(start_fake_notion(database=schema, rps=None, seed=SEED))
        openai = stack.enter_context(start_fake_openai(seed=SEED))
        web = stack.enter_context(FakeWebServer(seed=SEED))
        urls = {"notion": notion.url, "openai": openai.url, "web": web.url}
        proxies = {}
        if resets:
            proxies[resets] = ResetProxy(urls[resets], share=0.05)
            stack.callback(proxies[resets].close)
            urls[resets] = proxies[resets].url
        rows = []
        for n in range(ITEMS):
            web.page(f"/a/{n}", article_html(n))
            rows.append({"Title": f"Note {n}", "Status": "Inbox", "Source Type": "RSS",
                         "Article URL": f"{urls['web']}/a/{n}", "Hash": f"hash-{n}"})
        settings = {
            "SOURCES_BACKEND": "notion",
            "NOTION_TOKEN": notion.token,
            "NOTION_SOURCES_DB": notion.database_id,
            "NOTION_BASE_URL": urls["notion"],
            "NOTION_MAX_RPS": "500",
            "ENRICHER": "openai",
            "OPENAI_API_KEY": openai.api_key,
            "OPENAI_BASE_URL": urls["openai"],
            "ALLOW_PRIVATE_URLS": "true",
            "JOURNAL_PATH": str(tmp_path / "journal.db"),
            "PARALLEL_RATE_LIMIT": "0",
            "PARALLEL_MAX_WORKERS": "3",
            "RETRY_ATTEMPTS": "8",
            "API_TIMEOUT": "5",
            **env,
        }
        yield World(notion, openai, web, tmp_path, settings, notion.seed(rows), proxies)


@dataclass
class Outcome:
    result: RunResult
    events: list[tuple[str, dict]]

    def of(self, event_type: str) -> list[dict]:
        return [data for kind, data in self.events if kind == event_type]

    def retries(self, service: str) -> list[dict]:
        return [e for e in self.of("api_call_retry") if e["service"].startswith(service)]


def run(w: World, *, parallel: bool = True, retry_failed: bool = False, reason: str | None = None,
        **env: str) -> Outcome:
    settings = load_settings({**w.env, **env}, env_file=None)
    recorded: list[tuple[str, dict]] = []
    telemetry = Telemetry("tests.fault_tolerance")
    telemetry.add_observer(lambda kind, data: recorded.append((kind, data)))
    options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="none",
                         parallel=parallel, retry_failed=retry_failed, retry_reason=reason)
    result = asyncio.run(run_async(settings, options, telemetry))
    outcome = Outcome(result, recorded)
    [summary] = outcome.of("pipeline_summary")
    assert summary["exit_code"] == result.exit_code, "every run ends with its summary"
    return outcome


def toggles(notion: FakeNotion, page_id: str) -> list[str]:
    return ["".join(p["plain_text"] for p in b["toggle"]["rich_text"])
            for b in notion.blocks_of(page_id) if b["type"] == "toggle"]


def statuses(w: World) -> list[str]:
    return [w.notion.values(p)["Status"] for p in w.page_ids]


def check_all_enriched_once(w: World) -> None:
    for n, page_id in enumerate(w.page_ids):
        values = w.notion.values(page_id)
        assert values["Status"] == "Enriched", (n, values)
        assert toggles(w.notion, page_id) == list(BODY_TOGGLES), (n, toggles(w.notion, page_id))
        assert values["Summary"] and values["Vendor"] == "Anthropic" and values["Error"] == ""


# --- recoverable faults: with a retry budget every item ends Enriched ----------------------------

Inject = Callable[[World], None]

RECOVERABLE: dict[str, tuple[str, Inject, dict[str, str]]] = {
    "notion-5xx": ("notion", lambda w: w.notion.configure(error_share=0.2), {}),
    "notion-429-retry-after": ("notion", lambda w: (
        w.notion.fail_next(429, retry_after=0, method="POST", path="/query"),
        w.notion.fail_next(429, count=2, retry_after=1, method="PATCH", path="/children")), {}),
    "notion-lost-replies": ("notion", lambda w: (
        w.notion.configure(lost_reply_share=0.1),
        w.notion.fail_next(500, method="PATCH", path="/children", after_apply=True),
        w.notion.fail_next(502, method="PATCH", path="/v1/pages/", after_apply=True)), {}),
    "notion-read-timeouts": ("notion", lambda w: w.notion.configure(latency=0.25, jitter=0.1), {"API_TIMEOUT": "0.3"}),
    "notion-connection-resets": ("notion", lambda w: None, {}),
    "openai-5xx": ("openai", lambda w: w.openai.configure(error_rate_5xx=0.2), {}),
    "openai-429-retry-after": ("openai", lambda w: w.openai.configure(
        script=[{"status": 429, "retry_after": 1}, {}, {"status": 429, "retry_after_ms": 20}]), {}),
    "openai-read-timeouts": ("openai", lambda w: w.openai.configure(script=[{"latency": 0.6}, {}, {"latency": 0.6}]),
                             {"API_TIMEOUT": "0.3"}),
    "openai-connection-resets": ("openai", lambda w: None, {}),
    "web-5xx": ("web", lambda w: w.web.configure(error_rate=0.2), {}),
    "web-429-retry-after": ("web", lambda w: w.web.configure(rate_limit_rate=0.1, retry_after=0), {}),
    "web-read-timeouts": ("web", lambda w: w.web.configure(jitter=0.5), {"API_TIMEOUT": "0.3"}),
    "web-connection-resets": ("web", lambda w: None, {}),
}


@pytest.mark.parametrize("case", list(RECOVERABLE))
def test_with_a_retry_budget_every_item_ends_enriched_with_one_body(tmp_path: Path, case: str):
    service, inject, env = RECOVERABLE[case]
    with world(tmp_path, resets=service if case.endswith("connection-resets") else None, **env) as w:
        inject(w)
        outcome = run(w)
        check_all_enriched_once(w)
        if w.proxies:
            assert sum(w.proxies[service].resets.values()) > 0
    assert outcome.result.exit_code == EXIT_OK, outcome.result.error
    retries = outcome.retries(service)
    assert retries, f"the {service} faults were met and retried"
    if case in ("notion-429-retry-after", "openai-429-retry-after"):
        assert 1.0 in [r["wait"] for r in retries], "the server's Retry-After is the wait"
    assert not outcome.of("item_error")
    assert outcome.of("pipeline_summary")[0]["metrics"]["items_processed"] == ITEMS


def test_slow_answers_everywhere_only_take_longer(tmp_path: Path):
    """Each answer takes under a third of API_TIMEOUT, each item's four or more answers together more than all of it.

    The margin of each request (over 1 s) is what a loaded machine needs: with 0.15 s, a GET answered
    in 0.25 s still timed out at 0.4 s now and then. An item's own deadline is not API_TIMEOUT.
    """
    with world(tmp_path, API_TIMEOUT="1.5") as w:
        w.notion.configure(latency=0.45)
        w.openai.configure(latency=0.45)
        w.web.configure(latency=0.45)
        outcome = run(w, PARALLEL_MAX_WORKERS=str(ITEMS))
        check_all_enriched_once(w)
    assert outcome.result.exit_code == EXIT_OK
    assert not outcome.of("api_call_retry")
    assert min(e["duration"] for e in outcome.of("item_complete")) > 1.5


# --- permanent faults without retries: Failed with the last error, never a crash -----------------

PERMANENT: dict[str, tuple[Inject, dict[str, str], str]] = {
    "web-503": (lambda w: w.web.route("/a/0", status=503, body=b"down"), {}, "HTTP 503 for http://"),
    "web-timeout": (lambda w: w.web.page("/a/0", article_html(0), delay=1.5), {"API_TIMEOUT": "0.5"},
                    "timed out after 0.5s fetching http://"),
    "openai-500": (lambda w: w.openai.configure(script=["500"]), {}, "OpenAI server error (500"),
    "openai-429": (lambda w: w.openai.configure(script=[{"status": 429, "retry_after": 0}]), {},
                   "OpenAI rate limit (429"),
    "openai-timeout": (lambda w: w.openai.configure(script=[{"latency": 1.5}]), {"API_TIMEOUT": "0.5"},
                       "OpenAI request timed out after 0.5s"),
    "notion-503-on-the-status-update": (
        lambda w: w.notion.fail_next(503, method="PATCH", path=f"/v1/pages/{w.page_ids[0]}"), {},
        "Notion service_unavailable (503)"),
    "notion-lost-reply-to-the-append": (
        lambda w: w.notion.fail_next(500, method="PATCH", path=f"/v1/blocks/{w.page_ids[0]}/children",
                                     after_apply=True), {},
        "Notion internal_server_error (500)"),
}


@pytest.mark.parametrize("case", list(PERMANENT))
def test_without_retries_a_permanent_fault_fails_that_item_with_the_last_error(tmp_path: Path, case: str):
    inject, env, reason = PERMANENT[case]
    with world(tmp_path, RETRY_ATTEMPTS="0", **env) as w:
        inject(w)
        outcome = run(w, parallel=False)
        first = w.notion.values(w.page_ids[0])
        assert first["Status"] == "Failed" and first["Error"].startswith(reason), first
        assert toggles(w.notion, w.page_ids[0]) == [], "a failed item keeps no half-written body"
        assert statuses(w)[1:] == ["Enriched"] * (ITEMS - 1), "the run went on"
        [error] = outcome.of("item_error")
        assert error["item_id"] == w.page_ids[0] and error["error"].startswith(reason)
        assert outcome.result.exit_code == EXIT_OK, "1 failure in 6 is under ALERT_FAILURE_RATE"

        w.web.page("/a/0", article_html(0))
        retried = run(w, retry_failed=True)
        assert retried.result.retried == 1
        check_all_enriched_once(w)


@pytest.mark.parametrize("service", SERVICES)
def test_an_outage_of_one_service_ends_the_run_with_exit_1_and_its_summary(tmp_path: Path, service: str):
    with world(tmp_path, RETRY_ATTEMPTS="0", ALERT_WEBHOOK_URL="") as w:
        {"notion": lambda: w.notion.configure(error_share=1.0),
         "openai": lambda: w.openai.configure(error_rate_5xx=1.0),
         "web": lambda: w.web.configure(error_rate=1.0)}[service]()
        outcome = run(w)
        w.notion.configure(error_share=0.0)
        after = statuses(w)
    assert outcome.result.exit_code == EXIT_FAILED
    if service == "notion":
        assert "Notion" in outcome.result.error and "50" in outcome.result.error
        assert after == ["Inbox"] * ITEMS, "nothing could be written: every item waits for the next run"
    else:
        assert after == ["Failed"] * ITEMS
        assert {e["error_type"] for e in outcome.of("item_error")} <= {"server_error", "overloaded", "http_503",
                                                                         "service_error"}
    assert outcome.of("alert"), "a failed run raises an alert"


# --- --retry-failed ------------------------------------------------------------------------------


def test_retry_failed_by_reason_then_all(tmp_path: Path):
    with world(tmp_path, RETRY_ATTEMPTS="0") as w:
        w.web.route("/a/0", status=503, body=b"down")
        w.web.route("/a/1", status=404, body=b"gone")
        w.openai.configure(script=[{"status": 500}])
        first = run(w, parallel=False)
        errors = [w.notion.values(p)["Error"] for p in w.page_ids]
        assert statuses(w)[:3] == ["Failed"] * 3, errors
        assert errors[0].startswith("HTTP 503") and errors[1].startswith("HTTP 404")
        assert errors[2].startswith("OpenAI server error (500")
        assert first.result.exit_code == EXIT_OK

        for n in (0, 1):
            w.web.page(f"/a/{n}", article_html(n))
        nothing = run(w, retry_failed=True, reason="no such reason")
        assert nothing.result.retried == 0 and statuses(w)[:3] == ["Failed"] * 3
        web_only = run(w, retry_failed=True, reason="http 503")
        assert web_only.result.retried == 1, "the reason matches case-insensitively, as a substring"
        assert statuses(w)[:3] == ["Enriched", "Failed", "Failed"]
        rest = run(w, retry_failed=True)
        assert rest.result.retried == 2
        check_all_enriched_once(w)
        assert [e["count"] for e in rest.of("retry_failed")] == [2]


def test_retry_failed_by_reason_on_the_original_schema_says_what_is_missing(tmp_path: Path):
    with world(tmp_path, schema="original", RETRY_ATTEMPTS="0") as w:
        w.web.route("/a/0", status=503, body=b"down")
        run(w, parallel=False)
        assert statuses(w)[0] == "Failed"
        w.web.page("/a/0", article_html(0))
        by_reason = run(w, retry_failed=True, reason="503")
        assert by_reason.result.exit_code == EXIT_FAILED
        assert "no Error property" in by_reason.result.error and "notion check" in by_reason.result.error
        assert statuses(w)[0] == "Failed"
        everything = run(w, retry_failed=True)
        assert everything.result.exit_code == EXIT_OK and statuses(w) == ["Enriched"] * ITEMS


def test_a_corrupt_journal_stops_the_run_before_any_write_and_names_the_file(tmp_path: Path):
    with world(tmp_path) as w:
        journal = Path(w.env["JOURNAL_PATH"])
        journal.write_bytes(b"this is not a database\n" * 200)
        outcome = run(w)
        assert statuses(w) == ["Inbox"] * ITEMS
        assert all(toggles(w.notion, p) == [] for p in w.page_ids)
    assert outcome.result.exit_code == EXIT_FAILED
    assert f"cannot open journal {journal}" in outcome.result.error
    assert outcome.of("run_aborted")


# --- every request under the limiter (issue 12, point 12) -----------------------------------------


def long_article_html(paragraphs: int) -> str:
    """An article whose Raw toggle needs more than one append (over 100 blocks): follow-up appends."""
    text = "".join(f"<p>Anthropic paragraph {p}: agents, benchmarks and budgets, measured again.</p>"
                   for p in range(paragraphs))
    return f"<html><body><article><h1>Long note</h1>{text}</article></body></html>"


def test_repairs_lookups_and_follow_up_appends_all_wait_for_the_notion_limiter(tmp_path: Path):
    """A lost reply makes the store look before it writes again; that look and the write each take a slot."""
    rps = 10.0
    with world(tmp_path, NOTION_MAX_RPS=f"{rps:g}", PARALLEL_MAX_WORKERS="3") as w:
        w.web.page("/a/1", long_article_html(150))
        w.notion.fail_next(502, method="PATCH", path="/children", after_apply=True, count=3)
        w.notion.fail_next(504, method="PATCH", path="/v1/pages/", after_apply=True, count=2)
        outcome = run(w)
        check_all_enriched_once(w)
        stats = w.notion.stats()
    assert outcome.result.exit_code == EXIT_OK
    assert stats["by_status"].get("502") == 3 and stats["by_endpoint"]["blocks.children.list"] >= 3
    times = sorted(stats["timestamps"])
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    # the client books starts 1/rps apart; arrival jitter on a busy machine is far below a quarter of that
    assert min(gaps) >= 0.25 / rps, sorted(gaps)[:5]
    for window in (1.0, 2.0):
        assert busiest(times, window) <= 1 + window * rps, (window, busiest(times, window))


def busiest(times: list[float], window: float) -> int:
    from .fakes import max_in_window

    return max_in_window(times, window)


# --- one deadline per item (issue 12, point 2) ----------------------------------------------------


def test_a_chain_of_slow_redirects_ending_on_a_trickle_is_cut_at_item_timeout(tmp_path: Path):
    """Each hop and each retry stays under API_TIMEOUT; together they would hold a worker for many of them."""
    with world(tmp_path, API_TIMEOUT="1", RETRY_ATTEMPTS="3", ITEM_TIMEOUT="2") as w:
        for hop in range(5):
            w.web.route("/a/0" if hop == 0 else f"/slow/{hop}", status=302, headers={"Location": f"/slow/{hop + 1}"},
                        delay=0.5)
        w.web.route("/slow/5", body=lambda: (b"<p>drip</p>" for _ in range(1000)), chunk_delay=0.2)
        outcome = run(w, parallel=False)
        first = w.notion.values(w.page_ids[0])
        assert statuses(w)[1:] == ["Enriched"] * (ITEMS - 1), "the run went on"
    assert first["Status"] == "Failed" and first["Error"] == "item took longer than ITEM_TIMEOUT=2s"
    [error] = outcome.of("item_error")
    assert error["error_type"] == "item_timeout" and 2.0 <= error["duration"] < 3.0
    assert outcome.result.exit_code == EXIT_OK


def test_a_write_cut_at_the_deadline_is_repaired_by_the_next_run(tmp_path: Path):
    with world(tmp_path, ITEM_TIMEOUT="0.5") as w:
        w.notion.configure(latency=0.3)
        outcome = run(w)
        assert statuses(w) == ["Failed"] * ITEMS
        assert {e["error_type"] for e in outcome.of("item_error")} == {"item_timeout"}
        import sqlite3

        with sqlite3.connect(w.env["JOURNAL_PATH"]) as journal:
            writing = journal.execute("SELECT COUNT(*) FROM steps WHERE writing = 1").fetchone()[0]
        assert writing == ITEMS, "each cut write is marked in the journal, as after a crash"
        w.notion.configure(latency=0.0)
        retried = run(w, retry_failed=True)
        assert retried.result.exit_code == EXIT_OK
        check_all_enriched_once(w)


# --- a circuit breaker per service (issue 12, point 8) --------------------------------------------


def run_with(w: World, on_start: Callable[[], None], **env: str) -> Outcome:
    """A sequential ``run`` with ``on_start`` called when the first item starts (the Inbox was read)."""
    settings = load_settings({**w.env, **env}, env_file=None)
    recorded: list[tuple[str, dict]] = []
    telemetry = Telemetry("tests.fault_tolerance")

    def observe(kind: str, data: dict) -> None:
        recorded.append((kind, data))
        if kind == "item_start":
            on_start()

    telemetry.add_observer(observe)
    options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="none", parallel=False)
    return Outcome(asyncio.run(run_async(settings, options, telemetry)), recorded)


@pytest.mark.parametrize("how", ["refused", "timeouts"])
def test_an_unreachable_llm_stops_the_run_and_leaves_every_item_in_the_inbox(tmp_path: Path, how: str):
    with world(tmp_path, RETRY_ATTEMPTS="1", CIRCUIT_BREAKER_FAILURES="5", API_TIMEOUT="0.3") as w:
        base_url, port = w.openai.url, urlsplit(w.openai.url).port
        if how == "refused":
            w.openai.close()
        else:
            w.openai.configure(latency=2.0)
        outcome = run(w, parallel=False)
        assert statuses(w) == ["Inbox"] * ITEMS, "items that failed only because of the outage are put back"
        assert len(outcome.of("item_start")) == 3, "2 items x 2 attempts, then the 5th failure stops new items"
        assert len(outcome.of("item_requeued")) == 2
        summary = outcome.of("pipeline_summary")[0]
        assert summary["metrics"]["items_failed"] == 0 and summary["exit_code"] == EXIT_FAILED
        if how == "refused":
            with start_fake_openai(port=port, seed=SEED):
                back = run(w)
                check_all_enriched_once(w)
            assert back.result.exit_code == EXIT_OK
    assert outcome.result.exit_code == EXIT_FAILED
    error = outcome.result.error
    assert error.startswith(f"openai is unreachable at {base_url}: 5 connection failures or timeouts in a row")
    assert w.openai.api_key not in error and "\n" not in error
    [tripped] = outcome.of("service_unavailable")
    assert tripped["service"] == "openai" and tripped["base_url"] == base_url


def test_notion_going_down_mid_run_stops_the_run_after_a_few_failures(tmp_path: Path):
    with world(tmp_path, resets="notion", RETRY_ATTEMPTS="3", CIRCUIT_BREAKER_FAILURES="5") as w:
        proxy = w.proxies["notion"]
        proxy.share = 0.0
        outcome = run_with(w, lambda: setattr(proxy, "share", 1.0))
        proxy.share = 0.0
        assert statuses(w) == ["Inbox"] * ITEMS
    assert outcome.result.exit_code == EXIT_FAILED
    assert outcome.result.error.startswith(f"notion is unreachable at {w.env['NOTION_BASE_URL']}: 5 connection")
    assert len(outcome.of("item_start")) == 1, "no item starts once the breaker is open"
    assert not outcome.of("item_error")
