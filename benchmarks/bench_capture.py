#!/usr/bin/env python3
"""Feed capture at scale: concurrency, conditional GET, memory.

The benchmark publishes N feeds (each ``--entries`` entries, ~14 KB) on a
local fake feed server (``tests/fakes/feed_server.py``) that answers each
request after ``--latency`` seconds, on many host names: most feeds have a
host of their own, ``--shared`` of them sit ten to a host. Then, as child
processes measured with ``os.wait4`` (peak RSS, CPU), it captures them into
a throwaway SQLite store, the way a cron run does (the feed list as
``FEEDS_FILE``, the real guarded fetcher, the JSONL log at INFO):

1. ``FEED_CONCURRENCY=1`` on a fresh store and feed state;
2. ``FEED_CONCURRENCY=--concurrency`` on another fresh store and feed state;
3. the same again with nothing changed on the server (every feed should
   answer 304, no byte of feed body should travel, no store request).

It prints what the server saw (requests, answers, bytes, the most requests
one host had in flight) and what the child did, as a table or ``--json``,
and checks the targets of docs/performance.md. ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import ChildRun, run_measured  # noqa: E402

PER_SHARED_HOST = 10
TARGETS = {"speedup": 6.0, "max_per_host": 2, "not_modified_share": 0.99, "bytes_ratio": 0.02, "peak_rss_mb": 200.0}


@dataclass(frozen=True)
class Layout:
    feeds: list[tuple[str, str]]  # (host, path)

    @property
    def hosts(self) -> int:
        return len({host for host, _ in self.feeds})


def layout(feeds: int, shared: float) -> Layout:
    """``feeds`` feeds: a ``shared`` share of them ten to a host, the others one per host."""
    on_shared = int(round(feeds * shared))
    places = [(f"shared{n // PER_SHARED_HOST}.bench.test", f"/feeds/{n}.xml") for n in range(on_shared)]
    places += [(f"site{n}.bench.test", "/feed.xml") for n in range(feeds - on_shared)]
    return Layout(places)


# -- the child: one capture, measured from inside -------------------------------------------------


def child() -> None:
    """Capture the feeds of FEEDS_FILE into SOURCES_DB_PATH; print what happened as JSON."""
    from knowledge_pipeline.capture.feeds import capture_feeds
    from knowledge_pipeline.capture.known import KnownHashes
    from knowledge_pipeline.config import load_settings
    from knowledge_pipeline.extract.fetch import Fetcher
    from knowledge_pipeline.logging_setup import setup_logging
    from knowledge_pipeline.services import ServiceGateway
    from knowledge_pipeline.sources.sqlite import SqliteStore
    from knowledge_pipeline.telemetry import Telemetry

    class CountingStore(SqliteStore):
        calls: Counter = Counter()

        async def known_hashes(self) -> set[str]:
            self.calls["known_hashes"] += 1
            return await super().known_hashes()

        async def add(self, item: Any) -> Any:
            self.calls["add"] += 1
            return await super().add(item)

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    settings = load_settings(env_file=None)
    setup_logging(settings, console="none", jsonl=True)
    statuses: Counter = Counter()
    telemetry = Telemetry("bench_capture")
    telemetry.add_observer(lambda kind, data: statuses.update([data.get("status")]) if kind == "capture_complete" else None)

    async def run() -> dict[str, Any]:
        store = CountingStore(settings.sources_db_path)
        await store.open()
        fetcher = Fetcher(settings, ServiceGateway.from_settings(settings, telemetry), resolver=loopback)
        try:
            started = time.monotonic()
            reports = await capture_feeds(settings, store, fetcher, telemetry, known_hashes=KnownHashes(store))
            seconds = time.monotonic() - started
        finally:
            await fetcher.close()
            await store.close()
        return {
            "capture_seconds": round(seconds, 3),
            "feeds": len(reports),
            "added": sum(r.added for r in reports),
            "errors": sum(1 for r in reports if r.errors),
            "statuses": dict(statuses),
            "store_requests": dict(store.calls),
        }

    print(json.dumps(asyncio.run(run())))


# -- the parent: server, children, results -------------------------------------------------------


def run_child(workdir: Path, env: dict[str, str], timeout: float) -> tuple[dict[str, Any], ChildRun]:
    run = run_measured([sys.executable, str(Path(__file__).resolve()), "--child"], env, workdir, timeout)
    if run.exit_code != 0:
        raise SystemExit(f"the capture child failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout), run


def child_env(workdir: Path, concurrency: int, args: argparse.Namespace) -> dict[str, str]:
    from knowledge_pipeline.config import VARIABLES

    env = {key: value for key, value in os.environ.items() if key not in VARIABLES}
    env.update({
        "PYTHONPATH": str(ROOT),
        "FEEDS_FILE": str(workdir / "feeds.opml"),
        "FEED_STATE_PATH": str(workdir / "data" / "feeds.db"),
        "SOURCES_DB_PATH": str(workdir / "data" / "sources.db"),
        "JOURNAL_PATH": str(workdir / "data" / "journal.db"),
        "LOG_DIR": str(workdir / "logs"),
        "LOG_LEVEL": "INFO",
        "FEED_CONCURRENCY": str(concurrency),
        "ALLOW_PRIVATE_URLS": "true",
        "RSS_WINDOW_DAYS": "0",
        "RSS_FEEDS": "",
        "PARALLEL_RATE_LIMIT": str(args.spacing),
    })
    return env


def measured(server: Any, workdir: Path, concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    server.reset_stats()
    result, run = run_child(workdir, child_env(workdir, concurrency, args), args.timeout)
    seen = server.stats()
    return {
        "concurrency": concurrency,
        "capture_seconds": result["capture_seconds"],
        "wall_seconds": round(run.wall_seconds, 3),
        "cpu_seconds": round(run.cpu_seconds, 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "items_added": result["added"],
        "feeds_with_errors": result["errors"],
        "feed_statuses": result["statuses"],
        "store_requests": result["store_requests"],
        "http_requests": seen["requests"],
        "http_statuses": {str(k): v for k, v in sorted(seen["statuses"].items())},
        "bytes": seen["bytes"],
        "body_bytes": seen["body_bytes"],
        "max_in_flight": seen["max_in_flight"],
        "max_in_flight_per_host": seen["max_in_flight_per_host"],
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from knowledge_pipeline.feeds.opml import FeedSpec, render_opml
    from tests.fakes.feed_server import FakeFeedServer, rss_document

    places = layout(args.feeds, args.shared)
    base = Path(tempfile.mkdtemp(prefix="bench_capture_"))
    try:
        with FakeFeedServer(latency=args.latency) as server:
            urls = [server.feed(host, path, rss_document(host + path, args.entries)) for host, path in places.feeds]
            listing = render_opml([FeedSpec(url) for url in urls])
            runs = {}
            for name, concurrency in (("sequential", 1), ("concurrent", args.concurrency)):
                workdir = base / name
                workdir.mkdir()
                (workdir / "feeds.opml").write_bytes(listing)
                runs[name] = measured(server, workdir, concurrency, args)
            runs["second_run"] = measured(server, base / "concurrent", args.concurrency, args)
        if args.keep:
            shutil.copytree(base, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return summarise(args, places, runs)


def summarise(args: argparse.Namespace, places: Layout, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sequential, concurrent, second = runs["sequential"], runs["concurrent"], runs["second_run"]
    speedup = sequential["capture_seconds"] / concurrent["capture_seconds"] if concurrent["capture_seconds"] else None
    unchanged = second["feed_statuses"].get("not_modified", 0)
    bytes_ratio = second["bytes"] / concurrent["bytes"] if concurrent["bytes"] else None
    store_requests = sum(second["store_requests"].values())
    peak = max(run["peak_rss_mb"] for run in runs.values())
    per_host = max(run["max_in_flight_per_host"] for run in (concurrent, second))
    targets = {
        f"speedup >= {TARGETS['speedup']:g}": speedup is not None and speedup >= TARGETS["speedup"],
        f"max requests in flight per host <= {TARGETS['max_per_host']}": per_host <= TARGETS["max_per_host"],
        f"second run: >= {TARGETS['not_modified_share']:.0%} not modified": unchanged >= TARGETS["not_modified_share"] * args.feeds,
        f"second run: bytes < {TARGETS['bytes_ratio']:.0%} of the first": bytes_ratio is not None and bytes_ratio < TARGETS["bytes_ratio"],
        "second run: no store request": store_requests == 0,
        f"peak RSS < {TARGETS['peak_rss_mb']:g} MB": peak < TARGETS["peak_rss_mb"],
    }
    return {
        "feeds": args.feeds,
        "entries_per_feed": args.entries,
        "latency": args.latency,
        "hosts": places.hosts,
        "shared_share": args.shared,
        "spacing": args.spacing,
        "concurrency": args.concurrency,
        "sequential": sequential,
        "concurrent": concurrent,
        "second_run": second,
        "speedup": round(speedup, 2) if speedup else None,
        "not_modified_share": round(unchanged / args.feeds, 4),
        "bytes_ratio": round(bytes_ratio, 5) if bytes_ratio is not None else None,
        "second_run_store_requests": store_requests,
        "max_in_flight_per_host": per_host,
        "peak_rss_mb": peak,
        "targets": targets,
        "targets_met": all(targets.values()),
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['feeds']} feeds x {result['entries_per_feed']} entries on {result['hosts']} hosts, "
        f"latency {result['latency']:g} s per answer, PARALLEL_RATE_LIMIT {result['spacing']:g} s",
        "",
        f"{'run':<22} {'capture s':>9} {'wall s':>7} {'cpu s':>6} {'RSS MB':>7} {'requests':>8} {'bytes':>10} "
        f"{'per host':>8} {'in flight':>9}  answers / feed statuses / store requests",
    ]
    for name, label in (("sequential", "FEED_CONCURRENCY=1"),
                        ("concurrent", f"FEED_CONCURRENCY={result['concurrency']}"),
                        ("second_run", "  again, nothing new")):
        run = result[name]
        lines.append(
            f"{label:<22} {run['capture_seconds']:>9.2f} {run['wall_seconds']:>7.2f} {run['cpu_seconds']:>6.2f} "
            f"{run['peak_rss_mb']:>7.1f} {run['http_requests']:>8} {run['bytes']:>10,} "
            f"{run['max_in_flight_per_host']:>8} {run['max_in_flight']:>9}  {run['http_statuses']} / "
            f"{run['feed_statuses']} / {run['store_requests']}"
        )
    lines += [
        "",
        f"speedup {result['speedup']}x; second run: {result['not_modified_share']:.1%} not modified, "
        f"bytes {result['bytes_ratio']:.3%} of the first, {result['second_run_store_requests']} store requests; "
        f"peak RSS {result['peak_rss_mb']} MB",
        "",
    ]
    lines += [f"  [{'ok' if met else 'MISSED'}] {name}" for name, met in result["targets"].items()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Results and their commands: docs/performance.md (Feed capture).")
    parser.add_argument("--feeds", type=int, default=500, help="feeds to publish (default 500)")
    parser.add_argument("--entries", type=int, default=20, help="entries per feed (default 20)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds before each answer (default 0.2)")
    parser.add_argument("--concurrency", type=int, default=8, help="FEED_CONCURRENCY of the concurrent runs (default 8)")
    parser.add_argument("--shared", type=float, default=0.4,
                        help=f"share of the feeds that sit {PER_SHARED_HOST} to a host (default 0.4)")
    parser.add_argument("--spacing", type=float, default=0.1,
                        help="PARALLEL_RATE_LIMIT: seconds between two request starts to one host (default 0.1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one capture may take (default 900)")
    parser.add_argument("--keep", type=Path, help="copy the stores, feed states and logs to this folder")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child()
        return 0
    result = run_benchmark(args)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
