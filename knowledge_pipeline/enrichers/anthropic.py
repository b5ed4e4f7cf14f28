"""Anthropic (Claude): a thin transport under the provider-neutral core.

One Messages API request per prompt with the official ``anthropic.AsyncAnthropic``
(SDK retries off, ``timeout=API_TIMEOUT``). A structured answer comes through
tool use: the answer's JSON schema is the ``input_schema`` of one tool and
``tool_choice`` forces it, so the tool call's ``input`` is the answer object.
The static part of every prompt (the tool with its schema, then the system
text) carries a ``cache_control`` breakpoint, so items after the first read
it from Anthropic's prompt cache; ``cache_read_input_tokens`` are priced at
the cache-hit rate and ``cache_creation_input_tokens`` at the cache-write rate.

Errors are classified like OpenAI's: 429 ``rate_limit_error`` and 529
``overloaded_error`` (and 5xx, timeouts, dropped connections) are retried,
honouring ``retry-after``; 401, 403, 404 and 402 ``billing_error`` stop the
run; a prompt over the model's context (400 "prompt is too long") and 413
``request_too_large`` make the core retry with a smaller input budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..budget import Budget
from ..config import Settings
from ..errors import ServiceError
from ..services import ServiceGateway, retry_after_seconds
from .accounting import Meter, metered_call
from .core import LLMEnricher, limits
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
    import anthropic

SERVICE = "anthropic"
OPERATION = "messages.create"
TOOL_DESCRIPTION = "Record the answer for the document, every field filled as its description asks."
CACHE_CONTROL = {"type": "ephemeral"}


class AnthropicTransport(LazySdkClient):
    """Claude through the Messages API, structured answers by a forced tool call."""

    service = SERVICE

    def __init__(self, settings: Settings, gateway: ServiceGateway, meter: Meter) -> None:
        self._settings = settings
        self._gateway = gateway
        self._meter = meter
        self.model = settings.anthropic_model

    def _new_client(self) -> anthropic.AsyncAnthropic:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=self._settings.anthropic_api_key,
            base_url=self._settings.anthropic_base_url,
            max_retries=0,
            timeout=self._settings.api_timeout,
        )

    async def context_tokens(self) -> int | None:
        return None  # Anthropic answers "prompt is too long" with its limit; the core adapts to that

    def request(self, prompt: Prompt) -> dict[str, Any]:
        """The ``messages.create`` arguments of ``prompt``: static tool and system first, cached."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": prompt.max_output_tokens,
            "system": [{"type": "text", "text": prompt.system, "cache_control": CACHE_CONTROL}],
            "messages": [dict(m) for m in prompt.messages],
        }
        if prompt.schema is not None:
            body["tools"] = [{"name": prompt.schema_name, "description": TOOL_DESCRIPTION, "input_schema": prompt.schema}]
            body["tool_choice"] = {"type": "tool", "name": prompt.schema_name}
        return body

    async def send(self, prompt: Prompt, *, context: dict[str, Any]) -> Reply:
        body = self.request(prompt)
        return await metered_call(
            self._gateway, self._meter, OPERATION, lambda: self._client.messages.create(**body),
            prompt=prompt, model=self.model, to_reply=reply_of,
            classify=lambda exc: classify_error(exc, secrets=self._settings.secrets, timeout=self._settings.api_timeout),
            context=context,
        )


class AnthropicEnricher(LLMEnricher):
    """The core with the Anthropic transport (``ENRICHER=anthropic``)."""

    def __init__(self, settings: Settings, gateway: ServiceGateway, budget: Budget) -> None:
        meter = Meter(SERVICE, budget, gateway.telemetry, overrides=settings.openai_prices)
        super().__init__(AnthropicTransport(settings, gateway, meter), gateway.telemetry, **limits(settings))


def reply_of(message: Any, prompt: Prompt, requested_model: str) -> Reply:
    """A Message as a provider-neutral Reply: the forced tool's input, or the text blocks."""
    blocks = list(getattr(message, "content", None) or [])
    texts = [getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text"]
    tool = next((b for b in blocks if getattr(b, "type", None) == "tool_use" and b.name == prompt.schema_name), None)
    stop = getattr(message, "stop_reason", None)
    text = "".join(texts).strip() or None
    refusal = (text or "refused") if stop == "refusal" else None
    data = tool.input if tool is not None and prompt.schema is not None and refusal is None else None
    return Reply(
        text=text,
        data=data,
        refusal=refusal,
        truncated=stop in ("max_tokens", "model_context_window_exceeded"),
        usage=usage_of(message),
        model=getattr(message, "model", None) or requested_model,
    )


def usage_of(message: Any) -> Usage:
    """Anthropic counts uncached input apart from cache reads and writes; the prompt is their sum."""
    usage = getattr(message, "usage", None)
    read = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
    written = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
    uncached = int(getattr(usage, "input_tokens", 0) or 0)
    return Usage(
        prompt=uncached + read + written,
        completion=int(getattr(usage, "output_tokens", 0) or 0),
        cached=read,
        cache_write=written,
    )


def classify_error(
    exc: BaseException, *, secrets: tuple[str, ...] = (), timeout: float | None = None
) -> ServiceError:
    """Map an ``anthropic`` SDK exception to a ServiceError, by HTTP status as the SDK does."""
    import anthropic

    common = sdk_error(exc, SERVICE, "Anthropic", anthropic, secrets=secrets, timeout=timeout)
    if common is not None:
        return common
    assert isinstance(exc, anthropic.APIStatusError)
    status = exc.status_code
    kind, message = _error_body(exc)
    detail = scrub(message or str(exc), secrets)
    label = f"{status} {kind}" if kind else str(status)
    headers = exc.response.headers
    if status == 429:
        return ServiceError(SERVICE, f"Anthropic rate limit ({label}): {detail}", status_code=status,
                            code=kind or "rate_limit_error", retryable=True, retry_after=retry_after_seconds(headers))
    if status == 529:
        return ServiceError(SERVICE, f"Anthropic is overloaded ({label}): {detail}", status_code=status,
                            code=kind or "overloaded_error", retryable=True, retry_after=retry_after_seconds(headers))
    access = access_error(SERVICE, "Anthropic", status, kind, label, detail,
                          check="ANTHROPIC_MODEL and ANTHROPIC_BASE_URL")
    if access is not None:
        return access
    if status == 402:
        return ServiceError(SERVICE, f"Anthropic billing problem ({label}): {detail}", status_code=status,
                            code=kind or "billing_error", fatal=True)
    if status == 413 or (status == 400 and "prompt is too long" in detail.lower()):
        return ServiceError(SERVICE, f"Anthropic request too large ({label}): {detail}", status_code=status,
                            code=CONTEXT_LENGTH_EXCEEDED)
    return status_error(SERVICE, "Anthropic", status, kind, label, detail, headers)


def _error_body(exc: anthropic.APIStatusError) -> tuple[str | None, str | None]:
    """``error.type`` and ``error.message`` of ``{"type": "error", "error": {...}}``, whatever the SDK version."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    kind, message = error.get("type"), error.get("message")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else None)
