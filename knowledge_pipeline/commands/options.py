"""What the reading commands share: filter options, ``--since``, a quiet gateway, the terminal width."""

from __future__ import annotations

import argparse
import logging
import shutil
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, AsyncIterator, Callable, TypeVar

from ..config import Settings
from ..models import SourceType, Status
from ..reading.periods import parse_since
from ..services import ServiceGateway
from ..sources.base import ItemQuery
from ..telemetry import Telemetry

E = TypeVar("E", Status, SourceType)
S = TypeVar("S")


def since_type(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _choice(enum: type[E]) -> Callable[[str], E]:
    """An argparse type accepting an enum's value in any case."""

    def convert(text: str) -> E:
        for member in enum:
            if member.value.casefold() == text.strip().casefold():
                return member
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(m.value for m in enum)}")

    convert.__name__ = enum.__name__
    return convert


def add_filters(parser: argparse.ArgumentParser, *, since_help: str = "only items added since WHEN") -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--status", type=_choice(Status), metavar="STATUS",
                       help=", ".join(s.value for s in Status))
    group.add_argument("--type", dest="content_type", metavar="CONTENT_TYPE", help="only this content type")
    group.add_argument("--vendor", help="only this vendor")
    group.add_argument("--primitive", metavar="AI_PRIMITIVE", help="only items with this AI primitive")
    group.add_argument("--source-type", type=_choice(SourceType), metavar="SOURCE_TYPE",
                       help=", ".join(t.value for t in SourceType))
    group.add_argument("--since", type=since_type, metavar="WHEN",
                       help=f"{since_help}: 90m, 12h, 1d, 2w or an ISO date/datetime (UTC unless it has an offset)")


def query_from(args: argparse.Namespace, **fields: Any) -> ItemQuery:
    values: dict[str, Any] = dict(
        status=getattr(args, "status", None),
        source_type=getattr(args, "source_type", None),
        content_type=getattr(args, "content_type", None),
        vendor=getattr(args, "vendor", None),
        primitive=getattr(args, "primitive", None),
        added_since=getattr(args, "since", None),
    )
    values.update(fields)
    return ItemQuery(**values)


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def quiet_gateway(settings: Settings, name: str) -> ServiceGateway:
    """A gateway whose events are not printed by logging's fallback: the command prints failures once."""
    telemetry = Telemetry(f"knowledge_pipeline.commands.{name}")
    telemetry.logger.addHandler(logging.NullHandler())
    return ServiceGateway.from_settings(settings, telemetry)


def terminal_width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


@asynccontextmanager
async def opened(store: S) -> AsyncIterator[S]:
    """The store, opened for the block and closed after it whatever happens."""
    await store.open()  # type: ignore[attr-defined]
    try:
        yield store
    finally:
        await store.close()  # type: ignore[attr-defined]
