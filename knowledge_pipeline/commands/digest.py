"""``digest``: what was enriched in a period, by content type, printed or posted to DIGEST_WEBHOOK_URL."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from typing import Any

from ..cli import counted
from ..config import Settings
from ..errors import PipelineError
from ..reading.digest import Digest, build_digest, to_html, to_markdown, to_slack
from ..reading.periods import parse_since
from ..sources import open_reading_store
from ..webhooks import post_json, safe_origin
from .options import opened, quiet_gateway, since_type

DEFAULT_SINCE = "1d"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "digest", help="what was enriched in a period, by content type (Markdown, HTML, or --post)",
        description="The items enriched in the period, grouped by content type, each with its executive summary and "
        "link. --post sends it to DIGEST_WEBHOOK_URL (Slack-compatible JSON); nothing is posted when the period "
        "is empty.",
    )
    parser.add_argument("--since", type=since_type, default=None, metavar="WHEN",
                        help=f"start of the period: 90m, 12h, 1d, 2w or an ISO date/datetime (default {DEFAULT_SINCE})")
    parser.add_argument("--format", choices=("md", "html"), default="md", help="what to print (default md)")
    parser.add_argument("--post", action="store_true", help="post it to DIGEST_WEBHOOK_URL instead of printing it")
    parser.set_defaults(handler=handle)


async def _digest(settings: Settings, since: datetime, until: datetime) -> Digest:
    async with opened(open_reading_store(settings, quiet_gateway(settings, "digest"))) as store:
        taxonomy = await store.taxonomy()
        return await build_digest(store, since, until, taxonomy.content_types)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.post and not settings.digest_webhook_url:
        print("digest --post: set DIGEST_WEBHOOK_URL to a Slack-style incoming webhook URL", file=sys.stderr)
        return 2
    until = datetime.now(timezone.utc)
    since = args.since or parse_since(DEFAULT_SINCE, until)
    try:
        digest = asyncio.run(_digest(settings, since, until))
    except PipelineError as exc:
        print(f"digest: {exc}", file=sys.stderr)
        return 1
    if not args.post:
        sys.stdout.write(to_html(digest) if args.format == "html" else to_markdown(digest))
        return 0
    origin = safe_origin(settings.digest_webhook_url or "")
    if not digest.count:
        print(f"Nothing enriched since {since:%Y-%m-%d %H:%M} UTC; nothing posted.")
        return 0
    error = asyncio.run(post_json(settings.digest_webhook_url or "", to_slack(digest), timeout=settings.api_timeout))
    if error is not None:
        print(f"digest: posting to {origin} failed: {error}", file=sys.stderr)
        return 1
    print(f"Posted the digest of {counted(digest.count, 'item')} to {origin}.")
    return 0
