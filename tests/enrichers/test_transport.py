"""The error classification both provider transports share (transport.sdk_error, transport.access_error)."""

from __future__ import annotations

from typing import Any, Callable

import anthropic
import httpx2
import openai
import pytest

from knowledge_pipeline.enrichers import anthropic as anthropic_transport
from knowledge_pipeline.enrichers import openai as openai_transport
from knowledge_pipeline.errors import ServiceError

PROVIDERS: dict[str, tuple[Any, Callable[..., ServiceError], str]] = {
    "OpenAI": (openai, openai_transport.classify_error, "OPENAI_MODEL and OPENAI_BASE_URL"),
    "Anthropic": (anthropic, anthropic_transport.classify_error, "ANTHROPIC_MODEL and ANTHROPIC_BASE_URL"),
}


def _status_error(sdk: Any, status: int, message: str) -> Any:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/")
    body = {"type": "error", "error": {"type": "some_error", "code": "some_error", "message": message}}
    response = httpx2.Response(status, json=body, request=request)
    return sdk.APIStatusError(f"Error code: {status}", response=response, body=body["error"])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status, says", [
    (401, "rejected the API key (401 some_error): no such key"),
    (403, "denied access (403 some_error): no such key"),
    (404, "model or endpoint not found (404 some_error): no such key (check {check})"),
])
def test_key_access_and_model_errors_are_fatal_and_name_the_settings(provider: str, status: int, says: str) -> None:
    sdk, classify, check = PROVIDERS[provider]
    error = classify(_status_error(sdk, status, "no such key"))
    assert error.reason == f"{provider} " + says.format(check=check)
    assert error.fatal and not error.retryable and error.status_code == status and error.code == "some_error"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_sdk_error_that_is_no_http_answer_fails_the_item_without_its_secret(provider: str) -> None:
    sdk, classify, _ = PROVIDERS[provider]
    error = classify(ValueError("bad\nvalue sk-secret-1234567890"), secrets=("sk-secret-1234567890",))
    assert error.reason == f"{provider} call failed: ValueError: bad value ***"
    assert not error.fatal and not error.retryable and error.code is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_timeout_and_a_dropped_connection_are_retried(provider: str) -> None:
    sdk, classify, _ = PROVIDERS[provider]
    request = httpx2.Request("POST", "http://127.0.0.1/v1/")
    timeout = classify(sdk.APITimeoutError(request=request), timeout=2.5)
    dropped = classify(sdk.APIConnectionError(request=request))
    assert (timeout.reason, timeout.code, timeout.retryable) == (f"{provider} request timed out after 2.5s", "timeout", True)
    assert dropped.reason.startswith(f"{provider} connection failed: ") and dropped.code == "connection_error"
    assert dropped.retryable
