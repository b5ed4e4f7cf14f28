#!/usr/bin/env python3
"""The reading side on a large store: search, the reading page, export memory.

Builds a SQLite Sources store of N items (default 100,000) the way a
database made before search existed looks (rows and body blocks, no index),
then opens it with the store, which applies the search-index migration, and
times that. Each item has a title, an executive summary, a summary, five key
insights and a full text of about 700 words drawn from a Zipf-distributed
vocabulary, so common words match most items and rare ones a few.

Then it measures, in this process:

- ``search``: ``SqliteStore.search`` as the command calls it (10 results with
  snippets and the total count) for common, rare, phrase, prefix, boolean and
  filtered queries; median, p95 and max over repeated runs;
- ``serve``: the reading page served by uvicorn on 127.0.0.1, requested over
  one keep-alive connection with TCP_NODELAY (as a browser does): the list, searches, filters, a deep page and an item page; the first
  request (which computes the filters' option lists) is reported apart;
- ``export``: ``export --format jsonl`` and ``--format markdown`` of the whole
  store in a child process; its peak RSS before and after (VmHWM).

Run ``python benchmarks/bench_reading.py --help``. The store is kept (``--db``)
so later runs skip the build. Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from knowledge_pipeline.commands.serve import bind  # noqa: E402
from knowledge_pipeline.models import SourceType, Status  # noqa: E402
from knowledge_pipeline.reading.web import create_app  # noqa: E402
from knowledge_pipeline.sources.base import ItemQuery  # noqa: E402
from knowledge_pipeline.sources.sqlite import MIGRATIONS, SqliteStore  # noqa: E402

CONTENT_TYPES = ("Market News", "Thought Leadership", "Personal Note", "Vendor Capability", "Client Deliverable")
PRIMITIVES = ("Content Creation", "Research", "Coding", "Data Analysis", "Ideation/Strategy", "Automation")
VENDORS = ("OpenAI", "Anthropic", "Google", "Microsoft", "Meta", "Amazon", "NVIDIA", "Mistral AI", None)
# where topical words sit in the Zipf ranking: "model" is in nearly every item, "zeppelin" in few
TOPICAL = {"model": 5, "agents": 40, "inference": 60, "router": 90, "pricing": 150, "latency": 250,
           "regulation": 400, "compliance": 900, "zeppelin": 15_000}
SEARCHES: list[tuple[str, str, dict]] = [
    ("common word", "model", {}),
    ("rare word", "zeppelin", {}),
    ("phrase", '"model router"', {}),
    ("prefix", "infer*", {}),
    ("boolean", "agents AND pricing NOT regulation", {}),
    ("filtered", "latency", {"content_type": "Vendor Capability", "status": Status.ENRICHED}),
]


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    made = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)} - set(TOPICAL))
    rng.shuffle(made)
    for word, rank in sorted(TOPICAL.items(), key=lambda kv: kv[1]):
        made.insert(rank, word)
    return made


class Words:
    """Words drawn with a Zipf-like distribution (rank r has weight 1/r)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = vocabulary(rng)
        weights = [1 / (rank + 1) for rank in range(len(self.words))]
        self.cumulative = list(_accumulate(weights))

    def take(self, count: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=count))


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


def build(path: Path, items: int, seed: int = 7) -> dict[str, float]:
    """A store at the schema before the reading side (m001, m002) with ``items`` enriched rows; then open it."""
    rng = random.Random(seed)
    words = Words(rng)
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    db.execute("BEGIN")
    for name, migration in MIGRATIONS[:2]:
        migration(db)
        db.execute("INSERT INTO _migrations VALUES (?, '2024-01-01T00:00:00+00:00')", (name,))
    for n in range(items):
        item_id = f"{n:032x}"
        day = 1 + n * 730 // items
        added = f"2023-{1 + (day // 28) % 12:02d}-{1 + day % 28:02d}T{n % 24:02d}:00:00+00:00"
        primitives = rng.sample(PRIMITIVES, rng.randint(1, 3))
        db.execute(
            "INSERT INTO items (id, title, status, source_type, url, hash, summary, content_type, ai_primitives, "
            "vendor, created_date, added_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (item_id, words.take(rng.randint(6, 12)).capitalize(),
             Status.FAILED.value if n % 50 == 0 else Status.ENRICHED.value,
             rng.choice((SourceType.RSS, SourceType.WEBSITE, SourceType.PDF)).value,
             f"https://example.com/{n}", f"hash-{n}", words.take(60) + ".", rng.choice(CONTENT_TYPES),
             json.dumps(primitives), rng.choice(VENDORS), added[:10], added, added),
        )
        blocks = [("Summary", words.take(110) + "."), ("Executive Summary", words.take(60) + ".")]
        blocks += [("Key Insights", words.take(18) + ".") for _ in range(5)]
        blocks.append(("Raw", "\n\n".join(words.take(rng.randint(60, 120)) + "." for _ in range(7))))
        db.executemany("INSERT INTO blocks VALUES (?,?,?,?)",
                       [(item_id, toggle, i, text) for i, (toggle, text) in enumerate(blocks)])
        if n % 10_000 == 9_999:
            db.execute("COMMIT")
            db.execute("BEGIN")
            print(f"  {n + 1} items written", flush=True)
    db.execute("COMMIT")
    db.close()
    rows_done = time.perf_counter()

    async def migrate() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    return {"rows_seconds": rows_done - started, "index_migration_seconds": time.perf_counter() - rows_done,
            "file_mb": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6}


def timings(run: Callable[[], Any], repeat: int) -> dict[str, float]:
    values = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        values.append((time.perf_counter() - started) * 1000)
    values.sort()
    return {"median_ms": statistics.median(values), "p95_ms": values[max(0, int(len(values) * 0.95) - 1)],
            "max_ms": values[-1]}


def bench_search(path: Path, repeat: int) -> list[dict[str, Any]]:
    results = []
    store = SqliteStore(path)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(store.open())

    def call(coro: Callable[[], Awaitable[Any]]) -> Any:
        return loop.run_until_complete(coro())

    try:
        for label, text, filters in SEARCHES:
            query = ItemQuery(limit=10, **filters)
            page = call(lambda: store.search(text, query))
            row = {"query": label, "text": text, "hits": page.total, **timings(
                lambda: call(lambda: store.search(text, query)), repeat)}
            results.append(row)
    finally:
        loop.run_until_complete(store.close())
        loop.close()
    return results


def bench_serve(path: Path, repeat: int, items: int) -> dict[str, Any]:
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(SqliteStore(path)), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    pages = {
        "list (newest first)": "",
        "search (common word)": "?q=model",
        "search (phrase + filter)": "?q=%22model+router%22&type=Vendor+Capability",
        "filters (type, vendor, primitive)": "?type=Market+News&vendor=OpenAI&primitive=Coding",
        "filters (dates, status)": "?from=2023-03-01&to=2023-06-30&status=Enriched",
        "deep page (page 2000)": "?page=2000",
        "item page": f"item/{items // 2 + 1:032x}",
    }
    out: dict[str, Any] = {}
    connection = http.client.HTTPConnection(*sock.getsockname()[:2], timeout=60)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as browsers do: no Nagle delay

    def get(path: str) -> int:
        connection.request("GET", "/" + path)
        response = connection.getresponse()
        response.read()
        return response.status

    try:
        started = time.perf_counter()
        status = get("")
        out["first request (computes the filter lists)"] = {"ms": (time.perf_counter() - started) * 1000,
                                                             "status": status}
        for label, suffix in pages.items():
            assert get(suffix) == 200, label
            out[label] = timings(lambda: get(suffix), repeat)
    finally:
        connection.close()
        server.should_exit = True
        thread.join(timeout=10)
    return out


PROBE = """
import sys, time
from knowledge_pipeline.__main__ import main
import importlib
from knowledge_pipeline.__main__ import COMMAND_MODULES


def high_water_kb():  # VmHWM: ru_maxrss would start at the parent's RSS, which Linux carries over at the spawn
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


for command in COMMAND_MODULES:  # what main() imports, so the baseline holds every library loaded
    importlib.import_module(f"knowledge_pipeline.commands.{command}")
before = high_water_kb()
started = time.perf_counter()
code = main(sys.argv[1:])
print(f"PROBE {before} {high_water_kb()} {time.perf_counter() - started}", file=sys.stderr)
sys.exit(code)
"""


def bench_export(path: Path, out_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for fmt, dest in (("jsonl", out_dir / "all.jsonl"), ("markdown", out_dir / "vault")):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, "export", "--format", fmt, str(dest)], capture_output=True, text=True,
            env={"PYTHONPATH": str(ROOT), "SOURCES_DB_PATH": str(path), "SOURCES_BACKEND": "sqlite",
                 "PATH": "/usr/bin:/bin"}, cwd=out_dir, check=True,
        )
        before, after, seconds = done.stderr.split("PROBE ")[1].split()
        rows.append({"format": fmt, "seconds": float(seconds), "peak_rss_mb": int(after) / 1024,
                     "growth_mb": (int(after) - int(before)) / 1024, "output": done.stdout.strip()})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="store to build or reuse (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=30, help="runs per measurement")
    parser.add_argument("--no-export", action="store_true", help="skip the export measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-reading-"))
    path = args.db or work / "sources.db"
    if not path.exists():
        print(f"Building {args.items} items in {path} ...", flush=True)
        built = build(path, args.items)
        print(f"rows written in {built['rows_seconds']:.1f} s; reading and search indexes built by the migrations in "
              f"{built['index_migration_seconds']:.1f} s; files {built['file_mb']:.0f} MB")
    print(f"\nsearch ({args.repeat} runs each, SqliteStore.search, 10 results + total)")
    print(f"{'query':<14} {'hits':>7} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  text")
    for row in bench_search(path, args.repeat):
        print(f"{row['query']:<14} {row['hits']:>7} {row['median_ms']:>10.1f} {row['p95_ms']:>8.1f} "
              f"{row['max_ms']:>8.1f}  {row['text']}")
    print(f"\nserve ({args.repeat} requests each, one keep-alive connection to uvicorn on 127.0.0.1)")
    with sqlite3.connect(path) as db:
        items = int(db.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    for label, row in bench_serve(path, args.repeat, items).items():
        if "ms" in row:
            print(f"{label:<44} {row['ms']:>8.1f} ms (once)")
        else:
            print(f"{label:<44} median {row['median_ms']:>6.1f} ms  p95 {row['p95_ms']:>6.1f}  max "
                  f"{row['max_ms']:>6.1f}")
    if not args.no_export:
        print("\nexport (child process, peak RSS from VmHWM)")
        for row in bench_export(path, work):
            print(f"{row['format']:<9} {row['seconds']:>6.1f} s  peak RSS {row['peak_rss_mb']:.0f} MB "
                  f"(+{row['growth_mb']:.1f} MB while exporting)  {row['output']}")
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
