"""Crash safety: kill -9 at random points, re-run, every item enriched exactly once (issue: reliability).

The mechanism under test is the step journal (``knowledge_pipeline/journal.py``)
with "status last" writes and store repair: the enrichment is kept once paid
for, ``writing`` is set before the first write request, and the row is deleted
once the store confirmed the write. An item is Enriched only when its whole body
is there; anything short of that stays in the Inbox, and the next run removes a
partial body before writing again. docs/reliability.md describes it.

The fakes run in this test process, so they outlive the ``SIGKILL``-ed pipeline
and their state is the ground truth checked after every kill and at the end.
Kill points are drawn from a seeded generator (``SEED``), counted in requests
the fakes have answered, so a failure replays with the same kill points up to
thread scheduling.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import sqlite3
import subprocess
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from knowledge_pipeline.enrichers.local import LocalEnricher
from knowledge_pipeline.errors import ServiceError
from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import (
    DEFAULT_AI_PRIMITIVES,
    DEFAULT_CONTENT_TYPES,
    Item,
    OutcomeKind,
    SourceType,
    Taxonomy,
)
from knowledge_pipeline.processing import Deps, process_item
from knowledge_pipeline.sources.base import BODY_TOGGLES
from knowledge_pipeline.telemetry import Telemetry
from knowledge_pipeline.extract import Extracted

from .conftest import PYTHON, ROOT, clean_env, read_log
from .fakes.notion_server import FakeNotion, start_fake_notion
from .fakes.openai_server import FakeOpenAI, start_fake_openai
from .fakes.web_server import FakeWebServer

SEED = 4242
STATUSES = {"Inbox", "Enriched", "Failed"}
VENDOR_CYCLE = ("Anthropic", None, "NVIDIA", None, "Mistral")
WORKERS = 5


def vendor_of(n: int) -> str | None:
    return VENDOR_CYCLE[n % len(VENDOR_CYCLE)]


def paragraphs(n: int) -> list[str]:
    """Report ``n``: its text names ``vendor_of(n)``, or no vendor the enrichers know."""
    who = vendor_of(n) or "A small research lab"
    return [
        f"{who} described agent tooling for report number {n}, paragraph {p}. Engineers measured a "
        f"{10 + p}% gain on coding tasks across {p + 3} benchmarks. Analysts expect automation budgets "
        "to keep growing next year as teams move pilots into production."
        for p in range(5)
    ]


def article_html(n: int) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs(n))
    return (f"<html><head><title>Report {n}</title></head><body><article><h1>Report {n}</h1>"
            f"{body}</article></body></html>")


def feed_xml(base: str, items: int) -> str:
    entries = "".join(f"<item><title>Report {n}</title><link>{base}/a/{n}</link></item>" for n in range(items))
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Reports</title>'
            f"<link>{base}</link><description>d</description>{entries}</channel></rss>")


def base_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    settings = {
        "RSS_FEEDS": "",
        "PDF_DIR": "",
        "RSS_WINDOW_DAYS": "0",
        "SOURCES_DB_PATH": str(tmp_path / "data" / "sources.db"),
        "JOURNAL_PATH": str(tmp_path / "data" / "journal.db"),
        "LOG_DIR": str(tmp_path / "logs"),
        "ALLOW_PRIVATE_URLS": "true",
        "PARALLEL_MAX_WORKERS": str(WORKERS),
        "PARALLEL_RATE_LIMIT": "0",
        "RETRY_ATTEMPTS": "6",
        "OPENAI_BATCH": "never",  # the direct path; the Batch API's kill tests are in tests/batches/
    }
    return clean_env(**{**settings, **overrides})


@dataclass
class World:
    notion: FakeNotion
    openai: FakeOpenAI
    web: FakeWebServer
    env: dict[str, str]
    page_ids: list[str]


@contextmanager
def fakes(*, faults: bool) -> Iterator[tuple[FakeNotion, FakeOpenAI, FakeWebServer]]:
    """The three fakes; with ``faults``: 20-50 ms latency, 5% 5xx and 5% 429 (Retry-After 0) on each."""
    with ExitStack() as stack:
        notion = stack.enter_context(start_fake_notion(database="original", rps=None, seed=SEED))
        openai = stack.enter_context(start_fake_openai(seed=SEED))
        web = stack.enter_context(FakeWebServer(seed=SEED))
        if faults:
            notion.configure(latency=0.035, jitter=0.015, error_share=0.05, rate_limit_share=0.05, retry_after=0)
            openai.configure(latency=0.02, jitter=0.03, error_rate_5xx=0.05, error_rate_429=0.05, retry_after=0)
            web.configure(latency=0.02, jitter=0.03, error_rate=0.05, rate_limit_rate=0.05, retry_after=0)
        yield notion, openai, web


@contextmanager
def notion_world(tmp_path: Path, items: int, *, faults: bool) -> Iterator[World]:
    """Fake Notion (the original schema) holding ``items`` Inbox pages whose articles the fake web serves."""
    with fakes(faults=faults) as (notion, openai, web):
        rows = []
        for n in range(items):
            web.page(f"/a/{n}", article_html(n))
            rows.append({"Title": f"Report {n}", "Status": "Inbox", "Source Type": "RSS",
                         "Article URL": f"{web.url}/a/{n}", "Hash": f"hash-{n}"})
        page_ids = notion.seed(rows)
        env = base_env(
            tmp_path,
            SOURCES_BACKEND="notion",
            NOTION_TOKEN=notion.token,
            NOTION_SOURCES_DB=notion.database_id,
            NOTION_BASE_URL=notion.url,
            NOTION_MAX_RPS="200",
            ENRICHER="openai",
            OPENAI_API_KEY=openai.api_key,
            OPENAI_BASE_URL=openai.url,
        )
        yield World(notion, openai, web, env, page_ids)


# --- running and killing ---------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    killed: bool
    output: str


def run_enrich(tmp_path: Path, env: dict[str, str], *, kill_when: Callable[[], bool] | None = None,
               after: float = 0.0, parallel: bool = True, timeout: float = 60.0) -> Run:
    """Run enrich_rss_enhanced.py; SIGKILL it ``after`` seconds after ``kill_when()`` first holds."""
    number = len(list(tmp_path.glob("run-*.out")))
    out = tmp_path / f"run-{number}.out"
    command = [PYTHON, str(ROOT / "enrich_rss_enhanced.py"), *(["--parallel"] if parallel else [])]
    killed = False
    with open(out, "w") as sink:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if kill_when is not None and kill_when():
                    time.sleep(after)
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                        killed = True
                    break
                time.sleep(0.002)
            proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Run(proc.returncode, killed and proc.returncode == -signal.SIGKILL, out.read_text())


def notion_log(notion: FakeNotion) -> list[dict]:
    return notion.stats()["log"]


def journal_rows(tmp_path: Path) -> list[tuple[str, bool, bool]]:
    """(item id, enrichment kept, writing) for every row of the step journal."""
    path = tmp_path / "data" / "journal.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT item_id, enrichment IS NOT NULL, writing FROM steps").fetchall()
    return [(item_id, bool(kept), bool(writing)) for item_id, kept, writing in rows]


def completions_per_item(tmp_path: Path) -> Counter:
    return Counter(r["extra_fields"]["item_id"] for r in read_log(tmp_path / "logs")
                   if r["extra_fields"].get("event_type") == "item_complete")


# --- the Notion workspace ---------------------------------------------------------------------


def toggles(notion: FakeNotion, page_id: str) -> list[dict]:
    return [b for b in notion.blocks_of(page_id) if b["type"] == "toggle"]


def plain(block: dict) -> str:
    return "".join(part["plain_text"] for part in block[block["type"]]["rich_text"])


def check_no_page_stuck(notion: FakeNotion, page_ids: list[str], frozen: dict[str, list[str]]) -> int:
    """Every page is Inbox, Enriched or Failed; an Enriched page has one whole body, never rewritten later.

    ``frozen`` remembers the toggle ids of each page once seen Enriched.
    Returns how many Inbox pages carry a partial body (the next run repairs them).
    """
    partial = 0
    for page_id in page_ids:
        status = notion.values(page_id)["Status"]
        assert status in STATUSES, (page_id, status)
        assert status != "Failed", f"{page_id} failed: {notion.values(page_id)}"
        blocks = toggles(notion, page_id)
        if status == "Enriched":
            assert [plain(b) for b in blocks] == list(BODY_TOGGLES), page_id
            ids = [b["id"] for b in blocks]
            assert frozen.setdefault(page_id, ids) == ids, f"{page_id} was written again after it was Enriched"
        elif blocks:
            partial += 1
    return partial


def check_every_page_enriched_once(world: World) -> None:
    notion = world.notion
    assert len(notion.pages()) == len(world.page_ids), "no page added or lost"
    for n, page_id in enumerate(world.page_ids):
        values = notion.values(page_id)
        assert values["Status"] == "Enriched", (n, values)
        blocks = toggles(notion, page_id)
        assert [plain(b) for b in blocks] == list(BODY_TOGGLES), f"page {n}: exactly one set of toggles"
        body = {plain(b): b["children"] for b in blocks}
        assert all(body[name] for name in BODY_TOGGLES), f"page {n}: no empty toggle"
        assert f"report number {n}," in " ".join(plain(c) for c in body["Raw"])
        assert values["Summary"].strip(), n
        assert values["Content-Type"] in DEFAULT_CONTENT_TYPES, n
        assert values["AI-Primitive"] and set(values["AI-Primitive"]) <= set(DEFAULT_AI_PRIMITIVES), n
        assert values["Vendor"] == vendor_of(n), (n, values["Vendor"])


# --- kill -9 against Notion ---------------------------------------------------------------------


def notion_kill_loop(tmp_path: Path, world: World, *, kills: int, rng: random.Random) -> dict[str, int]:
    """Run and SIGKILL ``kills`` times at seeded points, checking the workspace after each; then finish.

    Even kills land after a random number (4-16) of Notion requests, plus up to
    30 ms: anywhere from opening the store to the middle of a write. Odd kills
    land right after a Status update was answered 429 with a long Retry-After:
    that page has its body and no status.
    """
    notion = world.notion
    frozen: dict[str, list[str]] = {}
    report = {"kills": 0, "partial": 0, "runs": 0}
    while report["kills"] < kills:
        start = len(notion_log(notion))
        stall = report["kills"] % 2 == 1
        if stall:
            notion.configure(rate_limit_share=0)  # the only 429 on pages.update is the one queued here
            notion.fail_next(429, retry_after=5, method="PATCH", path="/v1/pages/", skip=rng.randint(0, 2))
            kill_when = lambda: any(  # noqa: E731
                e["endpoint"] == "pages.update" and e["status"] == 429 for e in notion_log(notion)[start:])
            after = 0.0
        else:
            target = start + rng.randint(4, 16)
            kill_when = lambda: len(notion_log(notion)) >= target  # noqa: E731
            after = rng.uniform(0, 0.03)
        run = run_enrich(tmp_path, world.env, kill_when=kill_when, after=after)
        if stall:
            notion.configure(rate_limit_share=0.05)
        report["runs"] += 1
        assert run.killed or run.returncode == 0, run.output
        report["kills"] += run.killed
        report["partial"] += check_no_page_stuck(notion, world.page_ids, frozen)
        if not run.killed:
            break
    final = run_enrich(tmp_path, world.env)
    report["runs"] += 1
    assert final.returncode == 0, final.output
    check_no_page_stuck(notion, world.page_ids, frozen)
    return report


def check_after_kill_loop(tmp_path: Path, world: World, report: dict[str, int], kills: int) -> None:
    assert report["kills"] >= kills, report
    assert report["partial"] >= kills // 2, "some kills left a body without a status"
    check_every_page_enriched_once(world)
    assert max(completions_per_item(tmp_path).values()) == 1, "no item was enriched twice"
    deletes = sum(1 for e in notion_log(world.notion) if e["endpoint"] == "blocks.delete" and e["status"] == 200)
    assert deletes >= 4, "partial bodies were removed before writing again"
    leftovers = journal_rows(tmp_path)
    assert all(world.notion.values(item_id)["Status"] == "Enriched" for item_id, _, _ in leftovers), (
        "a journal row outlives its item only when the kill fell between Notion saving the status and the reply")
    assert len(leftovers) <= report["kills"] * WORKERS
    paid = world.openai.stats()["ok"]
    assert paid <= len(world.page_ids) + report["kills"] * WORKERS, "answers already paid for are kept"


def test_kill_9_at_random_points_then_rerun_enriches_every_notion_page_exactly_once(tmp_path: Path):
    with notion_world(tmp_path, 30, faults=True) as world:
        report = notion_kill_loop(tmp_path, world, kills=4, rng=random.Random(SEED))
        check_after_kill_loop(tmp_path, world, report, 4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [SEED + 1, SEED + 2])
def test_kill_9_many_times_on_a_larger_notion_inbox(tmp_path: Path, seed: int):
    with notion_world(tmp_path, 80, faults=True) as world:
        report = notion_kill_loop(tmp_path, world, kills=12, rng=random.Random(seed))
        check_after_kill_loop(tmp_path, world, report, 12)


def test_killed_between_body_and_status_the_rerun_repairs_instead_of_duplicating(tmp_path: Path):
    """The deterministic cut: the first page's Status update stalls (429, Retry-After 30 s); kill -9 then."""
    with notion_world(tmp_path, 3, faults=False) as world:
        notion, first = world.notion, world.page_ids[0]
        notion.fail_next(429, retry_after=30, method="PATCH", path=f"/v1/pages/{first}")
        run = run_enrich(tmp_path, world.env, parallel=False, kill_when=lambda: any(
            e["endpoint"] == "pages.update" and e["status"] == 429 for e in notion_log(notion)))
        assert run.killed, run.output
        cut_off = toggles(notion, first)
        assert [plain(b) for b in cut_off] == list(BODY_TOGGLES)
        assert notion.values(first)["Status"] == "Inbox", "no status without the whole body"
        assert journal_rows(tmp_path) == [(first, True, True)], "the journal knows a write had started"
        assert [toggles(notion, p) for p in world.page_ids[1:]] == [[], []]
        assert world.openai.stats()["ok"] == 1

        rerun = run_enrich(tmp_path, world.env, parallel=False)

        assert rerun.returncode == 0, rerun.output
        check_every_page_enriched_once(world)
        deleted = {e["path"].rsplit("/", 1)[-1] for e in notion_log(notion)
                   if e["endpoint"] == "blocks.delete" and e["status"] == 200}
        assert deleted == {b["id"] for b in cut_off}, "exactly the cut-off toggles were removed"
        assert world.openai.stats()["ok"] == 3, "the kept enrichment was written, not paid for again"
        assert journal_rows(tmp_path) == []


def test_the_fake_does_not_apply_a_request_cut_off_by_a_kill():
    """A PATCH whose sender died after the headers changes nothing and is not logged as a success."""
    with start_fake_notion(database="original", rps=None) as notion:
        [page] = notion.seed([{"Title": "x", "Status": "Inbox", "Hash": "h"}])
        host, port = notion.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as conn:
            conn.sendall((f"PATCH /v1/pages/{page} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {notion.token}\r\n"
                          "Notion-Version: 2025-09-03\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n"
                          ).encode())
            conn.shutdown(socket.SHUT_WR)
            conn.recv(65536)
        time.sleep(0.1)
        assert [e["status"] for e in notion_log(notion)] != [200]


# --- kill -9 against the SQLite store -----------------------------------------------------------


def sqlite_state(tmp_path: Path) -> tuple[dict[str, dict], dict[str, list[tuple[str, str]]]]:
    path = tmp_path / "data" / "sources.db"
    if not path.exists():
        return {}, {}
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        try:
            items = {r["id"]: dict(r) for r in db.execute("SELECT * FROM items")}
            blocks: dict[str, list[tuple[str, str]]] = {}
            for r in db.execute("SELECT item_id, toggle, text FROM blocks ORDER BY item_id, position"):
                blocks.setdefault(r["item_id"], []).append((r["toggle"], r["text"]))
        except sqlite3.OperationalError:  # killed before the schema was created
            return {}, {}
    return items, blocks


def toggle_layout(body: list[tuple[str, str]]) -> list[str]:
    """Toggle names in order, runs of Key Insights collapsed: one set is the four BODY_TOGGLES."""
    names: list[str] = []
    for name, _ in body:
        if not names or names[-1] != name:
            names.append(name)
    return names


def check_sqlite_after_kill(tmp_path: Path, items: int, frozen: dict[str, list]) -> None:
    rows, blocks = sqlite_state(tmp_path)
    assert len(rows) <= items and len({r["hash"] for r in rows.values()}) == len(rows), "no duplicate capture"
    for item_id, row in rows.items():
        assert row["status"] in STATUSES - {"Failed"}, row
        if row["status"] == "Enriched":
            assert toggle_layout(blocks[item_id]) == list(BODY_TOGGLES)
            assert frozen.setdefault(item_id, blocks[item_id]) == blocks[item_id], "rewritten after Enriched"
        else:
            assert item_id not in blocks, "the SQLite store writes body and status in one transaction"


def test_kill_9_loop_on_the_sqlite_store_captures_and_enriches_each_item_once(tmp_path: Path):
    items, kills, rng = 30, 4, random.Random(SEED)
    with fakes(faults=True) as (_, openai, web):
        for n in range(items):
            web.page(f"/a/{n}", article_html(n))
        web.page("/feed.xml", feed_xml(web.url, items), content_type="application/rss+xml")
        env = base_env(tmp_path, RSS_FEEDS=f"{web.url}/feed.xml", ENRICHER="openai",
                       OPENAI_API_KEY=openai.api_key, OPENAI_BASE_URL=openai.url)
        frozen: dict[str, list] = {}
        done = 0
        while done < kills:
            start = web.stats()["count"]
            # the first kill falls about when the feed's reply arrives, around capture
            target = start + (1 if done == 0 else rng.randint(2, 12))
            run = run_enrich(tmp_path, env, kill_when=lambda: web.stats()["count"] >= target,
                             after=rng.uniform(0.02, 0.07) if done == 0 else rng.uniform(0, 0.05))
            assert run.killed or run.returncode == 0, run.output
            check_sqlite_after_kill(tmp_path, items, frozen)
            if not run.killed:
                break
            done += 1
        final = run_enrich(tmp_path, env)
        assert final.returncode == 0, final.output
        check_sqlite_after_kill(tmp_path, items, frozen)
        paid = openai.stats()["ok"]
    assert done >= kills
    rows, blocks = sqlite_state(tmp_path)
    assert sorted(r["title"] for r in rows.values()) == sorted(f"Report {n}" for n in range(items))
    for item_id, row in rows.items():
        n = int(row["title"].split()[-1])
        assert row["status"] == "Enriched" and row["vendor"] == vendor_of(n), row
        assert row["summary"] and row["content_type"] in DEFAULT_CONTENT_TYPES
        assert toggle_layout(blocks[item_id]) == list(BODY_TOGGLES)
        assert [name for name, _ in blocks[item_id]].count("Raw") == 1
    assert max(completions_per_item(tmp_path).values()) == 1
    assert paid <= items + kills * WORKERS
    assert journal_rows(tmp_path) == [], "SQLite confirms every write before the process can die"


# --- the journal contract, in process -----------------------------------------------------------


class Killed(BaseException):
    """Stands for the process dying mid-write: nothing in the pipeline catches it."""


class HalfWritingStore:
    """Appends the body, then dies (``Killed``) or fails (a 503) before the status, as told."""

    name = "half-writing"

    def __init__(self) -> None:
        self.bodies: dict[str, int] = {}
        self.status: dict[str, str] = {}
        self.repairs: list[str] = []
        self.cut: BaseException | None = None

    async def write_enrichment(self, item: Item, enrichment, text: str, *, repair: bool = False) -> None:
        if repair:
            self.repairs.append(item.id)
            self.bodies[item.id] = 0
        self.bodies[item.id] = self.bodies.get(item.id, 0) + 1
        if self.cut is not None:
            cut, self.cut = self.cut, None
            raise cut
        self.status[item.id] = "Enriched"

    async def mark_failed(self, item: Item, reason: str) -> None:
        self.status[item.id] = "Failed"


class CountingEnricher(LocalEnricher):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def enrich(self, item, text, taxonomy):
        self.calls += 1
        return await super().enrich(item, text, taxonomy)


class ContentExtractor:
    async def read(self, item: Item, *, title: bool = False) -> Extracted:
        return Extracted(item.content or "")


@pytest.mark.parametrize("cut", [Killed(), asyncio.CancelledError(),
                                 ServiceError("notion", "Notion service_unavailable (503)", status_code=503)],
                         ids=["killed", "cancelled-at-shutdown", "failed-after-retries"])
def test_a_write_cut_off_is_repaired_next_time_and_the_llm_is_not_paid_twice(tmp_path: Path, cut: BaseException):
    item = Item(id="p1", title="Report 1", source_type=SourceType.RSS, content="\n\n".join(paragraphs(1)))
    store, enricher = HalfWritingStore(), CountingEnricher()
    journal = Journal(tmp_path / "journal.db")
    journal.open()
    deps = Deps(store, enricher, ContentExtractor(), journal, Telemetry("test"), Taxonomy())
    store.cut = cut

    async def first() -> OutcomeKind | None:
        try:
            return (await process_item(item, deps)).kind
        except (Killed, asyncio.CancelledError):
            return None

    first_outcome = asyncio.run(first())
    entry = journal.get("p1")
    assert entry is not None and entry.writing and entry.enrichment is not None
    assert first_outcome is (OutcomeKind.FAILED if isinstance(cut, ServiceError) else None)

    outcome = asyncio.run(process_item(item, deps))

    assert outcome.kind is OutcomeKind.ENRICHED
    assert store.repairs == ["p1"] and store.bodies["p1"] == 1 and store.status["p1"] == "Enriched"
    assert enricher.calls == 1
    assert journal.get("p1") is None
    journal.close()


class FullDiskJournal(Journal):
    """The journal's disk fills up just as the store confirmed the write."""

    def mark_written(self, item_id: str) -> None:
        raise sqlite3.OperationalError("database or disk is full")


def test_a_journal_that_cannot_record_the_confirmation_does_not_fail_a_written_item(tmp_path: Path):
    item = Item(id="p1", title="Report 1", source_type=SourceType.RSS, content="\n\n".join(paragraphs(1)))
    store, recorded = HalfWritingStore(), []
    journal = FullDiskJournal(tmp_path / "journal.db")
    journal.open()
    telemetry = Telemetry("test")
    telemetry.add_observer(lambda kind, data: recorded.append((kind, data)))
    deps = Deps(store, CountingEnricher(), ContentExtractor(), journal, telemetry, Taxonomy())

    outcome = asyncio.run(process_item(item, deps))

    assert outcome.kind is OutcomeKind.ENRICHED, outcome.reason
    assert store.status["p1"] == "Enriched", "the complete item is not marked Failed"
    [complete] = [data for kind, data in recorded if kind == "item_complete"]
    assert "disk is full" in complete["journal_error"], "the journal's trouble is reported with the item"
    assert journal.get("p1").writing, "the row stays; it is inert once the item left the Inbox"
    journal.close()


@pytest.mark.parametrize("kept", ['{"summary": "from an older version"}', "not json at all"])
def test_a_journal_row_that_cannot_be_read_back_is_paid_again_and_still_repaired(tmp_path: Path, kept: str):
    """A row written by another version (or damaged) must not fail its item on every run."""
    item = Item(id="p1", title="Report 1", source_type=SourceType.RSS, content="\n\n".join(paragraphs(1)))
    store, enricher = HalfWritingStore(), CountingEnricher()
    journal = Journal(tmp_path / "journal.db")
    journal.open()
    journal.db.execute("INSERT INTO steps VALUES ('p1', ?, 1, '2020-01-01T00:00:00+00:00')", (kept,))
    deps = Deps(store, enricher, ContentExtractor(), journal, Telemetry("test"), Taxonomy())

    outcome = asyncio.run(process_item(item, deps))

    assert outcome.kind is OutcomeKind.ENRICHED, outcome.reason
    assert enricher.calls == 1 and store.repairs == ["p1"], "the write-started flag still means repair"
    assert journal.get("p1") is None
    journal.close()
