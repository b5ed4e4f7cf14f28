"""``notion setup`` and ``notion check``: create or verify the Sources database."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ..config import Settings
from ..errors import PipelineError
from ..services import ServiceGateway
from ..sources.notion_schema import ERROR_SEVERITY, check_database, setup_database
from .options import quiet_gateway


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("notion", help="create (setup) or verify (check) the Notion Sources database")
    commands = parser.add_subparsers(dest="notion_command", metavar="{setup,check}")
    commands.required = True
    setup = commands.add_parser("setup", help="create a Sources database with every property under a page")
    setup.add_argument("--parent-page", help="id of the parent page (default: NOTION_PARENT_PAGE)")
    setup.set_defaults(handler=handle_setup)
    check = commands.add_parser("check", help="list missing or mistyped properties of NOTION_SOURCES_DB")
    check.set_defaults(handler=handle_check)


def _gateway(settings: Settings) -> ServiceGateway:
    return quiet_gateway(settings, "notion")


def handle_setup(args: argparse.Namespace, settings: Settings) -> int:
    parent = getattr(args, "parent_page", None) or settings.notion_parent_page
    if not settings.notion_token:
        print("notion setup: NOTION_TOKEN is not set", file=sys.stderr)
        return 2
    if not parent:
        print("notion setup: give --parent-page or set NOTION_PARENT_PAGE (a page shared with the integration)",
              file=sys.stderr)
        return 2
    if settings.notion_sources_db:
        print(f"notion setup: NOTION_SOURCES_DB is already set ({settings.notion_sources_db}); `notion check` "
              "verifies that database (to create another: NOTION_SOURCES_DB= python3 -m knowledge_pipeline "
              "notion setup)", file=sys.stderr)
        return 2
    try:
        database_id = asyncio.run(setup_database(settings, _gateway(settings), parent))
    except PipelineError as exc:
        print(f"notion setup failed: {exc}", file=sys.stderr)
        return 1
    print(f"Created the Sources database {database_id}")
    print("Add this line to .env:")
    print(f"NOTION_SOURCES_DB={database_id}")
    return 0


def handle_check(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.notion_token or not settings.notion_sources_db:
        print("notion check: set NOTION_TOKEN and NOTION_SOURCES_DB", file=sys.stderr)
        return 2
    try:
        problems, choice = asyncio.run(check_database(settings, _gateway(settings)))
    except PipelineError as exc:
        print(f"notion check failed: {exc}", file=sys.stderr)
        return 1
    if choice is not None and choice.ambiguous:
        print(f"warning: {choice.explanation()}")
        print(f"  {choice.fix}; checking the first")
    if not problems:
        print(f"The Sources database {settings.notion_sources_db} has every property the pipeline needs.")
        return 0
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity == ERROR_SEVERITY)
    print(f"{errors} required propert{'y' if errors == 1 else 'ies'} wrong, {len(problems) - errors} recommended")
    return 1 if errors else 0
