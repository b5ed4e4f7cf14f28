"""``batches``: the Batch API batches of this pipeline (open first, then recent); ``batches cancel ID``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..errors import PipelineError
from ..services import ServiceGateway
from ..telemetry import Telemetry

if TYPE_CHECKING:
    from ..batches.state import BatchRecord, BatchState

RECENT = 20


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("batches", help="list OpenAI batches (open and recent) or cancel one")
    parser.add_argument("--json", action="store_true", help="print a JSON array of objects")
    parser.add_argument("--all", action="store_true", help=f"every batch, not only the open ones and the last {RECENT}")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    cancel = actions.add_parser("cancel", help="cancel an open batch (its finished lines are still collected)")
    cancel.add_argument("batch_id", help="the batch's OpenAI id (batch_...) or local id (kp-...)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    # imported here: the batches package loads the OpenAI SDK (~0.5 s), which every other command would pay
    from ..batches.state import FINISHED, BatchState, state_path

    path = state_path(settings.journal_path)
    if not path.exists():
        if args.action == "cancel":
            print(f"batches cancel: no batch {args.batch_id}: this pipeline has submitted no batch ({path} does not exist)",
                  file=sys.stderr)
            return 1
        print("[]" if args.json else "No batches: this pipeline has submitted none (OPENAI_BATCH).")
        return 0
    state = BatchState(path).open()
    try:
        if args.action == "cancel":
            return asyncio.run(_cancel(settings, state, args.batch_id))
        batches = state.batches()
    finally:
        state.close()
    shown = [b for b in batches if b.state != FINISHED] + [b for b in batches if b.state == FINISHED][
        : None if args.all else RECENT]
    if args.json:
        print(json.dumps([asdict(b) for b in shown], indent=2))
    else:
        print(render(shown))
    return 0


def render(batches: list[BatchRecord]) -> str:
    from ..batches.state import FINISHED

    if not batches:
        return "No batches."
    header = ("Local id", "OpenAI id", "State", "Created (UTC)", "Items", "Requests", "Done", "Failed",
              "Enriched", "Cost")
    rows = [header] + [
        (b.local_id, b.remote_id or "-", b.remote_status or b.state, b.created_at[:16].replace("T", " "),
         str(b.items), str(b.requests), str(b.completed), str(b.failed), str(b.items_enriched),
         "-" if b.state != FINISHED else "?" if b.cost_usd is None else f"${b.cost_usd:.4f}")
        for b in batches
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    note = "Counts are as of the last run (it polls open batches first); cost is charged when a batch is collected."
    return "\n".join(lines + ["", note])


async def _cancel(settings: Settings, state: BatchState, some_id: str) -> int:
    from ..batches.api import BatchApi
    from ..batches.state import SUBMITTED

    batch = state.find(some_id)
    if batch is None:
        print(f"batches cancel: no batch {some_id} in {state.path}", file=sys.stderr)
        return 1
    if batch.state != SUBMITTED or not batch.remote_id:
        print(f"batches cancel: batch {some_id} is {batch.remote_status or batch.state}: only a submitted, unfinished batch can be "
              "cancelled", file=sys.stderr)
        return 1
    if not settings.openai_api_key:
        print("batches cancel: OPENAI_API_KEY is not set: cannot reach the Batch API", file=sys.stderr)
        return 2
    api = BatchApi(settings, ServiceGateway.from_settings(settings, Telemetry("batches")))
    try:
        remote = await api.cancel(batch.remote_id)
    except PipelineError as exc:
        print(f"batches cancel: cannot cancel {batch.remote_id}: {exc}", file=sys.stderr)
        return 1
    finally:
        await api.close()
    state.update(batch.local_id, remote_status=remote.status)
    print(f"{batch.remote_id} is {remote.status}; the next run collects what it finished and enriches the rest directly")
    return 0
