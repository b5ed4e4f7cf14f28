"""``report``: the last runs from the JSONL log, as a table, ``--json`` or an ``--html`` page."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import Settings
from ..report import build_runs, log_files, read_events, render_html, render_json, render_text, select_runs

DEFAULT_RUNS = 20


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="summarise the last runs from the logs (table, --json or --html)",
        description="Reads $LOG_DIR/pipeline.jsonl and its rotated files and shows each run.",
    )
    parser.add_argument(
        "--runs", type=_positive, default=DEFAULT_RUNS, metavar="N", help=f"the last N runs (default {DEFAULT_RUNS})"
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="only runs started at or after DATE (ISO date or datetime; UTC unless it has an offset)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON: {runs, feeds, top_errors, skipped_lines}")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML page with charts")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    log_dir = Path(settings.log_dir)
    if not log_files(log_dir):
        print(f"No log found: {log_dir / 'pipeline.jsonl'} does not exist (set LOG_DIR?)", file=sys.stderr)
        return 1
    events, count = read_events(log_dir)
    runs = select_runs(build_runs(events), last=args.runs, since=args.since)
    if args.html is not None:
        try:
            args.html.write_text(render_html(runs, skipped_lines=count.skipped), encoding="utf-8")
        except OSError as exc:
            print(f"Cannot write {args.html}: {exc.strerror}", file=sys.stderr)
            return 1
    if args.json:
        sys.stdout.write(render_json(runs, skipped_lines=count.skipped))
    else:
        sys.stdout.write(render_text(runs, skipped_lines=count.skipped))
        if args.html is not None:
            print(f"\nWrote {args.html} ({len(runs)} runs)")
    return 0


def parse_since(text: str) -> datetime:
    """``2024-01-15`` or ``2024-01-15T10:30`` (UTC) or with an offset, as an aware datetime."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or datetime (e.g. 2024-01-15)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value
