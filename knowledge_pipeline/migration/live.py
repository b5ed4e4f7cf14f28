"""Read-only checks of the configured services (``test --live``).

OpenAI: the configured model can be retrieved with the key (``models.retrieve``).
Notion: the token is accepted and the Sources database has the schema the
pipeline writes (``knowledge_pipeline.sources.notion_schema.check_database``).
Both go through the :class:`ServiceGateway`, so they are logged like every
other API call; nothing is written to either service.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from ..config import Settings
from ..errors import PipelineError
from ..services import RetryPolicy, ServiceGateway
from ..telemetry import Telemetry
from .checks import Check, CheckFailed, CheckSkipped


def _gateway(settings: Settings, telemetry: Telemetry) -> ServiceGateway:
    return ServiceGateway(
        telemetry,
        spacing=settings.parallel_rate_limit,
        notion_max_rps=settings.notion_max_rps,
        retry=RetryPolicy(retries=settings.retry_attempts),
    )


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
        model = await _gateway(settings, telemetry).call(
            "openai",
            "models.retrieve",
            lambda: client.models.retrieve(settings.openai_model),
            classify=lambda exc: classify_error(exc, secrets=settings.secrets, timeout=settings.api_timeout),
        )
    finally:
        await client.close()
    return f"model {getattr(model, 'id', settings.openai_model)} reachable"


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
    from ..sources import notion_schema

    gateway = _gateway(settings, telemetry)
    result: Any = notion_schema.check_database(settings, gateway)
    if inspect.isawaitable(result):
        result = await result
    problems = getattr(result, "problems", None)
    if problems:
        raise CheckFailed("Sources database schema: " + "; ".join(map(str, problems)))
    if getattr(result, "ok", True) is False:
        raise CheckFailed(str(getattr(result, "summary", result)))
    return str(getattr(result, "summary", "") or "token accepted, Sources database schema ok")


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
