"""The four enrich scripts share this entry: parse argv, load settings, run, print, exit code.

``enrich_rss.py``/``enrich.py`` (original) print one plain line per item and
step and write no JSONL; ``*_enhanced.py`` add the structured log, metrics
and, with ``--parallel`` or ``ENABLE_PARALLEL=true``, the parallel workers.
``--original`` on an enhanced script runs exactly the original path.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..capture.registry import described, kinds_of
from . import counted, drop_stdout
from ..config import Settings, load_settings
from ..errors import ConfigError, LockHeldError, PipelineError
from ..logging_setup import console_line, setup_logging
from ..runner import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_LOCKED,
    FEED_TYPES,
    PDF_TYPES,
    RunOptions,
    RunResult,
    run,
)
from ..telemetry import Telemetry

EXIT_CODES_HELP = (
    "exit codes: 0 run completed; 1 run failed, its failure rate exceeded ALERT_FAILURE_RATE, "
    "or every configured source failed; "
    "2 configuration error; 75 another run is active; 130 interrupted (SIGINT/SIGTERM)"
)



def _description(capture: str) -> str:
    """What the script captures and enriches, from the source registry."""
    kinds = kinds_of(capture)  # type: ignore[arg-type]
    types = ", ".join(sorted({kind.source_type.value for kind in kinds}))
    return (f"Capture new items of {described(kinds)} into the Sources store (each source runs only when "
            f"its setting is set), then enrich Inbox items of Source Type {types}.")


def build_parser(script: str, capture: str, enhanced: bool) -> argparse.ArgumentParser:
    description = _description(capture)
    if enhanced:
        description += " Enhanced: structured JSONL logging ($LOG_DIR/pipeline.jsonl) and run metrics."
    parser = argparse.ArgumentParser(
        prog=script,
        description=description,
        epilog=EXIT_CODES_HELP + ". Settings come from the environment and .env (see README).",
    )
    if enhanced:
        parser.add_argument(
            "--parallel",
            action="store_true",
            help="enrich with PARALLEL_MAX_WORKERS concurrent workers (also: ENABLE_PARALLEL=true)",
        )
        parser.add_argument(
            "--original", action="store_true", help="run the original script's code path (no JSONL, sequential)"
        )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be captured and enriched; write nothing"
    )
    parser.add_argument(
        "--retry-failed",
        nargs="?",
        const="",
        metavar="REASON",
        help="put Failed items back in the Inbox first (all, or those whose error contains REASON)",
    )
    if capture == "feeds":
        parser.add_argument("--add", metavar="URL", help="capture one article or PDF URL, then run")
        parser.add_argument("--title", help="title for --add (default: the page's own title)")
    return parser


def enrich_main(argv: Sequence[str] | None, *, script: str, capture: str, enhanced: bool) -> int:
    args = build_parser(script, capture, enhanced).parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"{script}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    original = not enhanced or args.original
    parallel = bool(enhanced and not original and (args.parallel or settings.enable_parallel))
    try:
        if args.dry_run:
            setup_logging(settings, console="plain", jsonl=False)
        else:
            setup_logging(settings, console="plain" if original else "human", jsonl=not original)
    except ConfigError as exc:
        print(f"{script}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    options = RunOptions(
        script=script,
        source_types=FEED_TYPES if capture == "feeds" else PDF_TYPES,
        capture=capture,
        parallel=parallel,
        dry_run=args.dry_run,
        retry_failed=args.retry_failed is not None,
        retry_reason=args.retry_failed or None,
        add_url=getattr(args, "add", None),
        add_title=getattr(args, "title", None),
        progress_factory=None if original else _progress_factory,
    )
    if enhanced and args.original and args.parallel:
        print(f"{script}: --original runs sequentially; --parallel ignored", file=sys.stderr)
    try:
        result = run(settings, options, Telemetry(script.removesuffix(".py")))
    except LockHeldError as exc:
        print(console_line(f"{script}: {exc}; exiting (code {EXIT_LOCKED})", sys.stderr), file=sys.stderr)
        return EXIT_LOCKED
    except KeyboardInterrupt:
        print(console_line(f"{script}: interrupted", sys.stderr), file=sys.stderr)
        return 130
    except PipelineError as exc:  # before the run started (its lock could not be taken): nothing was done
        print(console_line(f"{script}: error: {exc}", sys.stderr), file=sys.stderr)
        return EXIT_FAILED
    try:
        _print_result(script, settings, options, result)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the run's work is done and stored; its exit code stands
        drop_stdout()
    return result.exit_code


def _progress_factory(total: int):
    if not sys.stdout.isatty():  # cron, a pipe, a file: no bar (and no tqdm import, docs/performance.md)
        return None
    from .progress import ProgressBar

    bar = ProgressBar(total)
    if getattr(bar, "enabled", False):
        import logging

        for handler in logging.getLogger().handlers:
            if getattr(handler, "stream", None) is sys.stdout and not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.CRITICAL + 1)  # the bar shows progress on stdout; warnings stay on stderr
    return bar


def _print_result(script: str, settings: Settings, options: RunOptions, result: RunResult) -> None:
    if options.dry_run:
        _print_dry_run(script, options, result)
        return
    found = sum(r.added for r in result.captures)
    m = result.metrics
    deferred = m.get("items_deferred", 0)
    line = (
        f"{script}: captured {found} new, enriched {m.get('items_processed', 0)}, "
        + (f"{deferred} in a Batch API batch, " if deferred else "")
        + f"skipped {m.get('items_skipped', 0)}, failed {m.get('items_failed', 0)} "
        f"of {counted(m.get('items_total', 0), 'item')} ({options.mode}, {m.get('duration_seconds', 0):.1f}s)"
    )
    print(console_line(line))
    if result.error:
        print(console_line(f"{script}: error: {result.error}", sys.stderr), file=sys.stderr)


def _print_dry_run(script: str, options: RunOptions, result: RunResult) -> None:
    print(f"{script} --dry-run: nothing is written")
    for report in result.captures:
        print(f"  capture {report.source}: {report.found} found, {len(report.would_add)} new, "
              f"{report.duplicates} already stored, {report.rejected} rejected")
        for error in report.errors:
            print(f"    ! {error}")
    for item in result.would_add:
        print(f"  would capture [{item.source_type.value}] {item.title}")
    if result.would_retry or options.retry_failed:
        print(f"  would put {len(result.would_retry)} Failed items back in the Inbox")
        for item in result.would_retry:
            print(f"  would retry [{item.source_type.value}] {item.title}: {item.error or ''}")
    also = [what for what, some in (("just captured", result.would_add), ("put back", result.would_retry)) if some]
    print(f"  would enrich {len(result.would_enrich)} items waiting (pending in the journal, in the Inbox)"
          + (f" (and those {' and '.join(also)})" if also else ""))
    for item in result.would_enrich:
        print(f"  would enrich [{item.source_type.value}] {item.title}")
    if result.error:
        print(f"{script}: error: {result.error}", file=sys.stderr)
