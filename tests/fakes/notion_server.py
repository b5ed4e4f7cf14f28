"""A fake Notion API (Notion-Version 2025-09-03) over real HTTP, faithful to the recordings.

Response shapes follow the real recordings in
``/work/shared/reference/notion-cassettes`` (see its FIDELITY.md); behaviour
not pinned by a recording or the official docs is marked "(U)".

Implemented: databases retrieve/create (a database may hold several data
sources), data_sources retrieve/create/update/query (filters, sorts, cursors,
``filter_properties``), pages create/retrieve/
update (trash and restore), blocks children append/list, blocks retrieve/
update/delete. Requests are validated with Notion's limits and answered with
Notion's error JSON. Faults per run: latency and jitter, a share of 5xx and
429 answers, a share of writes saved but answered 5xx (lost replies), a
token bucket (average rps + small burst) answering 429
``rate_limited`` with a whole-second ``Retry-After``, and queued one-off
failures. ``stats()`` counts requests per endpoint and the busiest 1 s and
10 s windows.

Use from a test::

    with start_fake_notion(database="original") as fake:
        settings = Settings(notion_token=fake.token, notion_base_url=fake.url,
                            notion_sources_db=fake.database_id, ...)

or on its own: ``python -m tests.fakes.notion_server --port 8765`` (prints the
ids as JSON; ``POST /__control`` takes ``configure`` settings, ``GET /__stats``
returns the stats, ``GET /__pages`` the Sources rows, ``POST /__reset_stats``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

from tests.fakes import QuietHTTPServer, ServedFake, max_in_window

NOTION_VERSION = "2025-09-03"
DEFAULT_TOKEN = "ntn_fake_token_0123456789"
DEFAULT_INTEGRATION_NAME = "knowledge-pipeline-fake"
ROOT_PAGE_TITLE = "Fake workspace root"

MAX_TEXT = 2000
MAX_RICH_TEXT = 100
MAX_CHILDREN = 100
MAX_BLOCKS = 1000
MAX_BODY_BYTES = 500_000
MAX_URL = 2000
MAX_SELECT_NAME = 100
MAX_MULTI_SELECT = 100
MAX_PAGE_SIZE = 100

TEXT_BLOCKS = ("paragraph", "toggle", "bulleted_list_item", "numbered_list_item", "quote",
               "heading_1", "heading_2", "heading_3")
TEXT_FILTERS = ("equals", "does_not_equal", "contains", "does_not_contain", "starts_with", "ends_with",
                "is_empty", "is_not_empty")
OPTION_FILTERS = ("equals", "does_not_equal", "is_empty", "is_not_empty")
MULTI_FILTERS = ("contains", "does_not_contain", "is_empty", "is_not_empty")
DATE_FILTERS = ("equals", "before", "after", "on_or_before", "on_or_after", "is_empty", "is_not_empty")
FILTERS_BY_TYPE = {
    "title": TEXT_FILTERS, "rich_text": TEXT_FILTERS, "url": TEXT_FILTERS,
    "select": OPTION_FILTERS, "status": OPTION_FILTERS, "multi_select": MULTI_FILTERS, "date": DATE_FILTERS,
}
PROPERTY_TYPES = ("title", "rich_text", "url", "select", "status", "multi_select", "date")
COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")
ARCHIVED_MESSAGE = "Can't edit block that is archived. You must unarchive the block before editing."
ERROR_CODES = {400: "validation_error", 401: "unauthorized", 403: "restricted_resource", 404: "object_not_found",
               409: "conflict_error", 429: "rate_limited", 500: "internal_server_error",
               502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}
ERROR_MESSAGES = {
    401: "API token is invalid.",
    403: "API token does not have access to this resource.",
    409: "Conflict occurred while saving. Please try again.",
    429: "You have been rate limited. Please try again in a few minutes.",
    500: "Unexpected error occurred.",
    503: "Notion is unavailable, please try again later.",
    504: "Notion timed out, please try again later.",
}

STATUS_OPTIONS = ("Inbox", "Enriched", "Failed")
SOURCE_TYPES = ("RSS", "Website", "PDF")
CONTENT_TYPES = ("Market News", "Thought Leadership", "Personal Note", "Vendor Capability", "Client Deliverable")
AI_PRIMITIVES = ("Content Creation", "Research", "Coding", "Data Analysis", "Ideation/Strategy", "Automation")


def sources_schema(kind: str = "full", status_type: str = "select",
                   content_types: tuple[str, ...] = CONTENT_TYPES,
                   ai_primitives: tuple[str, ...] = AI_PRIMITIVES) -> dict[str, dict]:
    """The Sources properties of the original pipeline ("original"), plus Error, Warnings and Category ("full")."""
    def options(names: tuple[str, ...]) -> dict:
        return {"options": [{"name": n} for n in names]}

    schema = {
        "Title": {"title": {}},
        "AI-Primitive": {"multi_select": options(ai_primitives)},
        "Content-Type": {"select": options(content_types)},
        "Drive URL": {"url": {}},
        "Article URL": {"url": {}},
        "Hash": {"rich_text": {}},
        "Status": {status_type: options(STATUS_OPTIONS)},
        "Summary": {"rich_text": {}},
        "Vendor": {"select": options(())},
        "Created Date": {"date": {}},
        "Source Type": {"select": options(SOURCE_TYPES)},
    }
    if kind == "full":
        schema["Error"] = {"rich_text": {}}
        schema["Warnings"] = {"rich_text": {}}
        schema["Category"] = {"select": options(())}
    return schema


class NotionError(Exception):
    """An error answer: status, code, message (and extra JSON fields)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _validation(message: str) -> NotionError:
    return NotionError(400, "validation_error", message)


def _too_long(path: str, limit: int, actual: int) -> NotionError:
    return _validation(f"body failed validation: {path} should be \u2264 `{limit}`, instead was `{actual}`.")


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _key(object_id: str) -> str:
    return object_id.replace("-", "").lower()


def _dashed(hex_id: str) -> str:
    h = _key(hex_id)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")


def _instant(text: str) -> datetime:
    """An ISO 8601 date or datetime (``Z`` or an offset; UTC when none) as an aware datetime."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _now_precise() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _short_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%"
    return "".join(random.choice(alphabet) for _ in range(4))


def _annotations() -> dict:
    return {"bold": False, "italic": False, "strikethrough": False, "underline": False, "code": False,
            "color": "default"}


def _rich_text(items: Any, path: str) -> list[dict]:
    """Validate request rich text and return it in response form."""
    if not isinstance(items, list):
        raise _validation(f"body failed validation: {path} should be an array, instead was `{json.dumps(items)}`.")
    if len(items) > MAX_RICH_TEXT:
        raise _too_long(f"{path}.length", MAX_RICH_TEXT, len(items))
    out = []
    for n, item in enumerate(items):
        where = f"{path}[{n}]"
        if not isinstance(item, dict) or not isinstance(item.get("text"), dict):
            raise _validation(f"body failed validation: {where}.text should be defined, instead was `undefined`.")
        content = item["text"].get("content")
        if not isinstance(content, str):
            raise _validation(f"body failed validation: {where}.text.content should be a string, "
                              f"instead was `{json.dumps(content)}`.")
        if _utf16(content) > MAX_TEXT:
            raise _too_long(f"{where}.text.content.length", MAX_TEXT, _utf16(content))
        link = item["text"].get("link")
        if link is not None:
            url = link.get("url") if isinstance(link, dict) else None
            if not isinstance(url, str):
                raise _validation(f"body failed validation: {where}.text.link.url should be a string.")
            if _utf16(url) > MAX_URL:
                raise _too_long(f"{where}.text.link.url.length", MAX_URL, _utf16(url))
        annotations = _annotations()
        annotations.update({k: v for k, v in (item.get("annotations") or {}).items() if k in annotations})
        out.append({"type": "text", "text": {"content": content, "link": link}, "annotations": annotations,
                    "plain_text": content, "href": link["url"] if link else None})
    return out


def _plain(rich: list[dict]) -> str:
    return "".join(part["plain_text"] for part in rich)


class Workspace:
    """The in-memory Notion workspace: pages, blocks, databases and data sources."""

    def __init__(self, integration_id: str, integration_name: str) -> None:
        self.lock = threading.RLock()
        self.integration_id = integration_id
        self.integration_name = integration_name
        self.pages: dict[str, dict] = {}
        self.blocks: dict[str, dict] = {}
        self.databases: dict[str, dict] = {}
        self.data_sources: dict[str, dict] = {}
        self.children: dict[str, list[str]] = {}
        self._sequence = 0

    def _user(self) -> dict:
        return {"object": "user", "id": self.integration_id}

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def not_found(self, kind: str, object_id: str) -> NotionError:
        return NotionError(
            404, "object_not_found",
            f"Could not find {kind} with ID: {object_id}. Make sure the relevant pages and databases are shared "
            f'with your integration "{self.integration_name}".',
            additional_data={"integration_id": self.integration_id},
        )

    # -- lookups -------------------------------------------------------------------------

    def page(self, object_id: str) -> dict:
        page = self.pages.get(_key(object_id))
        if page is None or page.get("purged"):
            raise self.not_found("page", object_id)
        return page

    def data_source(self, object_id: str) -> dict:
        source = self.data_sources.get(_key(object_id))
        if source is None:
            raise self.not_found("data_source", object_id)
        return source

    def database(self, object_id: str) -> dict:
        database = self.databases.get(_key(object_id))
        if database is None:
            raise self.not_found("database", object_id)
        return database

    def any_block(self, object_id: str) -> tuple[str, dict]:
        """A block, page or database by id, as (kind, record); pages and databases are blocks too."""
        key = _key(object_id)
        if key in self.blocks:
            return "block", self.blocks[key]
        if key in self.pages and not self.pages[key].get("purged"):
            return "page", self.pages[key]
        if key in self.databases:
            return "database", self.databases[key]
        raise self.not_found("block", object_id)

    # -- pages ---------------------------------------------------------------------------

    def add_root_page(self, title: str = ROOT_PAGE_TITLE, page_id: str | None = None) -> dict:
        with self.lock:
            record = self._page_record({"type": "workspace", "workspace": True}, None, page_id)
            record["values"] = {"title": _rich_text([{"text": {"content": title}}], "title")}
            self.pages[_key(record["id"])] = record
            self.children[_key(record["id"])] = []
            return record

    def _page_record(self, parent: dict, source_key: str | None, page_id: str | None = None) -> dict:
        now = _now()
        return {"id": _dashed(page_id) if page_id else _new_id(), "created_time": now, "last_edited_time": now,
                "parent": parent, "source": source_key, "values": {}, "in_trash": False, "icon": None,
                "cover": None, "is_locked": False, "seq": self._next(), "listed_while_trashed": False}

    def create_page(self, body: dict) -> dict:
        parent = body.get("parent")
        if not isinstance(parent, dict):
            raise _validation("body failed validation: body.parent should be defined, instead was `undefined`.")
        with self.lock:
            if parent.get("data_source_id") or parent.get("database_id"):
                source = self._source_for_parent(parent)
                record = self._page_record(
                    {"type": "data_source_id", "data_source_id": source["id"], "database_id": source["database_id"]},
                    _key(source["id"]),
                )
                values = self._property_values(source, body.get("properties") or {}, {})
            elif parent.get("page_id"):
                parent_page = self.page(parent["page_id"])
                if parent_page["in_trash"]:
                    raise _validation(ARCHIVED_MESSAGE)
                record = self._page_record({"type": "page_id", "page_id": parent_page["id"]}, None)
                values = self._page_title(body.get("properties") or {})
            else:
                raise _validation("body failed validation: body.parent.page_id should be defined, instead was "
                                  "`undefined`.")
            children = self._validate_children(body.get("children") or [], "body.children")
            record["values"] = values
            key = _key(record["id"])
            self.pages[key] = record
            self.children[key] = []
            self._insert_children(key, "page_id", record["id"], children, None)
            if record["parent"]["type"] == "page_id":
                self.children[_key(record["parent"]["page_id"])].append(key)
            return self.render_page(record)

    def _source_for_parent(self, parent: dict) -> dict:
        if parent.get("data_source_id"):
            return self.data_source(parent["data_source_id"])
        database = self.database(parent["database_id"])
        if len(database["sources"]) != 1:
            raise _validation("Database with multiple data sources is not supported by this request; use "
                              "parent.data_source_id.")  # (U)
        return self.data_sources[database["sources"][0]]

    def _page_title(self, properties: dict) -> dict:
        for name, value in properties.items():
            if name != "title":
                raise _validation(f"{name} is not a property that exists.")
            items = value.get("title") if isinstance(value, dict) else value
            return {"title": _rich_text(items, "body.properties.title.title")}
        return {"title": []}

    def _property_values(self, source: dict, properties: Any, current: dict) -> dict:
        if not isinstance(properties, dict):
            raise _validation("body failed validation: body.properties should be an object.")
        values = dict(current)
        for name, value in properties.items():
            spec = self._find_property(source, name)
            if spec is None:
                raise _validation(f"{name} is not a property that exists.")
            values[spec["id"]] = self._property_value(source, spec, value)
        return values

    @staticmethod
    def _find_property(source: dict, name_or_id: str) -> dict | None:
        for name, spec in source["properties"].items():
            if name == name_or_id or spec["id"] == name_or_id:
                return spec
        return None

    def _property_value(self, source: dict, spec: dict, value: Any) -> Any:
        kind, name = spec["type"], spec["name"]
        path = f"body.properties.{name}.{kind}"
        if isinstance(value, list) and kind in ("title", "rich_text", "multi_select"):
            value = {kind: value}
        if not isinstance(value, dict) or kind not in value:
            raise _validation(f"{name} is expected to be {kind}.")  # (U) wording
        raw = value[kind]
        if kind in ("title", "rich_text"):
            return _rich_text(raw, path)
        if kind == "url":
            if raw is not None and not isinstance(raw, str):
                raise _validation(f"body failed validation: {path} should be a string or `null`.")
            if raw is not None and _utf16(raw) > MAX_URL:
                raise _too_long(f"{path}.length", MAX_URL, _utf16(raw))
            return raw or None
        if kind == "date":
            if raw is None:
                return None
            if not isinstance(raw, dict) or not isinstance(raw.get("start"), str):
                raise _validation(f"body failed validation: {path}.start should be defined, instead was `undefined`.")
            try:
                datetime.fromisoformat(raw["start"].replace("Z", "+00:00"))
            except ValueError:
                raise _validation(f"body failed validation: {path}.start should be a valid ISO 8601 date string, "
                                  f"instead was `\"{raw['start']}\"`.") from None
            return {"start": raw["start"], "end": raw.get("end"), "time_zone": raw.get("time_zone")}
        if kind in ("select", "status"):
            if raw is None:
                return None
            return self._option(spec, raw, path, create=kind == "select")
        if kind == "multi_select":
            if not isinstance(raw, list):
                raise _validation(f"body failed validation: {path} should be an array.")
            if len(raw) > MAX_MULTI_SELECT:
                raise _too_long(f"{path}.length", MAX_MULTI_SELECT, len(raw))
            chosen: dict[str, dict] = {}
            for n, option in enumerate(raw):
                picked = self._option(spec, option, f"{path}[{n}]", create=True)
                chosen[picked["id"]] = picked
            return list(chosen.values())
        raise _validation(f"Property type {kind} is not supported by this fake.")

    def _option(self, spec: dict, raw: Any, path: str, *, create: bool) -> dict:
        kind = spec["type"]
        options = spec[kind]["options"]
        if not isinstance(raw, dict) or not (raw.get("name") or raw.get("id")):
            raise _validation(f"body failed validation: {path}.name should be defined, instead was `undefined`.")
        for option in options:
            if option["name"] == raw.get("name") or option["id"] == raw.get("id"):
                return {"id": option["id"], "name": option["name"], "color": option["color"]}
        name = raw.get("name")
        if not isinstance(name, str) or not create:
            raise _validation(f"Invalid {kind} option, {kind} option \"{name}\" does not exist.")  # (U) wording
        self._check_option_name(name, f"{path}.name")
        option = {"id": str(uuid.uuid4()), "name": name, "color": COLORS[len(options) % len(COLORS)],
                  "description": None}
        options.append(option)
        return {"id": option["id"], "name": name, "color": option["color"]}

    @staticmethod
    def _check_option_name(name: str, path: str) -> None:
        if "," in name:
            raise _validation(f"Invalid select option, commas not allowed: {name}")
        if _utf16(name) > MAX_SELECT_NAME:
            raise _too_long(f"{path}.length", MAX_SELECT_NAME, _utf16(name))

    def update_page(self, page_id: str, body: dict) -> dict:
        with self.lock:
            record = self.page(page_id)
            trash = body.get("in_trash", body.get("archived"))
            if record["in_trash"] and trash is not False:
                raise _validation(ARCHIVED_MESSAGE)
            if "properties" in body:
                if record["source"] is None:
                    if body["properties"]:
                        record["values"] = self._page_title(body["properties"])
                else:
                    record["values"] = self._property_values(
                        self.data_sources[record["source"]], body["properties"], record["values"])
            for field in ("icon", "cover", "is_locked"):
                if field in body:
                    record[field] = body[field]
            if trash is not None:
                record["in_trash"] = bool(trash)
                record["listed_while_trashed"] = False
            record["last_edited_time"] = _now()
            return self.render_page(record)

    def render_page(self, record: dict, only: set[str] | None = None) -> dict:
        trashed = record["in_trash"]
        parent = dict(record["parent"])
        if parent.get("type") == "workspace":
            parent = {"type": "workspace", "workspace": True}
        properties: dict[str, dict] = {}
        if record["source"] is None:
            properties["title"] = {"id": "title", "type": "title", "title": copy.deepcopy(record["values"]["title"])}
        else:
            source = self.data_sources[record["source"]]
            for name, spec in source["properties"].items():
                if only is not None and spec["id"] not in only and name not in only:
                    continue
                kind = spec["type"]
                value = record["values"].get(spec["id"])
                if value is None and kind in ("title", "rich_text", "multi_select"):
                    value = []
                properties[name] = {"id": spec["id"], "type": kind, kind: copy.deepcopy(value)}
        title = _plain(record["values"].get("title", [])) if record["source"] is None else _plain(
            next((record["values"].get(s["id"], []) for s in self.data_sources[record["source"]]["properties"].values()
                  if s["type"] == "title"), []))
        slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")
        hex_id = _key(record["id"])
        return {
            "object": "page", "id": record["id"], "created_time": record["created_time"],
            "last_edited_time": record["last_edited_time"], "created_by": self._user(),
            "last_edited_by": self._user(), "cover": record["cover"], "icon": record["icon"], "parent": parent,
            "in_trash": trashed, "is_archived": trashed, "is_locked": record["is_locked"], "properties": properties,
            "url": f"https://app.notion.com/p/{slug + '-' if slug else ''}{hex_id}", "public_url": None,
            "archived": trashed,
        }

    # -- blocks ---------------------------------------------------------------------------

    def _validate_children(self, children: Any, path: str, depth: int = 1) -> list[dict]:
        if not isinstance(children, list):
            raise _validation(f"body failed validation: {path} should be an array.")
        if len(children) > MAX_CHILDREN:
            raise _too_long(f"{path}.length", MAX_CHILDREN, len(children))
        out = []
        for n, child in enumerate(children):
            where = f"{path}[{n}]"
            if not isinstance(child, dict):
                raise _validation(f"body failed validation: {where} should be an object.")
            kind = child.get("type") or next((k for k in child if k in TEXT_BLOCKS), None)
            if kind not in TEXT_BLOCKS or not isinstance(child.get(kind), dict):
                raise _validation(f"body failed validation: {where} should be a supported block; this fake "
                                  f"accepts {', '.join(TEXT_BLOCKS)}.")  # (U) wording
            data = child[kind]
            rich = _rich_text(data.get("rich_text", []), f"{where}.{kind}.rich_text")
            nested = data.get("children")
            if nested is not None and depth >= 2:
                raise _validation(f"body failed validation: {where}.{kind}.children should be not present, "
                                  f"instead was `{json.dumps(nested)[:40]}...`.")  # (U) wording
            block = {"type": kind, "rich_text": rich, "color": data.get("color", "default"),
                     "children": self._validate_children(nested, f"{where}.{kind}.children", depth + 1)
                     if nested is not None else []}
            out.append(block)
        return out

    @staticmethod
    def _count(blocks: list[dict]) -> int:
        return sum(1 + Workspace._count(b["children"]) for b in blocks)

    def _insert_children(self, parent_key: str, parent_type: str, parent_id: str, blocks: list[dict],
                         after: str | None) -> list[dict]:
        siblings = self.children.setdefault(parent_key, [])
        position = len(siblings)
        if after is not None:
            position = siblings.index(_key(after)) + 1
        created = []
        for block in blocks:
            record = {"id": _new_id(), "type": block["type"], "rich_text": block["rich_text"],
                      "color": block["color"], "parent": {"type": parent_type, parent_type: parent_id},
                      "created_time": _now(), "last_edited_time": _now(), "in_trash": False}
            key = _key(record["id"])
            self.blocks[key] = record
            self.children[key] = []
            siblings.insert(position, key)
            position += 1
            self._insert_children(key, "block_id", record["id"], block["children"], None)
            created.append(record)
        return created

    def append_children(self, block_id: str, body: dict) -> list[dict]:
        with self.lock:
            kind, record = self.any_block(block_id)
            if kind == "database":
                raise _validation("Block does not support children.")  # (U)
            if record["in_trash"] or self._ancestor_trashed(record):
                raise _validation(ARCHIVED_MESSAGE)
            if "children" not in body:
                raise _validation("body failed validation: body.children should be defined, instead was `undefined`.")
            blocks = self._validate_children(body["children"], "body.children")
            count = self._count(blocks)
            if count > MAX_BLOCKS:
                raise _validation(f"body failed validation: the request has {count} blocks, more than the limit "
                                  f"of {MAX_BLOCKS}.")  # (U) wording
            after = body.get("after")
            if after is not None and _key(after) not in self.children.get(_key(record["id"]), []):
                raise _validation(f"Could not find block with ID: {after} among the children.")  # (U)
            parent_type = "page_id" if kind == "page" else "block_id"
            created = self._insert_children(_key(record["id"]), parent_type, record["id"], blocks, after)
            return [self.render_block(r) for r in created]

    def _ancestor_trashed(self, record: dict) -> bool:
        parent = record.get("parent", {})
        while parent.get("type") in ("page_id", "block_id"):
            key = _key(parent[parent["type"]])
            holder = self.blocks.get(key) or self.pages.get(key)
            if holder is None:
                return False
            if holder["in_trash"]:
                return True
            parent = holder.get("parent", {})
        return False

    def live_children(self, key: str) -> list[str]:
        out = []
        for child in self.children.get(key, []):
            holder = self.blocks.get(child) or self.pages.get(child) or self.databases.get(child)
            if holder is not None and not holder["in_trash"] and not holder.get("purged"):
                out.append(child)
        return out

    def render_block(self, record: dict) -> dict:
        kind = record["type"]
        content: dict[str, Any] = {"rich_text": copy.deepcopy(record["rich_text"])}
        if kind == "paragraph":
            content["icon"] = None
        content["color"] = record["color"]
        return {
            "object": "block", "id": record["id"], "parent": record["parent"], "created_time": record["created_time"],
            "last_edited_time": record["last_edited_time"], "created_by": self._user(), "last_edited_by": self._user(),
            "has_children": bool(self.live_children(_key(record["id"]))), "in_trash": record["in_trash"],
            "type": kind, kind: content, "archived": record["in_trash"],
        }

    def render_as_block(self, kind: str, record: dict) -> dict:
        if kind == "block":
            return self.render_block(record)
        key = _key(record["id"])
        parent = record["parent"]
        if parent.get("type") == "data_source_id":  # (U) how a row shows as a block
            parent = {"type": "database_id", "database_id": parent["database_id"]}
        if kind == "page":
            page = self.render_page(record)
            title = _plain(next((p["title"] for p in page["properties"].values() if p["type"] == "title"), []))
            block_type, content = "child_page", {"title": title}
        else:
            block_type, content = "child_database", {"title": _plain(record["title"])}
        return {
            "object": "block", "id": record["id"], "parent": parent, "created_time": record["created_time"],
            "last_edited_time": record["last_edited_time"], "created_by": self._user(),
            "last_edited_by": self._user(), "has_children": bool(self.live_children(key)),
            "in_trash": record["in_trash"], "type": block_type, block_type: content, "archived": record["in_trash"],
        }

    def list_children(self, block_id: str, start_cursor: str | None, page_size: int) -> dict:
        with self.lock:
            kind, record = self.any_block(block_id)
            live = self.live_children(_key(record["id"]))
            start = 0
            if start_cursor:
                if _key(start_cursor) not in live:
                    raise _validation(f"start_cursor provided is invalid: {start_cursor}")  # (U)
                start = live.index(_key(start_cursor))
            chosen = live[start:start + page_size]
            more = start + page_size < len(live)
            results = []
            for key in chosen:
                child_kind, child = self.any_block(key)
                results.append(self.render_as_block(child_kind, child))
            return {"object": "list", "results": results,
                    "next_cursor": _dashed(live[start + page_size]) if more else None, "has_more": more,
                    "type": "block", "block": {}}

    def trash_block(self, block_id: str) -> dict:
        with self.lock:
            kind, record = self.any_block(block_id)
            if record["in_trash"]:
                raise _validation(ARCHIVED_MESSAGE)  # (U) deleting twice
            record["in_trash"] = True
            return self.render_as_block(kind, record)

    def update_block(self, block_id: str, body: dict) -> dict:
        with self.lock:
            kind, record = self.any_block(block_id)
            trash = body.get("in_trash", body.get("archived"))
            if record["in_trash"] and trash is not False:
                raise _validation(ARCHIVED_MESSAGE)
            if kind == "block" and record["type"] in body:
                data = body[record["type"]]
                if "rich_text" in data:
                    record["rich_text"] = _rich_text(data["rich_text"], f"body.{record['type']}.rich_text")
            if trash is not None:
                record["in_trash"] = bool(trash)
            record["last_edited_time"] = _now()
            return self.render_as_block(kind, record)

    # -- databases and data sources -------------------------------------------------------

    def _schema(self, properties: Any, path: str) -> dict[str, dict]:
        if not isinstance(properties, dict):
            raise _validation(f"body failed validation: {path} should be an object.")
        schema: dict[str, dict] = {}
        for name, config in properties.items():
            if not isinstance(config, dict):
                raise _validation(f"body failed validation: {path}.{name} should be an object.")
            kind = config.get("type") or next((k for k in config if k in PROPERTY_TYPES), None)
            if kind not in PROPERTY_TYPES:
                raise _validation(f"body failed validation: {path}.{name} has a property type this fake does not "
                                  f"support ({', '.join(PROPERTY_TYPES)}).")  # (U)
            schema[name] = self._property_spec(name, kind, config.get(kind) or {}, f"{path}.{name}.{kind}")
        if not any(s["type"] == "title" for s in schema.values()):
            schema = {"Name": self._property_spec("Name", "title", {}, path)} | schema
        titles = [n for n, s in schema.items() if s["type"] == "title"]
        if len(titles) > 1:
            raise _validation("Multiple title properties provided: " + ", ".join(titles))  # (U)
        return schema

    def _property_spec(self, name: str, kind: str, config: dict, path: str) -> dict:
        spec: dict[str, Any] = {"id": "title" if kind == "title" else _short_id(), "name": name,
                                "description": None, "type": kind}
        if kind in ("select", "multi_select", "status"):
            options = []
            for n, option in enumerate(config.get("options") or []):
                self._check_option_name(option["name"], f"{path}.options[{n}].name")
                options.append({"id": str(uuid.uuid4()), "name": option["name"],
                                "color": option.get("color") or COLORS[(n + 1) % len(COLORS)],
                                "description": option.get("description")})
            spec[kind] = {"options": options}
            if kind == "status":
                spec[kind]["groups"] = [{"id": str(uuid.uuid4()), "name": "All", "color": "gray",
                                         "option_ids": [o["id"] for o in options]}]  # (U) grouping
        else:
            spec[kind] = {}
        return spec

    def create_database(self, body: dict) -> dict:
        parent = body.get("parent") or {}
        if not parent.get("page_id"):
            raise _validation("body failed validation: body.parent.page_id should be defined, instead was `undefined`.")
        with self.lock:
            parent_page = self.page(parent["page_id"])
            title = _rich_text(body.get("title") or [], "body.title")
            initial = body.get("initial_data_source") or {}
            schema = self._schema(initial.get("properties") or {}, "body.initial_data_source.properties")
            now = _now_precise()
            database = {"id": _new_id(), "title": title, "description": _rich_text(body.get("description") or [],
                                                                                    "body.description"),
                        "parent": {"type": "page_id", "page_id": parent_page["id"]},
                        "is_inline": bool(body.get("is_inline", False)), "in_trash": False, "is_locked": False,
                        "created_time": now, "last_edited_time": now, "sources": [], "icon": body.get("icon"),
                        "cover": body.get("cover")}
            key = _key(database["id"])
            self.databases[key] = database
            self.children[key] = []
            self.children[_key(parent_page["id"])].append(key)
            self._add_source(database, schema, title, body.get("icon"))
            return self.render_database(database)

    def _add_source(self, database: dict, schema: dict, title: list[dict], icon: Any) -> dict:
        source = {"id": _new_id(), "database_id": database["id"], "title": title, "properties": schema,
                  "created_time": _now(), "last_edited_time": _now(), "in_trash": False, "icon": icon}
        self.data_sources[_key(source["id"])] = source
        database["sources"].append(_key(source["id"]))
        return source

    def create_data_source(self, body: dict) -> dict:
        parent = body.get("parent") or {}
        if not parent.get("database_id"):
            raise _validation("body failed validation: body.parent.database_id should be defined, instead was "
                              "`undefined`.")
        with self.lock:
            database = self.database(parent["database_id"])
            schema = self._schema(body.get("properties") or {}, "body.properties")
            source = self._add_source(database, schema, _rich_text(body.get("title") or [], "body.title"),
                                      body.get("icon"))
            return self.render_data_source(source)

    def update_data_source(self, source_id: str, body: dict) -> dict:
        with self.lock:
            source = self.data_source(source_id)
            trash = body.get("in_trash", body.get("archived"))
            if source["in_trash"] and trash is not False:
                raise _validation(ARCHIVED_MESSAGE)
            for name, change in (body.get("properties") or {}).items():
                spec = self._find_property(source, name)
                if change is None:
                    if spec is None:
                        raise _validation(f"{name} is not a property that exists.")
                    del source["properties"][spec["name"]]
                    continue
                new_name = change.get("name", spec["name"] if spec else name)
                kind = change.get("type") or next((k for k in change if k in PROPERTY_TYPES), None)
                if spec is None or (kind and kind != spec["type"]):
                    if kind is None:
                        raise _validation(f"{name} is not a property that exists.")
                    new = self._property_spec(new_name, kind, change.get(kind) or {}, f"body.properties.{name}")
                    if spec is not None:
                        new["id"] = spec["id"] if kind != "title" else "title"
                        del source["properties"][spec["name"]]
                    source["properties"][new_name] = new
                else:
                    del source["properties"][spec["name"]]
                    spec["name"] = new_name
                    source["properties"][new_name] = spec
            if "title" in body:
                source["title"] = _rich_text(body["title"], "body.title")
            if trash is not None:
                source["in_trash"] = bool(trash)
            source["last_edited_time"] = _now()
            return self.render_data_source(source)

    def render_database(self, database: dict) -> dict:
        return {
            "object": "database", "id": database["id"], "title": copy.deepcopy(database["title"]),
            "description": copy.deepcopy(database["description"]), "parent": database["parent"],
            "is_inline": database["is_inline"], "in_trash": database["in_trash"], "is_locked": database["is_locked"],
            "created_time": database["created_time"], "last_edited_time": database["last_edited_time"],
            "data_sources": [{"id": self.data_sources[k]["id"], "name": _plain(self.data_sources[k]["title"])}
                             for k in database["sources"]],
            "icon": database["icon"], "cover": database["cover"],
            "url": f"https://app.notion.com/p/{_key(database['id'])}", "public_url": None,
            "archived": database["in_trash"],
        }

    def render_data_source(self, source: dict) -> dict:
        database = self.databases[_key(source["database_id"])]
        return {
            "object": "data_source", "id": source["id"], "cover": None, "icon": source["icon"],
            "created_time": source["created_time"], "created_by": self._user(), "last_edited_by": self._user(),
            "last_edited_time": source["last_edited_time"], "title": copy.deepcopy(source["title"]),
            "description": [], "is_inline": database["is_inline"],
            "properties": copy.deepcopy(source["properties"]),
            "parent": {"type": "database_id", "database_id": database["id"]},
            "database_parent": database["parent"],
            "url": f"https://app.notion.com/p/{_key(database['id'])}", "public_url": None,
            "in_trash": source["in_trash"], "archived": source["in_trash"],
        }

    # -- queries ----------------------------------------------------------------------------

    def query(self, source_id: str, body: dict, filter_properties: list[str] | None) -> dict:
        with self.lock:
            source = self.data_source(source_id)
            page_size = body.get("page_size")
            if page_size is None:
                page_size = MAX_PAGE_SIZE
            if not isinstance(page_size, int) or page_size < 1:
                raise _validation(f"body failed validation: body.page_size should be a positive integer, instead "
                                  f"was `{json.dumps(page_size)}`.")
            if page_size > MAX_PAGE_SIZE:
                raise _too_long("body.page_size", MAX_PAGE_SIZE, page_size)
            predicate = self._compile(source, body.get("filter"), "body.filter", 0)
            ordered = self._ordered(source, body.get("sorts"))
            start = 0
            cursor = body.get("start_cursor")
            if cursor:
                keys = [_key(p["id"]) for p in ordered]
                if _key(cursor) not in keys:
                    raise _validation(f"start_cursor provided is invalid: {cursor}")  # (U)
                start = keys.index(_key(cursor))
            results, next_cursor = [], None
            for page in ordered[start:]:
                if page["in_trash"] and not page["listed_while_trashed"] and not body.get("in_trash"):
                    continue
                if not predicate(page):
                    continue
                if len(results) == page_size:
                    next_cursor = page["id"]
                    break
                results.append(page)
            only = set(filter_properties) if filter_properties else None
            return {"object": "list", "results": [self.render_page(p, only) for p in results],
                    "next_cursor": next_cursor, "has_more": next_cursor is not None,
                    "type": "page_or_data_source", "page_or_data_source": {}}

    def _ordered(self, source: dict, sorts: Any) -> list[dict]:
        key = _key(source["id"])
        pages = sorted((p for p in self.pages.values() if p["source"] == key and not p.get("purged")),
                       key=lambda p: p["seq"])
        for sort in reversed(sorts or []):
            reverse = sort.get("direction") == "descending"
            if sort.get("timestamp") in ("created_time", "last_edited_time"):
                field = sort["timestamp"]
                pages.sort(key=lambda p: (p[field], p["seq"]), reverse=reverse)
            elif sort.get("property"):
                spec = self._find_property(source, sort["property"])
                if spec is None:
                    raise _validation(f"Could not find sort property with name or id: {sort['property']}")
                pages.sort(key=lambda p: self._sort_value(spec, p), reverse=reverse)
            else:
                raise _validation("body failed validation: body.sorts[0].property should be defined.")
        return pages

    @staticmethod
    def _sort_value(spec: dict, page: dict) -> str:
        value = page["values"].get(spec["id"])
        if isinstance(value, list):
            return _plain(value) if spec["type"] in ("title", "rich_text") else ",".join(o["name"] for o in value)
        if isinstance(value, dict):
            return value.get("name") or value.get("start") or ""
        return value or ""

    def _compile(self, source: dict, spec: Any, path: str, depth: int):
        if spec is None:
            return lambda page: True
        if not isinstance(spec, dict):
            raise _validation(f"body failed validation: {path} should be an object.")
        for compound in ("and", "or"):
            if compound in spec:
                if depth >= 2:
                    raise _validation(f"body failed validation: {path}.{compound} is nested too deeply; compound "
                                      "filters allow two levels of nesting.")  # (U)
                parts = [self._compile(source, s, f"{path}.{compound}[{n}]", depth + 1)
                         for n, s in enumerate(spec[compound])]
                if compound == "and":
                    return lambda page: all(p(page) for p in parts)
                return lambda page: any(p(page) for p in parts)
        if "timestamp" in spec:
            return self._timestamp_filter(spec, path)
        name = spec.get("property")
        if name is None:
            raise _validation(f"body failed validation: {path}.property should be defined, instead was `undefined`.")
        prop = self._find_property(source, name)
        if prop is None:
            raise _validation(f"Could not find property with name or id: {name}")
        kinds = [k for k in spec if k != "property"]
        if len(kinds) != 1:
            raise _validation(f"body failed validation: {path} should have exactly one filter type.")
        kind = kinds[0]
        if kind != prop["type"]:
            raise _validation(f"database property {prop['type']} does not match filter {kind}")  # (U) wording
        condition = spec[kind]
        allowed = FILTERS_BY_TYPE.get(kind, ())
        if not isinstance(condition, dict) or len(condition) != 1 or next(iter(condition)) not in allowed:
            raise _validation(f"body failed validation: {path}.{kind} should have one of: {', '.join(allowed)}.")
        operator, operand = next(iter(condition.items()))
        pid = prop["id"]
        return lambda page: _matches(kind, operator, operand, page["values"].get(pid))

    @staticmethod
    def _timestamp_filter(spec: dict, path: str):
        """``{"timestamp": "created_time"|"last_edited_time", <same>: {<date condition>}}``: instants compared."""
        field = spec["timestamp"]
        if field not in ("created_time", "last_edited_time"):
            raise _validation(f"body failed validation: {path}.timestamp should be `\"created_time\"` or "
                              f"`\"last_edited_time\"`, instead was `{json.dumps(field)}`.")
        condition = spec.get(field)
        if not isinstance(condition, dict) or len(condition) != 1 or next(iter(condition)) not in DATE_FILTERS:
            raise _validation(f"body failed validation: {path}.{field} should have one of: {', '.join(DATE_FILTERS)}.")
        operator, operand = next(iter(condition.items()))
        if operator in ("is_empty", "is_not_empty"):
            return lambda page: operator == "is_not_empty"
        try:
            bound = _instant(str(operand))
        except ValueError:
            raise _validation(f"body failed validation: {path}.{field}.{operator} should be a valid ISO 8601 date "
                              f"string, instead was `{json.dumps(operand)}`.") from None
        day_only = len(str(operand)) == 10

        def matches(page: dict) -> bool:
            value = _instant(page[field])
            if day_only:
                value, wanted = value.date(), bound.date()
            else:
                wanted = bound
            return {"equals": value == wanted, "before": value < wanted, "after": value > wanted,
                    "on_or_before": value <= wanted, "on_or_after": value >= wanted}[operator]

        return matches

    # -- helpers for tests -------------------------------------------------------------------

    def seed(self, source_id: str, rows: list[dict]) -> list[str]:
        """Rows (property name -> plain value) written straight into memory, no HTTP."""
        with self.lock:
            source = self.data_source(source_id)
            ids = []
            for row in rows:
                record = self._page_record(
                    {"type": "data_source_id", "data_source_id": source["id"], "database_id": source["database_id"]},
                    _key(source["id"]))
                record["values"] = self._property_values(source, _request_properties(source, row), {})
                key = _key(record["id"])
                self.pages[key] = record
                self.children[key] = []
                ids.append(record["id"])
            return ids


def _request_properties(source: dict, row: dict) -> dict:
    """Plain values (str, list, date, None) as request property values."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        kind = source["properties"][name]["type"]
        if kind in ("title", "rich_text"):
            out[name] = {kind: [{"text": {"content": value}}] if value else []}
        elif kind in ("select", "status"):
            out[name] = {kind: {"name": value} if value else None}
        elif kind == "multi_select":
            out[name] = {kind: [{"name": v} for v in value or []]}
        elif kind == "date":
            out[name] = {kind: {"start": value.isoformat() if isinstance(value, date) else value} if value else None}
        else:
            out[name] = {kind: value}
    return out


def _matches(kind: str, operator: str, operand: Any, value: Any) -> bool:
    if kind in ("title", "rich_text", "url"):
        text = _plain(value) if isinstance(value, list) else (value or "")
        wanted = str(operand) if operand is not None else ""
        low, want = text.lower(), wanted.lower()
        return {
            "equals": text == wanted, "does_not_equal": text != wanted, "contains": want in low,
            "does_not_contain": want not in low, "starts_with": low.startswith(want), "ends_with": low.endswith(want),
            "is_empty": text == "", "is_not_empty": text != "",
        }[operator]
    if kind in ("select", "status"):
        name = value["name"] if value else None
        return {"equals": name == operand, "does_not_equal": name != operand, "is_empty": name is None,
                "is_not_empty": name is not None}[operator]
    if kind == "multi_select":
        names = [o["name"] for o in value or []]
        return {"contains": operand in names, "does_not_contain": operand not in names, "is_empty": not names,
                "is_not_empty": bool(names)}[operator]
    start = (value or {}).get("start")
    if operator in ("is_empty", "is_not_empty"):
        return (start is None) == (operator == "is_empty")
    if start is None:
        return False
    day, other = start[:10], str(operand)[:10]
    return {"equals": day == other, "before": day < other, "after": day > other, "on_or_before": day <= other,
            "on_or_after": day >= other}[operator]


class _Faults:
    """Per-run fault settings and the token bucket (guarded by the server's lock)."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.jitter = 0.0
        self.error_share = 0.0
        self.lost_reply_share = 0.0
        self.rate_limit_share = 0.0
        self.retry_after = 1
        self.rps: float | None = 3.0
        self.burst = 3.0
        self.random = random.Random(0)
        self.queued: list[dict] = []
        self.tokens = self.burst
        self.refilled = time.monotonic()

    def take_token(self) -> float | None:
        """None when a token was taken, else the seconds until one is free."""
        if not self.rps:
            return None
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.rps)
        self.refilled = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rps


class FakeNotion(ServedFake):
    """The server: a Workspace behind ThreadingHTTPServer, with faults, stats and test helpers."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, host: str = "127.0.0.1", port: int = 0,
                 integration_name: str = DEFAULT_INTEGRATION_NAME, **faults: Any) -> None:
        self.token = token
        self.workspace = Workspace(str(uuid.uuid4()), integration_name)
        self.root_page_id = self.workspace.add_root_page()["id"]
        self.database_id: str | None = None
        self.data_source_id: str | None = None
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._log: list[tuple[float, str, str, int]] = []
        self._rate_limited = 0
        self.configure(**faults)
        handler = type("Handler", (_Handler,), {"fake": self})
        self._serve(QuietHTTPServer((host, port), handler), "fake-notion")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The settings that point the pipeline's Notion backend at this fake (its database set up)."""
        return {"SOURCES_BACKEND": "notion", "NOTION_TOKEN": self.token, "NOTION_SOURCES_DB": self.database_id or "",
                "NOTION_BASE_URL": self.url}

    def close(self) -> None:
        super().close()
        assert self._thread is not None
        self._thread.join(timeout=5)

    # -- faults and stats ------------------------------------------------------------------

    def configure(self, *, latency: float | None = None, jitter: float | None = None,
                  error_share: float | None = None, rate_limit_share: float | None = None,
                  lost_reply_share: float | None = None, retry_after: int | None = None,
                  rps: float | None | str = "keep", burst: float | None = None, seed: int | None = None) -> None:
        """Change faults for the next requests. ``rps=None`` or 0 turns the rate limit off.

        ``error_share`` of requests get a 5xx before anything is done;
        ``lost_reply_share`` of the successful writes are saved and then
        answered with a 5xx, as when the reply is lost on the way back.
        """
        with self._lock:
            f = self._faults
            if lost_reply_share is not None:
                f.lost_reply_share = float(lost_reply_share)
            if latency is not None:
                f.latency = float(latency)
            if jitter is not None:
                f.jitter = float(jitter)
            if error_share is not None:
                f.error_share = float(error_share)
            if rate_limit_share is not None:
                f.rate_limit_share = float(rate_limit_share)
            if retry_after is not None:
                f.retry_after = max(int(retry_after), 0)
            if rps != "keep":
                f.rps = float(rps) if rps else None
            if burst is not None:
                f.burst = float(burst)
            if rps != "keep" or burst is not None:
                f.tokens, f.refilled = f.burst, time.monotonic()
            if seed is not None:
                f.random = random.Random(seed)

    def fail_next(self, status: int, *, count: int = 1, method: str | None = None, path: str | None = None,
                  retry_after: int | None = None, message: str | None = None, after_apply: bool = False,
                  skip: int = 0) -> None:
        """Answer the next ``count`` matching requests (after ``skip`` of them) with ``status``.

        The answer is Notion's error JSON for that status. ``after_apply``
        carries the request out first and then answers the error, as when a
        reply is lost after the server saved the change. ``path`` matches a
        substring of the request path.
        """
        with self._lock:
            self._faults.queued.append({"status": status, "count": count, "method": method, "path": path,
                                        "retry_after": retry_after, "message": message, "after": after_apply,
                                        "skip": skip})

    def reset_stats(self) -> None:
        with self._lock:
            self._log.clear()
            self._rate_limited = 0

    def stats(self) -> dict:
        with self._lock:
            log = list(self._log)
            limited = self._rate_limited
        times = [entry[0] for entry in log]
        return {
            "requests": len(log),
            "by_endpoint": dict(Counter(entry[1] for entry in log)),
            "by_status": {str(k): v for k, v in Counter(entry[3] for entry in log).items()},
            "rate_limited": limited,
            "max_in_1s": max_in_window(times, 1.0),
            "max_in_10s": max_in_window(times, 10.0),
            "timestamps": times,
            "log": [{"t": t, "endpoint": e, "path": p, "status": s} for t, e, p, s in log],
        }

    def _record(self, endpoint: str, path: str, status: int, started: float) -> None:
        with self._lock:
            self._log.append((started, endpoint, path, status))
            if status == 429:
                self._rate_limited += 1

    def _queued(self, method: str, path: str, after: bool) -> NotionError | None:
        with self._lock:
            for queued in self._faults.queued:
                if queued["after"] == after and queued["method"] in (None, method) and (
                        queued["path"] is None or queued["path"] in path):
                    if queued["skip"] > 0:
                        queued["skip"] -= 1
                        continue
                    queued["count"] -= 1
                    if queued["count"] <= 0:
                        self._faults.queued.remove(queued)
                    return _error_for(queued["status"], queued["message"], queued["retry_after"])
        return None

    def _fault(self, method: str, path: str) -> NotionError | None:
        queued = self._queued(method, path, after=False)
        if queued is not None:
            return queued
        with self._lock:
            f = self._faults
            if f.rate_limit_share and f.random.random() < f.rate_limit_share:
                return _error_for(429, None, f.retry_after)
            wait = f.take_token()
            if wait is not None:
                return _error_for(429, None, max(1, math.ceil(wait)))
            if f.error_share and f.random.random() < f.error_share:
                return _error_for(f.random.choice((500, 502, 503, 504)), None, None)
        return None

    def _lost_reply(self) -> NotionError | None:
        with self._lock:
            f = self._faults
            if f.lost_reply_share and f.random.random() < f.lost_reply_share:
                return _error_for(f.random.choice((500, 502, 504)), None, None)
        return None

    def _delay(self) -> float:
        with self._lock:
            f = self._faults
            return max(0.0, f.latency + (f.random.uniform(-f.jitter, f.jitter) if f.jitter else 0.0))

    # -- helpers for tests -------------------------------------------------------------------

    def create_sources_database(self, kind: str = "full", *, status_type: str = "select",
                                properties: dict[str, dict] | None = None, title: str = "Sources",
                                **options: Any) -> tuple[str, str]:
        """A Sources database under the root page; returns (database id, data source id)."""
        schema = properties if properties is not None else sources_schema(kind, status_type, **options)
        database = self.workspace.create_database({
            "parent": {"type": "page_id", "page_id": self.root_page_id},
            "title": [{"text": {"content": title}}],
            "initial_data_source": {"properties": schema},
        })
        self.database_id = database["id"]
        self.data_source_id = database["data_sources"][0]["id"]
        return self.database_id, self.data_source_id

    def add_data_source(self, title: str, kind: str = "full", *, database_id: str | None = None,
                        properties: dict[str, dict] | None = None) -> str:
        """Another data source in the Sources database (as ``data_sources.create`` makes one); returns its id.

        The database then lists both in ``data_sources`` (``[{id, name}]``, in order of creation).
        """
        schema = properties if properties is not None else sources_schema(kind)
        source = self.workspace.create_data_source({
            "parent": {"type": "database_id", "database_id": database_id or self.database_id},
            "title": [{"text": {"content": title}}],
            "properties": schema,
        })
        return source["id"]

    def seed(self, rows: list[dict], data_source_id: str | None = None) -> list[str]:
        """Rows of plain values (``{"Title": "x", "Status": "Inbox", ...}``) added without HTTP."""
        return self.workspace.seed(data_source_id or self.data_source_id, rows)

    def seed_inbox(self, count: int, *, source_type: str = "RSS", start: int = 0, **extra: Any) -> list[str]:
        url_prop = "Drive URL" if source_type == "PDF" else "Article URL"
        rows = []
        for n in range(start, start + count):
            url = f"file:///data/pdfs/doc-{n}.pdf" if source_type == "PDF" else f"https://example.com/articles/{n}"
            rows.append({"Title": f"Item {n}", "Status": "Inbox", "Source Type": source_type, url_prop: url,
                         "Hash": f"hash-{source_type}-{n}", **extra})
        return self.seed(rows)

    def pages(self, data_source_id: str | None = None) -> list[dict]:
        """Every row of the data source (trashed ones too) as the API renders it."""
        ws = self.workspace
        with ws.lock:
            key = _key(data_source_id or self.data_source_id)
            rows = sorted((p for p in ws.pages.values() if p["source"] == key and not p.get("purged")),
                          key=lambda p: p["seq"])
            return [ws.render_page(p) for p in rows]

    def page(self, page_id: str) -> dict:
        with self.workspace.lock:
            return self.workspace.render_page(self.workspace.page(page_id))

    def set_times(self, page_id: str, *, created_time: str | None = None, last_edited_time: str | None = None) -> None:
        """Back-date a page (Notion's times have whole minutes, so a test's pages would all share one)."""
        with self.workspace.lock:
            record = self.workspace.page(page_id)
            if created_time is not None:
                record["created_time"] = created_time
            if last_edited_time is not None:
                record["last_edited_time"] = last_edited_time

    def values(self, page_id: str) -> dict[str, Any]:
        """A page's properties as plain values (text, option name(s), url, date start)."""
        out: dict[str, Any] = {}
        for name, prop in self.page(page_id)["properties"].items():
            value = prop[prop["type"]]
            if prop["type"] in ("title", "rich_text"):
                out[name] = _plain(value)
            elif prop["type"] in ("select", "status"):
                out[name] = value["name"] if value else None
            elif prop["type"] == "multi_select":
                out[name] = [o["name"] for o in value]
            elif prop["type"] == "date":
                out[name] = value["start"] if value else None
            else:
                out[name] = value
        return out

    def blocks_of(self, block_id: str) -> list[dict]:
        """The live children of a page or block, rendered, each with its own ``children`` list."""
        ws = self.workspace
        with ws.lock:
            out = []
            for key in ws.live_children(_key(block_id)):
                kind, record = ws.any_block(key)
                block = ws.render_as_block(kind, record)
                block["children"] = self.blocks_of(record["id"]) if kind == "block" else []
                out.append(block)
            return out

    def append_blocks(self, block_id: str, children: list[dict]) -> list[dict]:
        """Append blocks (request form) without HTTP, e.g. the toggles a cut-off write left behind."""
        return self.workspace.append_children(block_id, {"children": children})

    def trash_page(self, page_id: str, *, still_listed: bool = False) -> None:
        """Move a page to the trash as a user would; ``still_listed`` keeps it in query results (stale index)."""
        with self.workspace.lock:
            record = self.workspace.page(page_id)
            record["in_trash"] = True
            record["listed_while_trashed"] = still_listed

    def purge_page(self, page_id: str) -> None:
        """Delete a page for good: later requests for it answer 404 object_not_found."""
        with self.workspace.lock:
            self.workspace.page(page_id)["purged"] = True

    def set_property(self, name: str, config: dict | None) -> None:
        """Add, replace (``{"type": ...}``) or remove (None) a property of the Sources data source."""
        self.workspace.update_data_source(self.data_source_id, {"properties": {name: config}})


def _error_for(status: int, message: str | None, retry_after: int | None) -> NotionError:
    code = ERROR_CODES.get(status, "internal_server_error")
    error = NotionError(status, code, message or ERROR_MESSAGES.get(status, "Unexpected error occurred."))
    if status == 429:
        error.extra["__retry_after"] = retry_after if retry_after is not None else 1
    return error



_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), name) for m, p, name in (
        ("GET", r"^/v1/databases/([^/]+)$", "databases.retrieve"),
        ("POST", r"^/v1/databases$", "databases.create"),
        ("GET", r"^/v1/data_sources/([^/]+)$", "data_sources.retrieve"),
        ("PATCH", r"^/v1/data_sources/([^/]+)$", "data_sources.update"),
        ("POST", r"^/v1/data_sources$", "data_sources.create"),
        ("POST", r"^/v1/data_sources/([^/]+)/query$", "data_sources.query"),
        ("POST", r"^/v1/pages$", "pages.create"),
        ("GET", r"^/v1/pages/([^/]+)$", "pages.retrieve"),
        ("PATCH", r"^/v1/pages/([^/]+)$", "pages.update"),
        ("PATCH", r"^/v1/blocks/([^/]+)/children$", "blocks.children.append"),
        ("GET", r"^/v1/blocks/([^/]+)/children$", "blocks.children.list"),
        ("GET", r"^/v1/blocks/([^/]+)$", "blocks.retrieve"),
        ("PATCH", r"^/v1/blocks/([^/]+)$", "blocks.update"),
        ("DELETE", r"^/v1/blocks/([^/]+)$", "blocks.delete"),
    )
]


def _route(method: str, path: str) -> tuple[str, str | None]:
    for route_method, pattern, name in _ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return name, match.group(1) if match.groups() else None
    return "invalid", None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeNotion

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay per reply

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, *, raw: bytes | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        body = raw if raw is not None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed; nothing to answer
            self.close_connection = True

    def _send_error(self, error: NotionError) -> None:
        headers = {}
        extra = dict(error.extra)
        retry_after = extra.pop("__retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if error.status == 502:
            self._send(502, None, headers, raw=b"<html><body>502 Bad Gateway</body></html>",
                       content_type="text/html")
            return
        payload = {"object": "error", "status": error.status, "code": error.code, "message": error.message, **extra,
                   "request_id": str(uuid.uuid4())}
        self._send(error.status, payload, headers)

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:  # the sender died mid-request: a real server never sees a whole request
            self.close_connection = True
            return
        if split.path.startswith("/__"):
            self._control(method, split.path, raw)
            return
        endpoint, object_id = _route(method, split.path)
        delay = self.fake._delay()
        if delay:
            time.sleep(delay)
        try:
            result = self._answer(method, split, endpoint, object_id, raw)
        except NotionError as error:
            self.fake._record(endpoint, split.path, error.status, started)
            self._send_error(error)
        except BaseException:
            self.fake._record(endpoint, split.path, 500, started)
            raise
        else:
            # logged before the answer leaves: a client that read it may ask for stats() at once
            self.fake._record(endpoint, split.path, 200, started)
            self._send(200, {**result, "request_id": str(uuid.uuid4())})

    def _answer(self, method: str, split: Any, endpoint: str, object_id: str | None, raw: bytes) -> dict:
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {self.fake.token}":
            raise NotionError(401, "unauthorized", ERROR_MESSAGES[401])
        if endpoint == "invalid":
            raise NotionError(400, "invalid_request_url", "Invalid request URL.")
        version = self.headers.get("Notion-Version")
        if version is None:
            raise NotionError(400, "missing_version", "Notion-Version header failed validation: Notion-Version "
                                                      "header should be defined, instead was `undefined`.")
        if version != NOTION_VERSION:
            raise NotionError(400, "validation_error", f"This fake implements Notion-Version {NOTION_VERSION} only, "
                                                       f"not {version}.")
        if len(raw) > MAX_BODY_BYTES:
            raise _validation(f"Request body too large: {len(raw)} bytes, the limit is {MAX_BODY_BYTES}.")  # (U)
        body: Any = {}
        if method in ("POST", "PATCH"):
            try:
                body = json.loads(raw.decode("utf-8")) if raw else {}
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise NotionError(400, "invalid_json", "Error parsing JSON body.") from None
            if not isinstance(body, dict):
                raise NotionError(400, "invalid_json", "Error parsing JSON body.")
        fault = self.fake._fault(method, split.path)
        if fault is not None:
            raise fault
        query = parse_qs(split.query, keep_blank_values=True)
        result = self._dispatch(endpoint, object_id, body, query)
        lost = self.fake._queued(method, split.path, after=True)
        if lost is None and method in ("POST", "PATCH", "DELETE"):
            lost = self.fake._lost_reply()
        if lost is not None:
            raise lost
        return result

    def _dispatch(self, endpoint: str, object_id: str | None, body: dict, query: dict[str, list[str]]) -> dict:
        ws = self.fake.workspace
        with ws.lock:
            if endpoint == "databases.retrieve":
                return ws.render_database(ws.database(object_id))
            if endpoint == "databases.create":
                return ws.create_database(body)
            if endpoint == "data_sources.retrieve":
                return ws.render_data_source(ws.data_source(object_id))
            if endpoint == "data_sources.create":
                return ws.create_data_source(body)
            if endpoint == "data_sources.update":
                return ws.update_data_source(object_id, body)
            if endpoint == "data_sources.query":
                properties = query.get("filter_properties") or query.get("filter_properties[]")
                return ws.query(object_id, body, properties)
            if endpoint == "pages.create":
                return ws.create_page(body)
            if endpoint == "pages.retrieve":
                return ws.render_page(ws.page(object_id))
            if endpoint == "pages.update":
                return ws.update_page(object_id, body)
            if endpoint == "blocks.children.append":
                results = ws.append_children(object_id, body)
                return {"object": "list", "results": results, "next_cursor": None, "has_more": False,
                        "type": "block", "block": {}}
            if endpoint == "blocks.children.list":
                size_text = (query.get("page_size") or [""])[0]
                try:
                    page_size = int(size_text) if size_text else MAX_PAGE_SIZE
                except ValueError:
                    raise _validation(f"query failed validation: query.page_size should be a number, instead was "
                                      f"`\"{size_text}\"`.") from None
                if page_size > MAX_PAGE_SIZE or page_size < 1:
                    raise _validation(f"query failed validation: query.page_size should be \u2264 `{MAX_PAGE_SIZE}`, "
                                      f"instead was `{page_size}`.")
                cursor = (query.get("start_cursor") or [""])[0] or None
                return ws.list_children(object_id, cursor, page_size)
            if endpoint == "blocks.retrieve":
                kind, record = ws.any_block(object_id)
                return ws.render_as_block(kind, record)
            if endpoint == "blocks.update":
                return ws.update_block(object_id, body)
            if endpoint == "blocks.delete":
                return ws.trash_block(object_id)
        raise NotionError(400, "invalid_request_url", "Invalid request URL.")

    def _control(self, method: str, path: str, raw: bytes) -> None:
        fake = self.fake
        try:
            data = json.loads(raw.decode("utf-8")) if raw else {}
            if method == "POST" and path == "/__control":
                fake.configure(**data)
                self._send(200, {"ok": True})
            elif method == "POST" and path == "/__fail_next":
                fake.fail_next(**data)
                self._send(200, {"ok": True})
            elif method == "POST" and path == "/__reset_stats":
                fake.reset_stats()
                self._send(200, {"ok": True})
            elif method == "POST" and path == "/__seed_inbox":
                self._send(200, {"ids": fake.seed_inbox(**data)})
            elif method == "GET" and path == "/__stats":
                self._send(200, fake.stats())
            elif method == "GET" and path == "/__pages":
                self._send(200, {"pages": fake.pages(), "values": [fake.values(p["id"]) for p in fake.pages()]})
            else:
                self._send(404, {"error": f"unknown control endpoint {method} {path}"})
        except (TypeError, ValueError) as exc:
            self._send(400, {"error": str(exc)})


@contextlib.contextmanager
def start_fake_notion(*, database: str | None = "full", status_type: str = "select", **options: Any
                      ) -> Iterator[FakeNotion]:
    """A running fake with (by default) a Sources database of the full schema; closed on exit.

    ``database`` is "full", "original" (the original pipeline's schema) or None.
    Other keyword arguments go to :class:`FakeNotion` (token, integration_name,
    latency, jitter, error_share, lost_reply_share, rate_limit_share, retry_after, rps, burst, seed).
    """
    fake = FakeNotion(**options)
    try:
        if database:
            fake.create_sources_database(database, status_type=status_type)
        yield fake
    finally:
        fake.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake Notion API server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--database", choices=("full", "original", "none"), default="full")
    parser.add_argument("--status-type", choices=("select", "status"), default="select")
    parser.add_argument("--rps", type=float, default=3.0, help="average requests per second (0: unlimited)")
    parser.add_argument("--seed-inbox", type=int, default=0, help="Inbox RSS rows to create at start")
    args = parser.parse_args(argv)
    fake = FakeNotion(token=args.token, port=args.port, rps=args.rps or None)
    if args.database != "none":
        fake.create_sources_database(args.database, status_type=args.status_type)
    if args.seed_inbox:
        fake.seed_inbox(args.seed_inbox)
    print(json.dumps({"url": fake.url, "token": fake.token, "database_id": fake.database_id,
                      "data_source_id": fake.data_source_id, "root_page_id": fake.root_page_id}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
