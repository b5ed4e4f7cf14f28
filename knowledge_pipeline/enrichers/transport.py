"""The seam between the provider-neutral core and one LLM provider.

The core (:mod:`.core`) builds a :class:`Prompt` (static instructions first,
the item's text last, an optional JSON schema for the answer) and a
:class:`Transport` sends it: OpenAI chat completions, Anthropic messages.
A transport returns a :class:`Reply` (the answer as text or as an object,
whether it was refused or cut off, the token :class:`Usage`) or raises a
classified ``ServiceError`` whose ``code`` is one of the neutral codes
below, so the core reacts the same way whoever answered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ServiceError, one_line
from ..services import retry_after_seconds
from .chunking import CHARS_PER_TOKEN

# Neutral error codes every transport maps its provider's errors to.
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"

STEP_SINGLE = "single"
STEP_MAP = "map"
STEP_REDUCE = "reduce"
STEP_ANALYSES = "analyses"


@dataclass(frozen=True)
class Prompt:
    """One model request, provider-neutral.

    ``system`` is the static part (instructions, taxonomy; the schema travels
    beside it) and must be byte-identical across items so providers can
    cache it; ``messages`` are the user/assistant turns, the item's text in
    the first user turn. ``schema`` asks for a structured answer (None: plain
    text). ``cache_key`` names the static part for providers that route
    cached prompts by key.
    """

    system: str
    messages: tuple[dict[str, str], ...]
    schema: dict[str, Any] | None = None
    schema_name: str = "knowledge_item_enrichment"
    schema_description: str = ""
    step: str = STEP_SINGLE
    max_output_tokens: int = 8192
    cache_key: str | None = None

    def with_turn(self, role: str, content: str) -> Prompt:
        return Prompt(
            self.system, (*self.messages, {"role": role, "content": content}), self.schema, self.schema_name,
            self.schema_description, self.step, self.max_output_tokens, self.cache_key,
        )

    def estimated_tokens(self) -> int:
        """Prompt tokens as characters / 4 (system, turns and schema), for calls whose usage never came back."""
        chars = len(self.system) + sum(len(m["content"]) for m in self.messages)
        if self.schema is not None:
            chars += len(json.dumps(self.schema, ensure_ascii=False))
        return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN + 3 * (len(self.messages) + 1)


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. ``prompt`` includes ``cached`` (read from cache) and ``cache_write``."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0
    cache_write: int = 0
    estimated: bool = False

    @property
    def total(self) -> int:
        return self.prompt + self.completion


@dataclass(frozen=True)
class Reply:
    """What the model answered.

    ``data`` is the structured answer when the provider gives it as an object
    (Anthropic tool use); otherwise ``text`` holds it (JSON text for a
    structured call). ``refusal`` and ``truncated`` say why an answer may be
    unusable.
    """

    text: str | None = None
    data: Any = None
    refusal: str | None = None
    truncated: bool = False
    usage: Usage = field(default_factory=Usage)
    model: str = ""


class Transport(Protocol):
    """Sends prompts to one provider through the ServiceGateway."""

    service: str
    model: str

    async def send(self, prompt: Prompt, *, context: dict[str, Any]) -> Reply:
        """One request (retried by the gateway); raises a classified ServiceError."""
        ...

    async def context_tokens(self) -> int | None:
        """The server's context window when it says it (local servers), else None."""
        ...

    async def close(self) -> None: ...


class LazySdkClient:
    """Holds a provider SDK's client, made (and the SDK imported) on first use, not at start-up.

    A run that never calls the provider never pays the SDK's import (docs/performance.md).
    """

    _sdk: Any = None

    def _new_client(self) -> Any:
        """The SDK client without SDK retries (the gateway retries); imports the SDK."""
        raise NotImplementedError

    @property
    def _client(self) -> Any:
        if self._sdk is None:
            self._sdk = self._new_client()
        return self._sdk

    async def close(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()


_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-*]{4,}")
DETAIL_CHARS = 300


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """One line without any secret or anything shaped like an API key (``sk-...``, ``sk-ant-...``)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return one_line(_KEY_PATTERN.sub(r"\1***", text), DETAIL_CHARS)


# httpx / httpx2 errors raised after the whole request went out: the provider may bill it.
_AFTER_SENDING = {"ReadTimeout", "ReadError", "RemoteProtocolError"}


def request_was_sent(exc: BaseException) -> bool:
    """Whether a failed call's request reached the server (its answer, not its sending, was lost)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if type(cause).__name__ in _AFTER_SENDING:
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def sdk_error(
    exc: BaseException, service: str, provider: str, sdk: Any, *,
    secrets: tuple[str, ...] = (), timeout: float | None = None,
) -> ServiceError | None:
    """What every provider SDK (``openai``, ``anthropic``: the same error classes) raises alike.

    A timeout or a connection failure (both retryable), or an exception that
    is no HTTP answer (this item's); None for an ``APIStatusError``, which each
    provider reads its own way.
    """
    if isinstance(exc, sdk.APITimeoutError):
        after = f" after {timeout:g}s" if timeout else ""
        return ServiceError(service, f"{provider} request timed out{after}", code=TIMEOUT, retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        detail = scrub(f"{type(cause).__name__}: {cause}", secrets)
        return ServiceError(service, f"{provider} connection failed: {detail}", code=CONNECTION_ERROR, retryable=True)
    if not isinstance(exc, sdk.APIStatusError):
        return ServiceError(service, f"{provider} call failed: {scrub(f'{type(exc).__name__}: {exc}', secrets)}")
    return None


def access_error(
    service: str, provider: str, status: int, code: str | None, label: str, detail: str, *, check: str
) -> ServiceError | None:
    """401, 403, 404: the key, the account's access or the model/endpoint (``check`` names their settings)
    is wrong, so every further call would fail too: fatal. None for any other status."""
    if status == 401:
        return ServiceError(service, f"{provider} rejected the API key ({label}): {detail}", status_code=status,
                            code=code, fatal=True)
    if status == 403:
        return ServiceError(service, f"{provider} denied access ({label}): {detail}", status_code=status,
                            code=code, fatal=True)
    if status == 404:
        return ServiceError(service, f"{provider} model or endpoint not found ({label}): {detail} (check {check})",
                            status_code=status, code=code, fatal=True)
    return None


def status_error(
    service: str, provider: str, status: int, code: str | None, label: str, detail: str, headers: Any
) -> ServiceError:
    """Any other HTTP error: retryable when 408, 409 or 5xx (with the server's Retry-After), else this item's."""
    retryable = status in (408, 409) or status >= 500
    return ServiceError(
        service,
        f"{provider} {'server error' if status >= 500 else 'request failed'} ({label}): {detail}",
        status_code=status,
        code=code,
        retryable=retryable,
        retry_after=retry_after_seconds(headers) if retryable else None,
    )

