"""Talking to Notion: the client, error classification, data source resolution.

Every request goes through :meth:`ServiceGateway.call` with service and
limiter key ``notion`` (capped at ``NOTION_MAX_RPS``); the SDK's own retries
are off, so each retry is an ``api_call_retry`` event. :func:`classify` maps
notion-client 3.1 errors: ``APIResponseError`` / ``UnknownHTTPResponseError``
carry ``.status``, ``.code`` and the response ``.headers``;
``RequestTimeoutError`` is the client's timeout; connection failures surface
as raw ``httpx.TransportError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import httpx
from notion_client import AsyncClient
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from ..config import Settings
from ..errors import FatalRunError, ServiceError
from ..services import ServiceGateway, retry_after_seconds

SERVICE = "notion"
PAGE_SIZE = 100
RETRYABLE_STATUS = frozenset({409, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403})

T = TypeVar("T")


def _code(error: HTTPResponseError) -> str:
    code = error.code
    return code.value if isinstance(code, Enum) else str(code)


def _redact(message: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return " ".join(message.split())


def classify(exc: BaseException, secrets: tuple[str, ...] = ()) -> ServiceError:
    """Map a notion-client / httpx error to a ServiceError (retryable? fatal? Retry-After?)."""
    if isinstance(exc, HTTPResponseError):
        status, code = exc.status, _code(exc)
        detail = str(exc) if code != "notionhq_client_response_error" else f"HTTP {status}"
        return ServiceError(
            SERVICE,
            _redact(f"Notion {code} ({status}): {detail}", secrets),
            status_code=status,
            code=code,
            retryable=status in RETRYABLE_STATUS,
            retry_after=retry_after_seconds(exc.headers) if status == 429 else None,
            fatal=status in FATAL_STATUS,
        )
    if isinstance(exc, RequestTimeoutError):
        return ServiceError(SERVICE, "Notion request timed out", code="timeout", retryable=True)
    if isinstance(exc, httpx.TransportError):
        kind = type(exc).__name__
        return ServiceError(
            SERVICE, _redact(f"Notion connection failed ({kind}): {exc}", secrets), code="connection_error", retryable=True
        )
    return ServiceError(SERVICE, _redact(f"Notion call failed ({type(exc).__name__}): {exc}", secrets), code=type(exc).__name__)


def may_have_applied(exc: BaseException) -> bool:
    """Whether a failed write may still have been applied by the server (5xx, timeout, dropped reply).

    A 429, a 4xx or a refused connection never reaches the data; these do, so
    a retry of a non-idempotent write must first look at what is there.
    """
    if isinstance(exc, HTTPResponseError):
        return exc.status >= 500
    if isinstance(exc, RequestTimeoutError):
        return True
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


class NotionApi:
    """The Notion endpoints the pipeline uses, each call limited, retried and reported."""

    def __init__(self, settings: Settings, gateway: ServiceGateway, client: AsyncClient | None = None) -> None:
        self.settings = settings
        self.gateway = gateway
        self._client = client
        self._own_client = client is None

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise RuntimeError("NotionApi.open() was not called")
        return self._client

    async def open(self) -> None:
        """Create the client inside the running event loop."""
        if self._client is None:
            if not self.settings.notion_token:
                raise FatalRunError("NOTION_TOKEN is not set")
            quiet = logging.getLogger("knowledge_pipeline.notion_client")
            self._client = AsyncClient(
                auth=self.settings.notion_token,
                base_url=self.settings.notion_base_url,
                timeout_ms=int(self.settings.api_timeout * 1000),
                retry=False,
                logger=quiet,
                log_level=logging.ERROR,
            )

    async def close(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
        self._client = None

    def _classify(self, exc: BaseException) -> ServiceError:
        return classify(exc, self.settings.secrets)

    async def call(
        self, operation: str, fn: Callable[[], Awaitable[T]], *, context: dict[str, Any] | None = None,
        before_retry: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        return await self.gateway.call(
            SERVICE, operation, fn, classify=self._classify, limiter_key=SERVICE, context=context,
            before_retry=before_retry,
        )

    async def retrieve_database(self, database_id: str) -> dict:
        return await self.call("databases.retrieve", lambda: self.client.databases.retrieve(database_id))

    async def retrieve_data_source(self, data_source_id: str) -> dict:
        return await self.call("data_sources.retrieve", lambda: self.client.data_sources.retrieve(data_source_id))

    async def create_database(self, **body: Any) -> dict:
        return await self.call("databases.create", lambda: self.client.databases.create(**body))

    async def query_pages(
        self, data_source_id: str, *, filter: dict | None = None, filter_properties: list[str] | None = None,
        newest_first: bool = False, page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[list[dict]]:
        """Pages matching ``filter``, ``page_size`` (at most 100) per request, one list per response.

        Oldest first by creation time, or newest first.
        """
        direction = "descending" if newest_first else "ascending"
        body: dict[str, Any] = {
            "page_size": max(1, min(page_size, PAGE_SIZE)),
            "sorts": [{"timestamp": "created_time", "direction": direction}],
        }
        if filter is not None:
            body["filter"] = filter
        if filter_properties:
            body["filter_properties"] = filter_properties
        cursor: str | None = None
        while True:
            request = dict(body, start_cursor=cursor) if cursor else body
            response = await self.call(
                "data_sources.query", lambda: self.client.data_sources.query(data_source_id, **request)
            )
            yield response.get("results", [])
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    async def list_children(self, block_id: str, *, context: dict[str, Any] | None = None) -> AsyncIterator[dict]:
        cursor: str | None = None
        while True:
            response = await self.call(
                "blocks.children.list",
                lambda: self.client.blocks.children.list(block_id, start_cursor=cursor, page_size=PAGE_SIZE),
                context=context,
            )
            for block in response.get("results", []):
                yield block
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    async def delete_block(self, block_id: str, *, context: dict[str, Any] | None = None) -> dict | None:
        """Move a block to the trash; a block already there (a retry whose reply was lost) counts as done."""
        try:
            return await self.call("blocks.delete", lambda: self.client.blocks.delete(block_id), context=context)
        except ServiceError as exc:
            if exc.code == "validation_error" and "archived" in str(exc):
                return None
            raise

    async def retrieve_page(self, page_id: str, *, context: dict[str, Any] | None = None) -> dict:
        return await self.call("pages.retrieve", lambda: self.client.pages.retrieve(page_id), context=context)

    async def update_page(self, page_id: str, *, context: dict[str, Any] | None = None, **body: Any) -> dict:
        return await self.call("pages.update", lambda: self.client.pages.update(page_id, **body), context=context)

    async def create_page(
        self, body: dict[str, Any], *, before_retry: Callable[[], Awaitable[dict | None]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict:
        return await self._write_once(
            "pages.create", lambda: self.client.pages.create(**body), before_retry, context
        )

    async def append_children(
        self, block_id: str, children: list[dict], *,
        before_retry: Callable[[], Awaitable[dict | None]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict:
        return await self._write_once(
            "blocks.children.append",
            lambda: self.client.blocks.children.append(block_id, children=children),
            before_retry,
            context,
        )

    async def _write_once(
        self,
        operation: str,
        send: Callable[[], Awaitable[dict]],
        before_retry: Callable[[], Awaitable[dict | None]] | None,
        context: dict[str, Any] | None,
    ) -> dict:
        """A non-idempotent write whose retries do not duplicate it.

        When an attempt failed in a way that may have been applied (5xx,
        timeout), ``before_retry`` runs first (its requests are limited and
        reported like any other): it returns the write's result if the write
        did land, or None after undoing what the attempt may have left. The
        gateway runs it between attempts, so the write sent after it waits
        for its own limiter slot.
        """
        uncertain = False

        async def attempt() -> dict:
            nonlocal uncertain
            uncertain = False
            try:
                return await send()
            except Exception as exc:
                uncertain = may_have_applied(exc)
                raise

        async def look() -> dict | None:
            if uncertain and before_retry is not None:
                return await before_retry()
            return None

        return await self.call(operation, attempt, context=context, before_retry=look)


@dataclass(frozen=True)
class DataSourceChoice:
    """The data source NOTION_SOURCES_DB leads to, and, when it names a database, every data source of it."""

    source: dict
    database_id: str | None = None
    available: tuple[tuple[str, str], ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.available) > 1

    def explanation(self) -> str:
        """One line: which data sources exist, which one is used, how to choose (empty when there is no choice)."""
        if not self.ambiguous:
            return ""
        listed = ", ".join(f'"{name}" ({source_id})' for source_id, name in self.available)
        used_id, used_name = self.available[0]
        return (f"Notion database {self.database_id} has {len(self.available)} data sources: {listed}; "
                f'using the first, "{used_name}" ({used_id})')

    @property
    def fix(self) -> str:
        return "to use another, set NOTION_SOURCES_DB to its data source id"


async def resolve_data_source(api: NotionApi, source_id: str) -> DataSourceChoice:
    """The data source behind NOTION_SOURCES_DB (a database id: its first data source; or a data source id)."""
    try:
        database = await api.retrieve_database(source_id)
    except ServiceError as exc:
        if exc.code != "object_not_found":
            raise
    else:
        sources = database.get("data_sources") or []
        if not sources:
            raise FatalRunError(f"Notion database {source_id} has no data source")
        available = tuple((s["id"], s.get("name") or "") for s in sources)
        source = await api.retrieve_data_source(sources[0]["id"])
        return DataSourceChoice(source, database.get("id", source_id), available)
    try:
        return DataSourceChoice(await api.retrieve_data_source(source_id))
    except ServiceError as exc:
        if exc.code != "object_not_found":
            raise
        raise FatalRunError(
            f"NOTION_SOURCES_DB={source_id} is neither a database nor a data source the integration can see: "
            "check the id and share the database with the integration (\u2022\u2022\u2022 > Connections)"
        ) from exc
