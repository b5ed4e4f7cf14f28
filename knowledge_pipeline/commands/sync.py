"""``sync --to notion`` / ``sync --from notion``: copy between the SQLite store and the Notion database."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ..cli import counted
from ..config import Settings
from ..errors import ConfigError, FatalRunError, LockHeldError, PipelineError
from ..journal import RunLock
from ..logging_setup import setup_logging
from ..services import ServiceGateway
from ..sources import sync
from ..sources.notion import NotionStore
from ..sources.sqlite import SqliteStore
from ..telemetry import Telemetry
from .options import opened


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sync", help="copy SQLite items to Notion (--to notion) or the Notion database to SQLite (--from notion)",
        description="--to notion: every SQLite item whose hash the Notion database lacks becomes a complete page "
        "(one request when the body fits). --from notion: every page, with its body toggles, into the SQLite store "
        "at SOURCES_DB_PATH (local search, the reading page, a backup); later runs fetch only pages edited since. "
        "Both can be interrupted and run again; they respect NOTION_MAX_RPS and log to $LOG_DIR/pipeline.jsonl. "
        "Exit codes: 0 done, 1 some items failed or the sync stopped, 2 configuration, 75 another run holds "
        "the store, 130 interrupted.",
    )
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--to", choices=("notion",), help="copy the SQLite items Notion lacks to Notion")
    direction.add_argument("--from", dest="source", choices=("notion",),
                           help="copy the Notion database into the SQLite store")
    parser.set_defaults(handler=handle)


async def _run(settings: Settings, telemetry: Telemetry, held: RunLock, to_notion: bool) -> sync.SyncReport:
    async with opened(SqliteStore(settings.sources_db_path, settings.taxonomy)) as local, \
            opened(NotionStore(settings, ServiceGateway.from_settings(settings, telemetry))) as notion:
        if to_notion:
            with _data_source_lock(settings, notion, held):
                return await sync.to_notion(local, notion, telemetry)
        return await sync.from_notion(notion, local, telemetry)


def _data_source_lock(settings: Settings, notion: NotionStore, held: RunLock) -> AbstractContextManager:
    """The lock of the data source NOTION_SOURCES_DB resolved to, as a run takes it once the store is open.

    A database id and its data source id then exclude each other; given the data
    source id itself, its lock is ``held`` already.
    """
    from ..run_locks import notion_lock_path

    path = notion_lock_path(settings, notion.data_source_id)
    return nullcontext() if path == held.path else RunLock(path)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from ..runner import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK  # the runner is heavy

    to_notion = args.to == "notion"
    name = "sync --to notion" if to_notion else "sync --from notion"
    if not settings.notion_token or not settings.notion_sources_db:
        print(f"{name}: set NOTION_TOKEN and NOTION_SOURCES_DB", file=sys.stderr)
        return EXIT_CONFIG
    try:
        setup_logging(settings, console="none")
    except ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    telemetry = Telemetry("knowledge_pipeline.sync")
    telemetry.bind(run_id=uuid.uuid4().hex[:12])
    from ..run_locks import beside, notion_lock_path

    lock = RunLock(notion_lock_path(settings, settings.notion_sources_db) if to_notion
                   else beside(settings.sources_db_path))
    try:
        with lock:
            report = asyncio.run(_run(settings, telemetry, lock, to_notion))
    except LockHeldError as exc:
        print(f"{name}: {exc}; nothing was done", file=sys.stderr)
        return EXIT_LOCKED
    except KeyboardInterrupt:
        print(f"{name}: interrupted; run it again to continue where it stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FatalRunError as exc:
        print(f"{name} stopped: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except PipelineError as exc:
        print(f"{name} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    where = "to the Notion database" if to_notion else f"into {settings.sources_db_path}"
    print(f"{name}: {report.summary()} ({where})")
    if report.failed:
        print(f"{name}: {counted(report.failed, 'item')} failed (see sync_item_failed in the log); run it again to retry them",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
