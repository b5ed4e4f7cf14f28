"""The reading page (``serve``): search, filters and every item's toggles, read-only, offline.

Starlette (routing, requests, responses) on uvicorn, pages from the Jinja2
templates in ``templates/`` with autoescape. Every response carries a
Content-Security-Policy that allows no script at all and nothing from another
origin, so even text that slipped through escaping could not run or load
anything. Only GET (and HEAD) exist; the store is opened once and only read.

The store's calls are quick SQLite reads made on the event loop, one request
at a time: a personal reading page on 127.0.0.1 does not need more, and it
keeps one connection for the server's life. The filters' option lists are
cached (see :class:`Reader`).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as day_start
from typing import AsyncIterator, Callable
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import ItemError, SearchQueryError
from ..models import SourceType, Status
from ..sources.base import ItemContent, ItemQuery
from ..sources.sqlite import SqliteStore
from .records import link, warnings_of
from .render import render, stylesheet

PAGE_SIZE = 20
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
FILTERS = ("type", "vendor", "primitive", "source", "status", "from", "to")


FACETS_MAX_AGE = 60.0


@dataclass
class Facets:
    version: int
    made: float
    values: dict[str, list[tuple[str, int]]]


class Reader:
    """The store as the page reads it, with the filters' option lists cached.

    The lists are made again when another connection changed the file, at most
    once a minute: while a run writes every few seconds, a page stays fast and
    its counts are at most a minute old.
    """

    def __init__(self, store: SqliteStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._facets: Facets | None = None

    async def facets(self) -> dict[str, list[tuple[str, int]]]:
        version = int(self.store.db.execute("PRAGMA data_version").fetchone()[0])
        cached = self._facets
        if cached is None or (cached.version != version and self.clock() - cached.made >= FACETS_MAX_AGE):
            self._facets = cached = Facets(version, self.clock(), await self.store.facets())
        return cached.values


def _date(text: str | None, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as the start of that day (UTC), or of the next one for an end bound.

    An end bound on the last day there is (9999-12-31) is no bound: its next day cannot be written.
    """
    if not text:
        return None
    day = date.fromisoformat(text)
    if end and day == date.max:
        return None
    moment = datetime.combine(day, day_start(), tzinfo=timezone.utc)
    return moment + timedelta(days=1) if end else moment


def _enum(kind: type, value: str | None):  # noqa: ANN202 - Status or SourceType
    return next((m for m in kind if value and m.value.casefold() == value.casefold()), None)


def _query(params: dict[str, str], page: int) -> tuple[ItemQuery, list[str]]:
    """The filters of the form as a query, and a problem line for each value that could not be used."""
    problems = []
    bounds: dict[str, datetime | None] = {}
    for name, end in (("from", False), ("to", True)):
        try:
            bounds[name] = _date(params.get(name), end)
        except ValueError:
            problems.append(f"{params[name]!r} is not a date (YYYY-MM-DD); the {name} date is ignored.")
            bounds[name] = None
    query = ItemQuery(
        status=_enum(Status, params.get("status")), source_type=_enum(SourceType, params.get("source")),
        content_type=params.get("type") or None, vendor=params.get("vendor") or None,
        primitive=params.get("primitive") or None, added_since=bounds["from"], added_before=bounds["to"],
        newest_first=True, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
    )
    return query, problems


def _page_number(text: str | None) -> int:
    try:
        return max(1, min(int(text or 1), 100_000))
    except ValueError:
        return 1


def _page(template: str, status_code: int = 200, **values: object) -> HTMLResponse:
    return HTMLResponse(render(template, **values), status_code=status_code, headers=SECURITY_HEADERS)


async def index(request: Request) -> HTMLResponse:
    reader: Reader = request.app.state.reader
    params = {key: request.query_params.get(key, "").strip() for key in ("q", *FILTERS)}
    page = _page_number(request.query_params.get("page"))
    query, problems = _query(params, page)
    hits: list = []
    items: list = []
    total = reachable = 0
    more = False
    if params["q"]:
        try:
            found = await reader.store.search(params["q"], query)
            hits, total, more, reachable = found.hits, found.total, found.more, found.reachable
        except SearchQueryError as exc:
            problems.append(str(exc))
    else:
        items = [item async for item in reader.store.list_items(query)]
        total = await reader.store.count_items(query.unlimited()) if items or page > 1 else 0
        reachable = total
    kept = {key: value for key, value in params.items() if value}

    def page_link(number: int) -> str:
        return "/?" + urlencode({**kept, "page": number})

    return _page(
        "index.html", params=params, facets=await reader.facets(), hits=hits, items=items, total=total, more=more,
        page=page, pages=max(1, -(-reachable // PAGE_SIZE)), page_link=page_link, problems=problems,
        statuses=[s.value for s in Status], source_types=[t.value for t in SourceType], first=query.offset + 1,
    )


async def item_page(request: Request) -> HTMLResponse:
    reader: Reader = request.app.state.reader
    item_id = request.path_params["item_id"]
    try:
        item = await reader.store.get(item_id)
    except ItemError:
        return _page("missing.html", 404, item_id=item_id, code=404)
    content = ItemContent.from_body(await reader.store.body(item.id))
    return _page("item.html", item=item, content=content, link=link(item), warnings=warnings_of(item))


async def style(request: Request) -> Response:
    return Response(stylesheet(), media_type="text/css", headers=SECURITY_HEADERS)


async def not_found(request: Request, exc: Exception) -> HTMLResponse:
    code = getattr(exc, "status_code", 404)
    return _page("missing.html", code, item_id=None, code=code)


def create_app(store: SqliteStore) -> Starlette:
    """The reading page over ``store`` (opened when the server starts, closed when it stops)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        app.state.reader = Reader(store)
        try:
            yield
        finally:
            await store.close()

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/item/{item_id:str}", item_page, methods=["GET"]),
        Route("/static/style.css", style, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found})
