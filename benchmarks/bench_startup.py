#!/usr/bin/env python3
"""Start-up time of the hourly run: from process start to its first request (issue 15).

Two configurations, each run ``--runs`` times as a child process:

* ``demo``: what ``make run`` runs (``enrich_rss_enhanced.py``, SQLite, the
  offline enricher, the example feeds): time from the process start to the
  first source read, the ``capture_start`` event of its JSONL log (ms stamps);
* ``notion``: the Notion store and the OpenAI enricher against the fake Notion
  (in this process): time to the first request the fake received (monotonic
  clock, shared by both processes).

``--root`` runs the scripts of another checkout (e.g. ``git archive main | tar
-x -C /tmp/before``) with this interpreter, to compare before and after.
Prints the median, min and max per configuration; docs/performance.md has the
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from knowledge_pipeline.config import VARIABLES  # noqa: E402
from tests.fakes.notion_server import start_fake_notion  # noqa: E402

SCRIPT = "enrich_rss_enhanced.py"


def clean_env(root: Path, workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES and k != "PYTHONPATH"}
    env.update({"LOG_DIR": str(workdir / "logs"), "SOURCES_DB_PATH": str(workdir / "sources.db"),
                "JOURNAL_PATH": str(workdir / "journal.db"), "PDF_DIR": "", "RSS_FEEDS": "", **extra})
    return env


def first_capture(log_dir: Path) -> float:
    for line in (log_dir / "pipeline.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["extra_fields"].get("event_type") == "capture_start":
            stamp = datetime.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            return stamp.timestamp()
    raise RuntimeError("no capture_start in the log")


def demo_once(root: Path) -> float:
    feeds = ",".join(str(p) for p in sorted((ROOT / "examples" / "feeds").glob("*.xml")))
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        workdir = Path(tmp)
        env = clean_env(root, workdir, SOURCES_BACKEND="sqlite", ENRICHER="local", RSS_FEEDS=feeds,
                        RSS_WINDOW_DAYS="0")
        started = time.time()
        subprocess.run([sys.executable, str(root / SCRIPT)], cwd=workdir, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return first_capture(workdir / "logs") - started


def notion_once(root: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp, start_fake_notion(rps=None) as notion:
        workdir = Path(tmp)
        env = clean_env(root, workdir, SOURCES_BACKEND="notion", NOTION_TOKEN=notion.token,
                        NOTION_SOURCES_DB=notion.database_id, NOTION_BASE_URL=notion.url, ENRICHER="openai",
                        OPENAI_API_KEY="sk-bench-not-called", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
                        XDG_STATE_HOME=str(workdir / "state"))
        started = time.monotonic()
        subprocess.run([sys.executable, str(root / SCRIPT)], cwd=workdir, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return min(notion.stats()["timestamps"]) - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seconds from process start to the first request of a run.")
    parser.add_argument("--runs", type=int, default=10, help="runs per configuration (default 10)")
    parser.add_argument("--root", type=Path, default=ROOT, help="project checkout whose scripts run (default: this one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    for name, once in (("demo", demo_once), ("notion", notion_once)):
        once(args.root)  # warm the file cache once, as an hourly cron run finds it
        times = sorted(once(args.root) for _ in range(args.runs))
        results[name] = {"median": round(statistics.median(times), 3), "min": round(times[0], 3),
                         "max": round(times[-1], 3), "runs": args.runs}
    if args.json:
        print(json.dumps({"root": str(args.root), **results}, indent=2))
    else:
        for name, figures in results.items():
            print(f"{name:7} to the first request: median {figures['median']:.3f} s, min {figures['min']:.3f} s, "
                  f"max {figures['max']:.3f} s ({figures['runs']} runs, {args.root})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
