"""The Notion Sources store (``SOURCES_BACKEND=notion``), on the original pipeline's schema.

Requests per item: enriching costs one ``blocks.children.append`` (the four
toggles with their children) and one ``pages.update`` (every property and
``Status = Enriched`` last), unless the text needs more than one append
(over 100 blocks in a toggle or ~400 KB). Queries cost one request per 100
pages. Feed content given to :meth:`add` is kept for this process only: the
page body is not read back, because that would cost a request per item.

An email (Source Type Email) has no page to fetch again, so its text also
goes into the page it is created with, in an "Email" toggle (same request);
an Inbox email whose text this process does not hold reads it back from
there (two requests) when the Inbox is streamed.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Collection

from notion_client import AsyncClient

from ..config import Settings
from ..errors import FatalRunError, ItemError, ItemNotFound, ServiceError, StoreError
from ..models import Enrichment, Item, NewItem, SourceType, Status, Taxonomy
from ..services import ServiceGateway
from .base import BODY_TOGGLES, EMAIL_TOGGLE, INCOMPLETE_BODY, ItemQuery, as_query
from .notion_api import NotionApi, may_have_applied, resolve_data_source
from .notion_blocks import (
    MAX_TEXT,
    PARAGRAPH_SEPARATOR,
    REQUEST_BYTES_BUDGET,
    analysis_blocks,
    block_text,
    cut_words,
    paragraph_blocks,
    plan_body,
    request_size,
    rich_text,
    text_block,
    utf16_len,
)
from .notion_schema import (
    AI_PRIMITIVE,
    CONTENT_TYPE,
    ERROR,
    ERROR_SEVERITY,
    HASH,
    SENDER,
    SOURCE_TYPE,
    STATUS,
    SUMMARY,
    VENDOR,
    WARNINGS,
    schema_problems,
)

MAX_URL = 2000
MAX_SELECT_NAME = 100
MAX_MULTI_SELECT = 100


def select_name(value: str | None) -> str | None:
    """A valid select option name: no commas, at most 100 characters; None when nothing is left."""
    if not value:
        return None
    name = " ".join(re.sub(r"\s*,\s*", " ", value).split())
    while utf16_len(name) > MAX_SELECT_NAME:
        name = name[:-1]
    return name.strip() or None


def _plain(prop: dict | None) -> str:
    if not prop:
        return ""
    return "".join(part.get("plain_text", "") for part in prop.get(prop.get("type", ""), None) or [])


def _option(prop: dict | None) -> str | None:
    if not prop:
        return None
    value = prop.get(prop.get("type", ""))
    return value.get("name") if isinstance(value, dict) else None


def _date(prop: dict | None) -> date | None:
    value = (prop or {}).get("date")
    if not value or not value.get("start"):
        return None
    try:
        return date.fromisoformat(value["start"][:10])
    except ValueError:
        return None


def _timestamp(value: str | None) -> datetime | None:
    """A page's ``created_time``/``last_edited_time`` (ISO 8601, ``Z``) as an aware datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _id_key(page_id: str) -> str:
    return page_id.replace("-", "").lower()


def _as_url(location: str) -> str:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", location):
        return location
    return Path(location).expanduser().resolve().as_uri()


class NotionStore:
    """Sources in a Notion data source: NOTION_SOURCES_DB's own, or the first of the database it names.

    A database with several data sources is used through its first one, with
    a ``notion_data_sources`` warning at open naming them all and how to pick
    another (its data source id).
    """

    name = "notion"

    def __init__(self, settings: Settings, gateway: ServiceGateway, *, client: AsyncClient | None = None,
                 read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only
        self.telemetry = gateway.telemetry
        self._api = NotionApi(settings, gateway, client)
        self._data_source_id: str | None = None
        self._properties: dict[str, dict] = {}
        self._title = "Title"
        self._taxonomy = Taxonomy()
        self._content: dict[str, str] = {}
        # Set by the run: whether the local text cache holds an item's text (then an email's is not read back).
        self.text_kept: Callable[[Item], bool] | None = None

    @property
    def max_raw_chars(self) -> int:
        return self.settings.notion_max_raw_chars

    # -- opening: the data source and its schema ---------------------------------

    async def open(self) -> None:
        if not self.settings.notion_sources_db:
            raise FatalRunError("NOTION_SOURCES_DB is not set")
        await self._api.open()
        try:
            choice = await resolve_data_source(self._api, self.settings.notion_sources_db)
            if choice.ambiguous:
                self._warn("notion_data_sources", f"{choice.explanation()}; {choice.fix}",
                           database_id=choice.database_id, used=choice.source["id"], fix=choice.fix,
                           data_sources=[{"id": i, "name": n} for i, n in choice.available])
            self._use_schema(choice.source)
        except ServiceError as exc:
            await self._api.close()
            raise FatalRunError(f"cannot open the Notion Sources database: {exc}") from exc
        except BaseException:
            await self._api.close()
            raise

    def _use_schema(self, source: dict) -> None:
        self._data_source_id = source["id"]
        self._properties = source.get("properties") or {}
        self._title = next((n for n, p in self._properties.items() if p.get("type") == "title"), "Title")
        core = {STATUS, SOURCE_TYPE, HASH, self.settings.rss_url_prop, self.settings.pdf_url_prop}
        problems = schema_problems(self._properties, self.settings)
        broken = [p for p in problems if p.property in core and p.severity == ERROR_SEVERITY]
        if broken:
            raise FatalRunError(
                "the Notion Sources database cannot be used: "
                + "; ".join(f"{p.property} {p.problem} ({p.fix})" for p in broken)
                + " - see `python3 -m knowledge_pipeline notion check`"
            )
        for problem in problems:
            if problem.property == self.settings.category_prop and problem.problem == "missing":
                continue  # optional: a database without it simply gets no feed categories
            self._warn("notion_schema_warning", f"Notion Sources schema: {problem}", property=problem.property,
                       problem=problem.problem, fix=problem.fix, severity=problem.severity)
        self._taxonomy = Taxonomy(
            content_types=self._options(CONTENT_TYPE, "select") or Taxonomy().content_types,
            ai_primitives=self._options(AI_PRIMITIVE, "multi_select") or Taxonomy().ai_primitives,
            hints=self.settings.taxonomy.hints if self.settings.taxonomy else (),
        )

    def _options(self, name: str, kind: str) -> tuple[str, ...]:
        prop = self._properties.get(name)
        names = tuple(o["name"] for o in (prop or {}).get(kind, {}).get("options", [])) if self._has(name, kind) else ()
        if not names:
            self._warn("taxonomy_fallback", f"Notion property {name} has no {kind} options; using the default taxonomy",
                       property=name)
        return names

    def _warn(self, event: str, message: str, **fields: Any) -> None:
        self.telemetry.event(event, message, level=logging.WARNING, **fields)

    def _has(self, name: str, *kinds: str) -> bool:
        return (self._properties.get(name) or {}).get("type") in kinds

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError("the Notion store is open read-only (dry run): nothing is written")

    @property
    def identity(self) -> str:
        """This store, as one string: the API root and the data source."""
        return f"notion:{self.settings.notion_base_url}:{self.data_source_id}"

    @property
    def data_source_id(self) -> str:
        if self._data_source_id is None:
            raise StoreError("the Notion store is not open")
        return self._data_source_id

    async def close(self) -> None:
        await self._api.close()

    async def taxonomy(self) -> Taxonomy:
        return self._taxonomy

    # -- property values -------------------------------------------------------------

    def _status(self, status: Status) -> dict:
        kind = self._properties[STATUS]["type"]
        return {kind: {"name": status.value}}

    def _status_filter(self, status: Status) -> dict:
        kind = self._properties[STATUS]["type"]
        return {"property": STATUS, kind: {"equals": status.value}}

    def _types_filter(self, source_types: Collection[SourceType], *, untyped: bool = False) -> dict:
        clauses = [{"property": SOURCE_TYPE, "select": {"equals": t.value}} for t in source_types]
        if untyped:
            clauses.append({"property": SOURCE_TYPE, "select": {"is_empty": True}})
        return clauses[0] if len(clauses) == 1 else {"or": clauses}

    def _item(self, page: dict) -> Item | None:
        props = page.get("properties", {})
        status_name = _option(props.get(STATUS))
        if status_name not in {s.value for s in Status}:
            return None
        url = (props.get(self.settings.rss_url_prop) or {}).get("url")
        pdf = (props.get(self.settings.pdf_url_prop) or {}).get("url")
        type_name = _option(props.get(SOURCE_TYPE))
        if type_name in {t.value for t in SourceType}:
            source_type = SourceType(type_name)
        else:
            source_type = SourceType.PDF if pdf and not url else SourceType.WEBSITE
        if source_type is SourceType.EMAIL:
            url = (props.get(self.settings.email_url_prop) or {}).get("url")
        primitives = (props.get(AI_PRIMITIVE) or {}).get("multi_select") or []
        category = props.get(self.settings.category_prop) or {}
        categories = [o["name"] for o in category.get("multi_select") or []] or [_option(category) or ""]
        return Item(
            id=page["id"],
            title=_plain(props.get(self._title)),
            source_type=source_type,
            status=Status(status_name),
            url=url,
            pdf_path=pdf,
            hash=_plain(props.get(HASH)) or None,
            content=self._content.get(page["id"]),
            created_date=_date(props.get(self.settings.created_prop)),
            summary=_plain(props.get(SUMMARY)) or None,
            content_type=_option(props.get(CONTENT_TYPE)),
            ai_primitives=tuple(o["name"] for o in primitives),
            vendor=_option(props.get(VENDOR)),
            error=_plain(props.get(ERROR)) or None,
            archived=bool(page.get("in_trash") or page.get("archived")),
            added_at=_timestamp(page.get("created_time")),
            updated_at=_timestamp(page.get("last_edited_time")),
            warnings=tuple(line for line in _plain(props.get(WARNINGS)).split("\n") if line),
            sender=_plain(props.get(SENDER)) if self._has(SENDER, "rich_text") else None,
            category=", ".join(name for name in categories if name) or None,
        )

    def _known_label(self, name: str, value: str) -> str | None:
        kind = (self._properties.get(name) or {}).get("type", "")
        options = (self._properties.get(name) or {}).get(kind, {}).get("options", [])
        return next((o["name"] for o in options if o["name"].casefold() == value.casefold()), None)

    async def _label(self, name: str, value: str) -> str:
        """The schema's spelling of a label typed in any case (Notion filters are exact).

        Options appear as pages use them (a new vendor), so an unknown label
        costs one schema read before it is taken as typed.
        """
        known = self._known_label(name, value)
        if known is None:
            source = await self._api.retrieve_data_source(self.data_source_id)
            self._properties = source.get("properties") or self._properties
            known = self._known_label(name, value)
        return known or value

    async def _query_filter(self, query: ItemQuery) -> dict | None:
        clauses: list[dict] = []
        if query.status is not None:
            clauses.append(self._status_filter(Status(query.status)))
        if query.source_type is not None:
            clauses.append(self._types_filter([SourceType(query.source_type)]))
        for name, kind, value, operator in (
            (CONTENT_TYPE, "select", query.content_type, "equals"),
            (VENDOR, "select", query.vendor, "equals"),
            (AI_PRIMITIVE, "multi_select", query.primitive, "contains"),
        ):
            if not value:
                continue
            if not self._has(name, kind):
                raise StoreError(f"cannot filter by {name}: the Sources database has no {kind} property {name!r}")
            clauses.append({"property": name, kind: {operator: await self._label(name, value)}})
        for stamp, operator, moment in (
            ("created_time", "on_or_after", query.added_since), ("created_time", "before", query.added_before),
            ("last_edited_time", "on_or_after", query.updated_since),
        ):
            if moment is not None:
                clauses.append({"timestamp": stamp, stamp: {operator: _instant(moment)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"and": clauses}

    # -- reading ----------------------------------------------------------------------

    async def _items(self, filter: dict | None) -> AsyncIterator[Item]:
        async for pages in self._api.query_pages(self.data_source_id, filter=filter):
            for page in pages:
                item = self._item(page)
                if item is not None:
                    yield item

    def _inbox_filter(self, source_types: Collection[SourceType] | None) -> dict:
        """Status Inbox and one of the types, whether or not the item has a URL.

        An item with nothing to read must come out too: the run marks it
        Failed with the reason instead of leaving it in the Inbox unseen,
        and it costs no request of its own. A page without a Source Type is
        taken with the article types (RSS, Website), whose run then infers it.
        """
        inbox = self._status_filter(Status.INBOX)
        if not source_types:
            return inbox
        wanted = list(dict.fromkeys(SourceType(t) for t in source_types))
        untyped = SourceType.RSS in wanted or SourceType.WEBSITE in wanted
        return {"and": [inbox, self._types_filter(wanted, untyped=untyped)]}

    def inbox(self, source_types: Collection[SourceType] | None = None) -> AsyncIterator[Item]:
        """Inbox items of these types (emails with their text), oldest first, 100 per request."""
        return self._with_email_text(self._items(self._inbox_filter(source_types)))

    async def _with_email_text(self, items: AsyncIterator[Item]) -> AsyncIterator[Item]:
        async for item in items:
            kept = self.text_kept is not None and self.text_kept(item)
            if item.source_type is SourceType.EMAIL and not item.content and not kept:
                try:
                    text = await self._email_text(item.id)
                except ServiceError as exc:
                    if exc.fatal:
                        raise
                    self._warn("email_text_unavailable", f"Cannot read the text of email {item.id}: {exc}",
                               item_id=item.id, error=str(exc))
                    text = None
                if text:
                    item = dataclasses.replace(item, content=text)
            yield item

    async def _email_text(self, page_id: str) -> str | None:
        """The text :meth:`add` put in the page's "Email" toggle."""
        context = {"item_id": page_id}
        toggles = [block async for block in self._api.list_children(page_id, context=context)
                   if block.get("type") == "toggle" and block_text(block) == EMAIL_TOGGLE]
        if not toggles or not toggles[0].get("has_children"):
            return None
        parts = [block_text(child) async for child in self._api.list_children(toggles[0]["id"], context=context)]
        return PARAGRAPH_SEPARATOR.join(parts) or None

    async def count_inbox(self, source_types: Collection[SourceType] | None = None) -> int:
        count = 0
        async for pages in self._api.query_pages(
            self.data_source_id, filter=self._inbox_filter(source_types), filter_properties=["title"]
        ):
            count += len(pages)
        return count

    async def list_items(self, selection: ItemQuery | Status | None = None) -> AsyncIterator[Item]:
        """One query request per 100 pages; ``limit`` and ``offset`` stop and skip on this side."""
        query = as_query(selection)
        wanted = None if query.limit is None else query.offset + query.limit
        skip = query.offset
        seen = 0
        async for pages in self._api.query_pages(
            self.data_source_id, filter=await self._query_filter(query), newest_first=query.newest_first,
            page_size=wanted or 100,
        ):
            for page in pages:
                item = self._item(page)
                if item is None:
                    continue
                if skip:
                    skip -= 1
                    continue
                yield item
                seen += 1
                if query.limit is not None and seen >= query.limit:
                    return

    async def count_items(self, selection: ItemQuery | Status | None = None) -> int:
        count = 0
        async for pages in self._api.query_pages(
            self.data_source_id, filter=await self._query_filter(as_query(selection)),
            filter_properties=[self._properties[STATUS].get("id", STATUS)],
        ):
            count += sum(1 for page in pages if self._item(page) is not None)
        return count

    async def get(self, item_id: str) -> Item:
        """By page id (with or without dashes), or by a unique prefix of one (a scan: one request per 100 pages)."""
        key = _id_key(item_id)
        if re.fullmatch(r"[0-9a-f]{32}", key):
            try:
                page = await self._api.retrieve_page(item_id, context={"item_id": item_id})
            except ServiceError as exc:
                if exc.code in ("object_not_found", "validation_error"):
                    raise ItemNotFound(f"item {item_id} not found in the Notion Sources database") from exc
                raise
            parent = page.get("parent") or {}
            if _id_key(parent.get("data_source_id") or "") != _id_key(self.data_source_id):
                raise ItemError(f"page {item_id} is not in the Sources database")
            item = self._item(page)
            if item is None:
                raise ItemError(f"page {item_id} has no Status the pipeline knows")
            return item
        if not key:
            raise ItemError("no item id given")
        found = [item async for item in self.list_items() if _id_key(item.id).startswith(key)]
        if len(found) > 1:
            raise ItemError(f"several items have an id starting with {item_id!r}: give more characters")
        if not found:
            raise ItemNotFound(f"item {item_id} not found in the Notion Sources database")
        return found[0]

    async def known_hashes(self) -> set[str]:
        hash_id = self._properties[HASH].get("id", HASH)
        hashes: set[str] = set()
        async for pages in self._api.query_pages(
            self.data_source_id, filter={"property": HASH, "rich_text": {"is_not_empty": True}},
            filter_properties=[hash_id],
        ):
            hashes.update(_plain(page.get("properties", {}).get(HASH)) for page in pages)
        hashes.discard("")
        return hashes

    async def by_hash(self) -> dict[str, Item]:
        """Every page with a hash, by hash: Status and Error only (one request per 100 pages)."""
        wanted = [self._properties[name].get("id", name) for name in (HASH, STATUS, ERROR) if name in self._properties]
        found: dict[str, Item] = {}
        async for pages in self._api.query_pages(
            self.data_source_id, filter={"property": HASH, "rich_text": {"is_not_empty": True}},
            filter_properties=wanted,
        ):
            for page in pages:
                item = self._item(page)
                if item is not None and item.hash:
                    found.setdefault(item.hash, item)
        return found

    def keeps_errors(self) -> bool:
        """Whether the database has the Error property (the original schema does not)."""
        return self._has(ERROR, "rich_text")

    async def body(self, item_id: str) -> dict[str, list[str]]:
        body: dict[str, list[str]] = {}
        async for block in self._api.list_children(item_id):
            if block.get("type") != "toggle":
                continue
            texts = body.setdefault(block_text(block), [])
            if block.get("has_children"):
                texts.extend([block_text(child) async for child in self._api.list_children(block["id"])])
        return body

    # -- writing ----------------------------------------------------------------------

    def _new_properties(self, item: NewItem) -> dict[str, Any]:
        for location in (item.url, item.pdf_path):
            if location and utf16_len(location) > MAX_URL:
                raise ItemError(f"URL longer than {MAX_URL} characters (Notion's limit): {location[:80]}...")
        properties: dict[str, Any] = {
            self._title: {"title": rich_text(cut_words(item.title or "Untitled", MAX_TEXT))},
            STATUS: self._status(Status.INBOX),
            SOURCE_TYPE: {"select": {"name": item.source_type.value}},
            HASH: {"rich_text": rich_text(item.hash)},
        }
        url_prop = self.settings.email_url_prop if item.source_type is SourceType.EMAIL else self.settings.rss_url_prop
        if item.url and (item.source_type is not SourceType.EMAIL or self._has(url_prop, "url")):
            properties[url_prop] = {"url": item.url}
        if item.sender and self._has(SENDER, "rich_text"):
            properties[SENDER] = {"rich_text": rich_text(cut_words(item.sender, MAX_TEXT))}
        if item.pdf_path:
            properties[self.settings.pdf_url_prop] = {"url": _as_url(item.pdf_path)}
        if item.created_date and self._has(self.settings.created_prop, "date"):
            properties[self.settings.created_prop] = {"date": {"start": item.created_date.isoformat()}}
        properties.update(self._category(item.category))
        return properties

    def check_new(self, item: NewItem) -> None:
        """ItemError when Notion would refuse the page whatever is in it (a URL over 2,000 characters)."""
        self._new_properties(item)

    def _category(self, category: str | None) -> dict[str, Any]:
        """The feed's category as the database has it: a select, a multi-select, or not at all."""
        name = select_name(category)
        prop = self.settings.category_prop
        if name is None:
            return {}
        if self._has(prop, "select"):
            return {prop: {"select": {"name": name}}}
        if self._has(prop, "multi_select"):
            return {prop: {"multi_select": [{"name": name}]}}
        return {}

    async def _create(self, item: NewItem, properties: dict[str, Any], children: list[dict]) -> Item:
        """One ``pages.create``; a retry after a lost reply first looks the page up by hash."""
        self._check_writable()

        async def created_already() -> dict | None:
            return await self._page_by_hash(item.hash)

        body: dict[str, Any] = {"parent": {"data_source_id": self.data_source_id}, "properties": properties}
        if children:
            body["children"] = children
        elif item.source_type is SourceType.EMAIL and item.content:
            text = item.content[: self.settings.notion_max_raw_chars]
            body["children"] = plan_body([(EMAIL_TOGGLE, paragraph_blocks(text))]).first  # what fits in one request
        page = await self._api.create_page(body, before_retry=created_already)
        if item.content:
            self._content[page["id"]] = item.content
        created = self._item(page)
        if created is None:  # pragma: no cover - the page was just created with a Status
            raise StoreError(f"Notion returned page {page['id']} without a Status")
        return created

    async def _page_by_hash(self, item_hash: str) -> dict | None:
        filter = {"property": HASH, "rich_text": {"equals": item_hash}}
        async for pages in self._api.query_pages(self.data_source_id, filter=filter):
            if pages:
                return pages[0]
        return None

    async def find_by_hash(self, item_hash: str) -> Item | None:
        """The page holding this hash (one query), or None: what a create whose reply was lost left."""
        page = await self._page_by_hash(item_hash)
        return self._item(page) if page is not None else None

    async def add(self, item: NewItem) -> Item:
        return await self._create(item, self._new_properties(item), [])

    async def add_enriched(self, item: NewItem, enrichment: Enrichment, text: str) -> Item:
        """One ``pages.create`` with every property and the body when it fits; else create, append, update.

        A body over one request's limits (100 blocks in a toggle, ~400 KB) gets a
        page created Failed with reason :data:`INCOMPLETE_BODY`, then the body
        appended and Status = Enriched last (``write_enrichment``), so a page is
        never Enriched without its whole body.
        """
        properties = self._new_properties(item) | self._enriched_properties(item, enrichment)
        toggles = self._toggles(enrichment, text)
        plan = plan_body(toggles, budget=REQUEST_BYTES_BUDGET - request_size(properties))
        if plan.requests == 1:
            return await self._create(item, properties, plan.first)
        properties[STATUS] = self._status(Status.FAILED)
        if self._has(ERROR, "rich_text"):
            properties[ERROR] = {"rich_text": rich_text(INCOMPLETE_BODY)}
        created = await self._create(item, properties, [])
        await self.write_enrichment(created, enrichment, text)
        return replace(
            created, status=Status.ENRICHED, error=None, summary=cut_words(enrichment.executive_summary, MAX_TEXT),
            created_date=item.created_date or enrichment.published_date,
        )

    async def add_failed(self, item: NewItem, reason: str, *, status: Status = Status.FAILED) -> Item:
        """The page, Failed (or Duplicate) with ``reason``, in one ``pages.create`` (an email keeps its text toggle).

        Never an Inbox page first: one left by a write cut off before the status
        would be enriched by the next run.
        """
        properties = self._new_properties(item) | self._settled_properties(status, reason)
        return await self._create(item, properties, [])

    def _settled_properties(self, status: Status, reason: str) -> dict[str, Any]:
        """Status Failed with ``reason`` in Error, or Duplicate (:meth:`duplicate_status`) with it in Error else Summary."""
        if status is Status.FAILED:
            properties: dict[str, Any] = {STATUS: self._status(Status.FAILED)}
            homes: tuple[str, ...] = (ERROR,)
        elif status is Status.DUPLICATE:
            properties = {STATUS: self._status(self.duplicate_status())}
            homes = (ERROR, SUMMARY)
        else:
            raise ValueError(f"expected Failed or Duplicate, not {status.value}")
        for name in homes:
            if self._has(name, "rich_text"):
                properties[name] = {"rich_text": rich_text(cut_words(reason, MAX_TEXT))}
                break
        return properties

    def _toggles(self, enrichment: Enrichment, text: str) -> list[tuple[str, list[dict]]]:
        summary, executive, insights, raw = BODY_TOGGLES
        return [
            (summary, paragraph_blocks(enrichment.summary)),
            (executive, paragraph_blocks(enrichment.executive_summary)),
            (insights, [text_block("bulleted_list_item", insight) for insight in enrichment.key_insights]),
            (raw, paragraph_blocks(text[: self.settings.notion_max_raw_chars])),
            *[(result.title, analysis_blocks(result)) for result in enrichment.analyses],
        ]

    def _enriched_properties(self, item: Item | NewItem, enrichment: Enrichment) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        if self._has(SUMMARY, "rich_text"):
            properties[SUMMARY] = {"rich_text": rich_text(cut_words(enrichment.executive_summary, MAX_TEXT))}
        if self._has(CONTENT_TYPE, "select"):
            name = select_name(enrichment.content_type)
            properties[CONTENT_TYPE] = {"select": {"name": name} if name else None}
        if self._has(AI_PRIMITIVE, "multi_select"):
            names = dict.fromkeys(n for n in map(select_name, enrichment.ai_primitives) if n)
            properties[AI_PRIMITIVE] = {"multi_select": [{"name": n} for n in list(names)[:MAX_MULTI_SELECT]]}
        if self._has(VENDOR, "select"):
            name = select_name(enrichment.vendor)
            properties[VENDOR] = {"select": {"name": name} if name else None}
        created = self.settings.created_prop
        if item.created_date is None and enrichment.published_date and self._has(created, "date"):
            properties[created] = {"date": {"start": enrichment.published_date.isoformat()}}
        if self._has(ERROR, "rich_text"):
            properties[ERROR] = {"rich_text": []}
        if self._has(WARNINGS, "rich_text"):
            properties[WARNINGS] = {"rich_text": rich_text(cut_words("\n".join(enrichment.warnings), MAX_TEXT))}
        if enrichment.title:
            properties[self._title] = {"title": rich_text(cut_words(enrichment.title, MAX_TEXT))}
        properties[STATUS] = self._status(Status.ENRICHED)
        return properties

    async def write_enrichment(
        self, item: Item, enrichment: Enrichment, text: str, *, repair: bool = False
    ) -> None:
        """The four toggles in one append (more only for long texts), then every property in one update."""
        self._check_writable()
        context = {"item_id": item.id}
        titles = enrichment.body_titles()
        if repair:
            await self._remove_body(item.id, context, titles)
        plan = plan_body(self._toggles(enrichment, text))

        async def remove_partial() -> None:
            await self._remove_body(item.id, context, titles)
            return None

        try:
            response = await self._api.append_children(
                item.id, plan.first, before_retry=remove_partial, context=context
            )
        except ServiceError as exc:
            if not exc.fatal and exc.__cause__ is not None and may_have_applied(exc.__cause__):
                await self._remove_body_best_effort(item.id, context, titles)
            raise
        toggle_ids = [block["id"] for block in response.get("results", [])][-len(plan.first):]
        try:
            written = {index: len(block["toggle"].get("children", [])) for index, block in enumerate(plan.first)}
            for follow_up in plan.follow_ups:
                await self._append_follow_up(toggle_ids[follow_up.index], follow_up.children,
                                             written[follow_up.index], context)
                written[follow_up.index] += len(follow_up.children)
            await self._api.update_page(item.id, properties=self._enriched_properties(item, enrichment),
                                        context=context)
        except ServiceError:
            await self._discard(toggle_ids, context)
            raise

    async def _append_follow_up(self, toggle_id: str, children: list[dict], before: int, context: dict) -> None:
        async def landed_already() -> dict | None:
            count = 0
            async for _ in self._api.list_children(toggle_id, context=context):
                count += 1
            return {"results": []} if count > before else None

        await self._api.append_children(toggle_id, children, before_retry=landed_already, context=context)

    async def _discard(self, block_ids: list[str], context: dict) -> None:
        """Best effort: remove the toggles of a write that could not be finished.

        The item is then marked Failed; a later retry starts from a clean body.
        """
        for block_id in block_ids:
            try:
                await self._api.delete_block(block_id, context=context)
            except ServiceError as exc:
                if exc.fatal:
                    raise
                return

    async def _remove_body_best_effort(self, page_id: str, context: dict, titles: frozenset[str]) -> None:
        """After a failed append that the server may still have applied: leave no stray toggles."""
        try:
            await self._remove_body(page_id, context, titles)
        except ServiceError as exc:
            if exc.fatal:
                raise

    async def _remove_body(self, page_id: str, context: dict, titles: frozenset[str]) -> None:
        """Delete the top-level body toggles (``titles``) an earlier, cut-off write left on the page."""
        stale = [
            block["id"]
            async for block in self._api.list_children(page_id, context=context)
            if block.get("type") == "toggle" and block_text(block) in titles
        ]
        for block_id in stale:
            await self._api.delete_block(block_id, context=context)

    async def mark_failed(self, item: Item, reason: str) -> None:
        self._check_writable()
        await self._api.update_page(item.id, properties=self._settled_properties(Status.FAILED, reason),
                                    context={"item_id": item.id})

    def duplicate_status(self) -> Status:
        """Duplicate where the schema allows it (a select takes a new option; a status needs it defined), else Failed."""
        kind = self._properties[STATUS]["type"]
        if kind == "select" or Status.DUPLICATE.value in self._options_of(STATUS, kind):
            return Status.DUPLICATE
        return Status.FAILED

    def _options_of(self, name: str, kind: str) -> set[str]:
        return {o.get("name") for o in (self._properties.get(name) or {}).get(kind, {}).get("options", [])}

    async def mark_duplicate(self, item: Item, note: str) -> None:
        """Status Duplicate (or Failed, see :meth:`duplicate_status`) and ``note`` in Error (else Summary)."""
        self._check_writable()
        await self._api.update_page(item.id, properties=self._settled_properties(Status.DUPLICATE, note),
                                    context={"item_id": item.id})

    async def return_to_inbox(self, item: Item) -> None:
        properties: dict[str, Any] = {STATUS: self._status(Status.INBOX)}
        if self._has(ERROR, "rich_text"):
            properties[ERROR] = {"rich_text": []}
        await self._api.update_page(item.id, properties=properties, context={"item_id": item.id})

    async def retry_failed(
        self, reason: str | None = None, source_types: Collection[SourceType] | None = None
    ) -> int:
        """Failed -> Inbox. The matching ids are collected first, so updates cannot move the query's cursor."""
        self._check_writable()
        clauses = [self._status_filter(Status.FAILED)]
        if reason:
            if not self._has(ERROR, "rich_text"):
                raise StoreError(f"cannot select failures by reason: the Sources database has no {ERROR} property "
                                 "(see `python3 -m knowledge_pipeline notion check`)")
            clauses.append({"property": ERROR, "rich_text": {"contains": reason}})
        if source_types:
            clauses.append(self._types_filter(list(dict.fromkeys(SourceType(t) for t in source_types))))
        filter = clauses[0] if len(clauses) == 1 else {"and": clauses}
        ids: list[str] = []
        async for pages in self._api.query_pages(self.data_source_id, filter=filter, filter_properties=["title"]):
            ids.extend(page["id"] for page in pages)
        moved = 0
        for page_id in ids:
            try:
                await self._api.update_page(page_id, properties={STATUS: self._status(Status.INBOX)},
                                            context={"item_id": page_id})
            except ServiceError as exc:
                if exc.fatal:
                    raise
                self._warn("retry_failed_skipped", f"Could not move {page_id} back to the Inbox: {exc}", item_id=page_id)
                continue
            moved += 1
        return moved
