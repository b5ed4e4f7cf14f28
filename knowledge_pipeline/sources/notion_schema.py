"""The Sources database schema: what the pipeline needs, how to create it, how to check it.

The original pipeline's schema is the contract: every property of it is
required by ``notion check``. Properties this project adds (``Error``, ``Warnings``) are
"recommended": the store writes them when present and skips them otherwise.
Three names are settings (``RSS_URL_PROP``, ``CREATED_PROP``,
``PDF_URL_PROP``); the others are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..config import Settings
from ..models import SourceType, Status, Taxonomy
from ..services import ServiceGateway
from .notion_api import DataSourceChoice, NotionApi, resolve_data_source

TITLE = "Title"
STATUS = "Status"
SOURCE_TYPE = "Source Type"
HASH = "Hash"
SUMMARY = "Summary"
CONTENT_TYPE = "Content-Type"
AI_PRIMITIVE = "AI-Primitive"
VENDOR = "Vendor"
ERROR = "Error"
WARNINGS = "Warnings"
SENDER = "Sender"

ERROR_SEVERITY = "error"
RECOMMENDED = "recommended"

_COLORS = ("blue", "green", "red", "yellow", "purple", "orange", "pink", "brown", "gray")
STATUS_COLORS = {Status.INBOX.value: "blue", Status.ENRICHED.value: "green", Status.FAILED.value: "red",
                 Status.DUPLICATE.value: "gray"}
REQUIRED_STATUSES = (Status.INBOX.value, Status.ENRICHED.value, Status.FAILED.value)


@dataclass(frozen=True)
class PropertySpec:
    """One property of the Sources database.

    ``types`` are the accepted Notion types (the first is what setup creates);
    ``required`` says whether ``notion check`` fails without it; ``setting``
    names the variable that renames it.
    """

    name: str
    types: tuple[str, ...]
    required: bool = True
    options: tuple[str, ...] = ()
    setting: str | None = None
    purpose: str = ""


@dataclass(frozen=True)
class SchemaProblem:
    property: str
    problem: str
    fix: str
    severity: str = ERROR_SEVERITY

    def __str__(self) -> str:
        return f"[{self.severity}] {self.property}: {self.problem}; fix: {self.fix}"


def sources_schema(settings: Settings, taxonomy: Taxonomy = Taxonomy()) -> list[PropertySpec]:
    return [
        PropertySpec(TITLE, ("title",), purpose="item title"),
        PropertySpec(STATUS, ("select", "status"), options=REQUIRED_STATUSES,
                     purpose="Inbox, Enriched or Failed (and Duplicate, issue 15)"),
        PropertySpec(SOURCE_TYPE, ("select",), options=tuple(t.value for t in SourceType), purpose=", ".join(t.value for t in SourceType)),
        PropertySpec(settings.rss_url_prop, ("url",), setting="RSS_URL_PROP", purpose="article URL (RSS, Website)"),
        PropertySpec(settings.pdf_url_prop, ("url",), setting="PDF_URL_PROP", purpose="PDF location (file:// or https://)"),
        PropertySpec(HASH, ("rich_text",), purpose="dedup key"),
        PropertySpec(settings.created_prop, ("date",), setting="CREATED_PROP", purpose="publication date"),
        PropertySpec(SUMMARY, ("rich_text",), purpose="executive summary (2,000 characters at most)"),
        PropertySpec(CONTENT_TYPE, ("select",), options=taxonomy.content_types, purpose="taxonomy: content types"),
        PropertySpec(AI_PRIMITIVE, ("multi_select",), options=taxonomy.ai_primitives, purpose="taxonomy: AI primitives"),
        PropertySpec(VENDOR, ("select",), purpose="vendor named by the item"),
        PropertySpec(ERROR, ("rich_text",), required=False, purpose="why the item failed (added by this project)"),
        PropertySpec(WARNINGS, ("rich_text",), required=False,
                     purpose="text only partly read, one line each (added by this project)"),
        *_email_properties(settings),
        PropertySpec(settings.category_prop, ("select", "multi_select"), required=False, setting="CATEGORY_PROP",
                     purpose="category of the feed the item came from (feed list)"),
    ]


def _email_properties(settings: Settings) -> list[PropertySpec]:
    """Recommended once email capture is configured (EMAIL_IMAP_HOST)."""
    if not settings.email_imap_host:
        return []
    specs = [PropertySpec(SENDER, ("rich_text",), required=False, purpose="an email's sender")]
    if settings.email_url_prop != settings.rss_url_prop:
        specs.append(PropertySpec(settings.email_url_prop, ("url",), required=False, setting="EMAIL_URL_PROP",
                                  purpose="an email's view-in-browser link"))
    return specs


def schema_problems(properties: Mapping[str, dict], settings: Settings) -> list[SchemaProblem]:
    """Each missing or mistyped property of a data source's ``properties``, with its fix."""
    problems: list[SchemaProblem] = []
    for spec in sources_schema(settings):
        severity = ERROR_SEVERITY if spec.required else RECOMMENDED
        actual = properties.get(spec.name)
        wanted = " or ".join(spec.types)
        rename = f" (or set {spec.setting} to the name of your {wanted} property)" if spec.setting else ""
        if actual is None:
            if spec.types == ("title",):
                title = next((n for n, p in properties.items() if p.get("type") == "title"), None)
                problems.append(SchemaProblem(spec.name, f'the title property is called "{title}"',
                                              f'rename "{title}" to "{spec.name}" (the pipeline uses it either way)',
                                              RECOMMENDED))
                continue
            options = f" with options {', '.join(spec.options)}" if spec.options else ""
            problems.append(
                SchemaProblem(spec.name, "missing", f"add a {spec.types[0]} property named \"{spec.name}\"{options}{rename}", severity)
            )
        elif actual.get("type") not in spec.types:
            problems.append(
                SchemaProblem(spec.name, f"is {actual.get('type')}, expected {wanted}",
                              f'change the type of "{spec.name}" to {spec.types[0]}{rename}', severity)
            )
        elif actual.get("type") == "status":
            names = {o.get("name") for o in actual.get("status", {}).get("options", [])}
            missing = [o for o in spec.options if o not in names]
            if missing:
                problems.append(
                    SchemaProblem(spec.name, f"status options missing: {', '.join(missing)}",
                                  "add them in Notion (status options cannot be added through the API)", severity)
                )
            if spec.name == STATUS and Status.DUPLICATE.value not in names:
                problems.append(SchemaProblem(
                    spec.name, "no Duplicate status option: duplicates found in the Inbox are marked Failed "
                    "with \"Duplicate of ...\" instead", "add a Duplicate option to Status in Notion", RECOMMENDED))
    return problems


def _options(names: tuple[str, ...], colors: Mapping[str, str] | None = None) -> dict:
    return {
        "options": [
            {"name": name, "color": (colors or {}).get(name, _COLORS[n % len(_COLORS)])} for n, name in enumerate(names)
        ]
    }


def creation_properties(settings: Settings, taxonomy: Taxonomy = Taxonomy()) -> dict:
    """The ``properties`` of a new Sources data source (every property, Status as a select)."""
    properties: dict[str, dict] = {}
    for spec in sources_schema(settings, taxonomy):
        kind = spec.types[0]
        config: dict = {}
        if kind in ("select", "multi_select"):
            names = tuple(STATUS_COLORS) if spec.name == STATUS else spec.options
            config = _options(names, STATUS_COLORS if spec.name == STATUS else None)
        properties[spec.name] = {"type": kind, kind: config}
    return properties


async def setup_database(settings: Settings, gateway: ServiceGateway, parent_page_id: str) -> str:
    """Create a Sources database with every property under ``parent_page_id``; return the database id."""
    api = NotionApi(settings, gateway)
    await api.open()
    try:
        database = await api.create_database(
            parent={"type": "page_id", "page_id": parent_page_id},
            title=[{"type": "text", "text": {"content": "Sources"}}],
            initial_data_source={"properties": creation_properties(settings, settings.taxonomy or Taxonomy())},
        )
        return database["id"]
    finally:
        await api.close()


async def check_database(settings: Settings, gateway: ServiceGateway) -> tuple[list[SchemaProblem], DataSourceChoice | None]:
    """The problems of the data source NOTION_SOURCES_DB leads to (empty when all is well), and that choice."""
    if not settings.notion_sources_db:
        return [SchemaProblem("NOTION_SOURCES_DB", "not set", "set it to the Sources database id")], None
    api = NotionApi(settings, gateway)
    await api.open()
    try:
        choice = await resolve_data_source(api, settings.notion_sources_db)
    finally:
        await api.close()
    return schema_problems(choice.source.get("properties", {}), settings), choice
