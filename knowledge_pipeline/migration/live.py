"""Read-only checks of the configured services (``test --live``).

OpenAI: the key is accepted and the configured model is among the models the
server lists (``GET /models``; OpenAI-compatible servers such as vLLM implement
the list but not always the single-model endpoint).
Notion: the token is accepted and the Sources database has the schema the
pipeline writes (``knowledge_pipeline.sources.notion_schema.check_database``).
Both go through the :class:`ServiceGateway`, so they are logged like every
other API call; nothing is written to either service.
"""

from __future__ import annotations

import asyncio

from ..config import Settings
from ..errors import PipelineError
from ..services import ServiceGateway
from ..telemetry import Telemetry
from .checks import Check, CheckFailed, CheckSkipped




async def _openai(settings: Settings, telemetry: Telemetry) -> str:
    import openai

    from ..enrichers.openai import classify_error

    client = openai.AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=settings.api_timeout,
    )
    try:
        page = await ServiceGateway.from_settings(settings, telemetry).call(
            "openai",
            "models.list",
            lambda: client.models.list(),
            classify=lambda exc: classify_error(exc, secrets=settings.secrets, timeout=settings.api_timeout),
        )
    finally:
        await client.close()
    ids = {m.id for m in page.data}
    if settings.openai_model not in ids:
        raise CheckFailed(
            f"key accepted, but model {settings.openai_model} is not among the {len(ids)} models the server lists "
            "(check OPENAI_MODEL)"
        )
    return f"key accepted, model {settings.openai_model} available"


def openai_check(settings: Settings, telemetry: Telemetry) -> Check:
    def run() -> str:
        if not settings.openai_api_key:
            raise CheckSkipped("OPENAI_API_KEY not set")
        try:
            return asyncio.run(_openai(settings, telemetry))
        except PipelineError as exc:
            raise CheckFailed(str(exc)) from None

    return Check("OpenAI (live)", run)


async def _notion(settings: Settings, telemetry: Telemetry) -> str:
    from ..sources.notion_schema import check_database

    problems, choice = await check_database(settings, ServiceGateway.from_settings(settings, telemetry))
    note = f" (warning: {choice.explanation()}; {choice.fix})" if choice is not None and choice.ambiguous else ""
    if problems:
        listed = "; ".join(f"{p.property}: {p.problem} (fix: {p.fix})" for p in problems)
        raise CheckFailed(f"token accepted, but the Sources database needs changes: {listed}{note}")
    return "token accepted, Sources database has every property the pipeline writes" + note


def notion_check(settings: Settings, telemetry: Telemetry) -> Check:
    def run() -> str:
        if not (settings.notion_token and settings.notion_sources_db):
            raise CheckSkipped("NOTION_TOKEN / NOTION_SOURCES_DB not set")
        try:
            return asyncio.run(_notion(settings, telemetry))
        except ImportError as exc:
            raise CheckFailed(f"the Notion schema check is not available ({exc})") from None
        except PipelineError as exc:
            raise CheckFailed(str(exc)) from None

    return Check("Notion (live)", run)
