"""OpenAI (and OpenAI-compatible servers): a thin transport under the provider-neutral core.

One ``chat.completions`` request per prompt, constrained by a strict JSON
schema (``response_format`` of type ``json_schema``). A server that rejects
that (some OpenAI-compatible servers) is detected on the first structured
call of the run; from then on the transport asks for ``json_object`` with the
schema in the system prompt. ``prompt_cache_key`` names the static part of
each prompt so OpenAI routes items sharing it to the same cache; a server
that rejects the parameter is sent none for the rest of the run.

When ``OPENAI_BASE_URL`` points at a local server (Ollama, vLLM, llama.cpp)
the transport asks it for its context window (:mod:`.local_servers`), so the
core sizes prompts to fit instead of letting the server cut them silently.

Everything else (the prompt, answer checks, corrective retries, map-reduce,
analyses) is the core's (:mod:`.core`). Every call goes through the
:class:`ServiceGateway` (limiter, tenacity retries, ``api_call_*`` events with
tokens and estimated cost); the SDK's own retries are off.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from ..budget import Budget
from ..config import Settings
from ..errors import ServiceError
from ..services import ServiceGateway, retry_after_seconds
from . import prompts
from .accounting import Meter, metered_call
from .core import LLMEnricher, limits, parse_date
from .local_servers import is_openai_url, probe_context
from .transport import (
    CONTEXT_LENGTH_EXCEEDED,
    LazySdkClient,
    Prompt,
    Reply,
    Usage,
    access_error,
    scrub,
    sdk_error,
    status_error,
)

if TYPE_CHECKING:  # the SDK is imported on the first call (start-up, docs/performance.md)
    import openai

__all__ = ["OpenAIEnricher", "OpenAITransport", "classify_error", "parse_date"]

SERVICE = "openai"
OPERATION = "chat.completions"
JSON_SCHEMA = "json_schema"
JSON_OBJECT = "json_object"
RESPONSE_FORMAT_UNSUPPORTED = "response_format_unsupported"
PARAMETER_UNSUPPORTED = "unsupported_parameter"
CACHE_KEY_PARAM = "prompt_cache_key"

_CONTEXT_CODES = {CONTEXT_LENGTH_EXCEEDED, "exceed_context_size_error"}


class OpenAITransport(LazySdkClient):
    """Chat completions through the official ``openai.AsyncOpenAI``."""

    service = SERVICE

    def __init__(self, settings: Settings, gateway: ServiceGateway, meter: Meter) -> None:
        self._settings = settings
        self._gateway = gateway
        self._telemetry = gateway.telemetry
        self._meter = meter
        self.model = settings.openai_model
        self._mode: str | None = None
        self._send_cache_key = True

    @property
    def response_mode(self) -> str | None:
        """``json_schema`` or ``json_object`` once the first structured call told; None before."""
        return self._mode

    def _new_client(self) -> openai.AsyncOpenAI:
        return sdk_client(self._settings, self._settings.api_timeout)  # importing the SDK takes ~0.4 s

    async def context_tokens(self) -> int | None:
        base = self._settings.openai_base_url
        if is_openai_url(base):
            return None
        return await probe_context(base or "", self.model, self._gateway, secrets=self._settings.secrets,
                                   api_key=self._settings.openai_api_key)

    async def send(self, prompt: Prompt, *, context: dict[str, Any]) -> Reply:
        """json_schema until the server says it does not take it, then json_object for the run.

        No lock around the first call: holding every worker behind it cost
        (workers - 1) model latencies per run. A server without json_schema
        gets at most one rejected call per worker in flight; the fallback is
        logged once.
        """
        if prompt.schema is None:
            return await self._call(prompt, None, context)
        if self._mode == JSON_OBJECT:
            return await self._call(prompt, JSON_OBJECT, context)
        try:
            reply = await self._call(prompt, JSON_SCHEMA, context)
        except ServiceError as exc:
            if exc.code != RESPONSE_FORMAT_UNSUPPORTED:
                raise
            self._fall_back_to_json_object(context, exc)
            return await self._call(prompt, JSON_OBJECT, context)
        self._mode = self._mode or JSON_SCHEMA
        return reply

    def request(self, prompt: Prompt, mode: str | None) -> dict[str, Any]:
        """The ``chat.completions.create`` body of ``prompt`` (also one line of a batch)."""
        system = prompt.system
        if mode == JSON_OBJECT and prompt.schema is not None:
            system = prompts.with_schema(system, prompt.schema)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, *prompt.messages],
        }
        if mode == JSON_SCHEMA and prompt.schema is not None:
            body["response_format"] = {
                "type": JSON_SCHEMA,
                "json_schema": {"name": prompt.schema_name, "strict": True, "schema": prompt.schema},
            }
        elif mode == JSON_OBJECT:
            body["response_format"] = {"type": JSON_OBJECT}
        if self._send_cache_key and prompt.cache_key:
            body[CACHE_KEY_PARAM] = prompt.cache_key
        return body

    async def _call(self, prompt: Prompt, mode: str | None, context: dict[str, Any]) -> Reply:
        body = self.request(prompt, mode)
        try:
            return await metered_call(
                self._gateway, self._meter, OPERATION, lambda: self._client.chat.completions.create(**body),
                prompt=prompt, model=self.model, to_reply=reply_of, classify=self._classify, context=context,
            )
        except ServiceError as exc:
            if exc.code != PARAMETER_UNSUPPORTED or CACHE_KEY_PARAM not in body:
                raise
            self._drop_cache_key(exc)
            return await self._call(prompt, mode, context)

    def _classify(self, exc: BaseException) -> ServiceError:
        return classify_error(exc, secrets=self._settings.secrets, timeout=self._settings.api_timeout)

    def _fall_back_to_json_object(self, context: dict[str, Any], exc: ServiceError) -> None:
        if self._mode == JSON_OBJECT:
            return
        self._mode = JSON_OBJECT
        self._telemetry.event(
            "openai_json_mode_fallback",
            "openai: the server rejected response_format json_schema; "
            "using json_object with the schema in the prompt for this run",
            level=logging.WARNING,
            item_id=context.get("item_id"),
            model=self.model,
            error=str(exc),
        )

    def _drop_cache_key(self, exc: ServiceError) -> None:
        if not self._send_cache_key:
            return
        self._send_cache_key = False
        self._telemetry.event(
            "openai_cache_key_dropped",
            "openai: the server rejected prompt_cache_key; sending none for this run",
            level=logging.WARNING,
            error=str(exc),
        )


class OpenAIEnricher(LLMEnricher):
    """The core with the OpenAI transport (``ENRICHER=openai``)."""

    def __init__(self, settings: Settings, gateway: ServiceGateway, budget: Budget) -> None:
        meter = Meter(SERVICE, budget, gateway.telemetry, overrides=settings.openai_prices)
        super().__init__(OpenAITransport(settings, gateway, meter), gateway.telemetry, **limits(settings),
                         context_tokens=settings.openai_context_tokens)

    @property
    def response_mode(self) -> str | None:
        return self.transport.response_mode  # type: ignore[attr-defined]


def reply_of(response: Any, prompt: Prompt, requested_model: str) -> Reply:
    """A chat completion as a provider-neutral Reply; usage estimated when the server sent none."""
    choice = response.choices[0] if getattr(response, "choices", None) else None
    message = choice.message if choice is not None else None
    text = (message.content if message is not None else None) or None
    refusal = getattr(message, "refusal", None) if message is not None else None
    finish = getattr(choice, "finish_reason", None)
    if finish == "content_filter" and not refusal:
        refusal = "content filter"
    model = getattr(response, "model", None) or requested_model
    return Reply(text=text, refusal=refusal, truncated=finish == "length", usage=usage_of(response, prompt, text), model=model)


def usage_of(response: Any, prompt: Prompt, text: str | None) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:  # some compatible servers send none: the tokens still count, estimated
        completion = (len(text or "") + 3) // 4
        return Usage(prompt=prompt.estimated_tokens(), completion=completion, estimated=True)
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        prompt=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion=int(getattr(usage, "completion_tokens", 0) or 0),
        cached=int(getattr(details, "cached_tokens", 0) or 0),
    )


def classify_error(
    exc: BaseException, *, secrets: tuple[str, ...] = (), timeout: float | None = None
) -> ServiceError:
    """Map an ``openai`` SDK exception to a ServiceError (retryable? fatal? Retry-After?)."""
    import openai

    common = sdk_error(exc, SERVICE, "OpenAI", openai, secrets=secrets, timeout=timeout)
    if common is not None:
        return common
    assert isinstance(exc, openai.APIStatusError)
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    # llama.cpp puts the HTTP status in "code" and the reason in "type"
    code = exc.code if exc.code and not exc.code.isdigit() else exc.type or None
    detail = scrub(str(body.get("message") or exc.message), secrets)
    label = f"{status} {code}" if code else str(status)
    if status == 429:
        if code == "insufficient_quota" or exc.type == "insufficient_quota":
            return ServiceError(
                SERVICE,
                f"OpenAI quota exhausted (insufficient_quota): {detail}",
                status_code=status,
                code="insufficient_quota",
                fatal=True,
            )
        return ServiceError(
            SERVICE,
            f"OpenAI rate limit ({label}): {detail}",
            status_code=status,
            code=code or "rate_limit_exceeded",
            retryable=True,
            retry_after=retry_after_seconds(exc.response.headers),
        )
    access = access_error(SERVICE, "OpenAI", status, code, label, detail, check="OPENAI_MODEL and OPENAI_BASE_URL")
    if access is not None:
        return access
    if status == 400 and (code in _CONTEXT_CODES or re.search(r"context (length|size)", detail, re.IGNORECASE)):
        message = f"OpenAI context length exceeded (400 {CONTEXT_LENGTH_EXCEEDED}): {detail}"
        return ServiceError(SERVICE, message, status_code=status, code=CONTEXT_LENGTH_EXCEEDED)
    if status == 400 and _mentions_response_format(exc, detail):
        message = f"OpenAI-compatible server rejected response_format ({label}): {detail}"
        return ServiceError(SERVICE, message, status_code=status, code=RESPONSE_FORMAT_UNSUPPORTED)
    if status == 400 and (exc.param == CACHE_KEY_PARAM or CACHE_KEY_PARAM in detail):
        message = f"OpenAI-compatible server rejected {CACHE_KEY_PARAM} ({label}): {detail}"
        return ServiceError(SERVICE, message, status_code=status, code=PARAMETER_UNSUPPORTED)
    return status_error(SERVICE, "OpenAI", status, code, label, detail, exc.response.headers)


def sdk_client(settings: Settings, timeout: float) -> openai.AsyncOpenAI:
    """An ``openai.AsyncOpenAI`` without SDK retries (the gateway retries); imports the SDK."""
    import openai

    return openai.AsyncOpenAI(api_key=settings.openai_api_key, base_url=settings.openai_base_url, max_retries=0,
                              timeout=timeout)


def _mentions_response_format(exc: openai.APIStatusError, detail: str) -> bool:
    text = detail.lower()
    return exc.param == "response_format" or "response_format" in text or "json_schema" in text


def prompt_of(body: dict[str, Any], step: str) -> Prompt:
    """The Prompt a request body was built from (a batch line), enough to read the answer to it."""
    system, *turns = body["messages"]
    response_format = body.get("response_format") or {}
    spec = response_format.get("json_schema") or {}
    return Prompt(
        system=system["content"],
        messages=tuple(turns),
        schema=spec.get("schema") if response_format.get("type") == JSON_SCHEMA else None,
        schema_name=spec.get("name") or prompts.SCHEMA_NAME,
        step=step,
        cache_key=body.get(CACHE_KEY_PARAM),
    )


def reply_of_body(body: dict[str, Any], prompt: Prompt, requested_model: str) -> Reply:
    """A chat completion received as JSON (a batch's output line) as a Reply."""
    from openai.types.chat import ChatCompletion

    return reply_of(ChatCompletion.model_validate(body), prompt, requested_model)
