"""Asking a local OpenAI-compatible server how large its context window is.

Ollama, vLLM and llama.cpp silently cut (or reject) prompts longer than the
context they run a model with, which is often far smaller than the model's
own limit. Each says its context where it can be asked:

* Ollama ``POST /api/show {"model": M}``: ``parameters`` holds ``num_ctx N``
  when the model (Modelfile) sets it; ``model_info["<arch>.context_length"]``
  is the model's own limit. Without ``num_ctx`` Ollama runs the model with
  its server default (4096 tokens on machines with less than 24 GiB of VRAM,
  more on larger ones, or ``OLLAMA_CONTEXT_LENGTH``), which cannot be asked:
  the smaller of 4096 and the model's limit is assumed.
* vLLM ``GET /v1/models``: ``max_model_len`` of the served model.
* llama.cpp ``GET /props``: ``default_generation_settings.n_ctx``.

The first that answers wins; ``OPENAI_CONTEXT_TOKENS`` overrides them all
(the core never asks then). The probes go through the gateway as service
``local_llm`` (one ``api_call_complete`` each), so the events of service
``openai`` stay the model calls, each with its tokens.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import ServiceError
from ..services import ServiceGateway
from .transport import scrub

SERVICE = "local_llm"
OPENAI_HOST = "api.openai.com"
OLLAMA_DEFAULT_CONTEXT = 4096
PROBE_TIMEOUT = 10.0
_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


def is_openai_url(base_url: str | None) -> bool:
    """True for OpenAI's own API (the default when OPENAI_BASE_URL is unset)."""
    return base_url is None or (urlsplit(base_url).hostname or "").lower() == OPENAI_HOST


def server_root(base_url: str) -> str:
    """``http://host:11434/v1`` -> ``http://host:11434`` (the native API's root)."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


async def probe_context(
    base_url: str,
    model: str,
    gateway: ServiceGateway,
    *,
    secrets: tuple[str, ...] = (),
    api_key: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> int | None:
    """The server's context window in tokens (logged), or None (logged) when no known endpoint says it.

    ``api_key`` (OPENAI_API_KEY) goes with every probe as a Bearer token: vLLM
    and llama.cpp started with ``--api-key`` answer 401 without it. A
    ``client`` given brings its own headers.
    """
    telemetry = gateway.telemetry
    own = client is None
    http = client or httpx.AsyncClient(
        timeout=PROBE_TIMEOUT, headers={"Authorization": f"Bearer {api_key}"} if api_key else None)
    try:
        for server, probe in (("ollama", _ollama), ("vllm", _vllm), ("llama.cpp", _llama_cpp)):
            found = await probe(http, base_url, model, gateway, secrets)
            if found is not None:
                tokens, source = found
                telemetry.event(
                    "context_window_detected",
                    f"openai: {server} server at {server_root(base_url)} runs {model} with a context of "
                    f"{tokens} tokens ({source})",
                    server=server,
                    context_tokens=tokens,
                    source=source,
                    model=model,
                )
                return tokens
    finally:
        if own:
            await http.aclose()
    telemetry.event(
        "context_window_unknown",
        f"openai: {server_root(base_url)} does not say its context window (not Ollama, vLLM or llama.cpp); "
        "prompts are sized by MAX_INPUT_TOKENS: set OPENAI_CONTEXT_TOKENS to the server's context",
        level=logging.WARNING,
        model=model,
    )
    return None


async def _ollama(
    http: httpx.AsyncClient, base_url: str, model: str, gateway: ServiceGateway, secrets: tuple[str, ...]
) -> tuple[int, str] | None:
    data = await _json(http, "POST", server_root(base_url) + "/api/show", gateway, secrets, "ollama", {"model": model})
    if not isinstance(data, dict) or not ("model_info" in data or "parameters" in data):
        return None
    match = _NUM_CTX.search(str(data.get("parameters") or ""))
    if match:
        return int(match.group(1)), "/api/show parameters num_ctx"
    info = data.get("model_info") if isinstance(data.get("model_info"), dict) else {}
    arch = info.get("general.architecture")
    trained = _positive(info.get(f"{arch}.context_length")) if arch else None
    if trained is None:
        trained = next((_positive(v) for k, v in info.items() if k.endswith(".context_length") and _positive(v)), None)
    if trained is None:
        return OLLAMA_DEFAULT_CONTEXT, "Ollama's default context (no num_ctx)"
    return min(trained, OLLAMA_DEFAULT_CONTEXT), f"Ollama's default context (no num_ctx; the model takes {trained})"


async def _vllm(
    http: httpx.AsyncClient, base_url: str, model: str, gateway: ServiceGateway, secrets: tuple[str, ...]
) -> tuple[int, str] | None:
    data = await _json(http, "GET", base_url.rstrip("/") + "/models", gateway, secrets, "vllm")
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    sized = [m for m in models if isinstance(m, dict) and _positive(m.get("max_model_len"))]
    chosen = next((m for m in sized if m.get("id") == model), sized[0] if len(sized) == 1 else None)
    if chosen is None:
        return None
    return int(chosen["max_model_len"]), "/v1/models max_model_len"


async def _llama_cpp(
    http: httpx.AsyncClient, base_url: str, model: str, gateway: ServiceGateway, secrets: tuple[str, ...]
) -> tuple[int, str] | None:
    data = await _json(http, "GET", server_root(base_url) + "/props", gateway, secrets, "llama.cpp")
    if not isinstance(data, dict):
        return None
    settings = data.get("default_generation_settings")
    n_ctx = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
    if n_ctx is None:
        return None
    return n_ctx, "/props default_generation_settings.n_ctx"


async def _json(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    gateway: ServiceGateway,
    secrets: tuple[str, ...],
    server: str,
    body: dict[str, Any] | None = None,
) -> Any:
    """The endpoint's JSON, or None when it is not there (404, not JSON, refused): a probe never fails a run."""

    async def fetch() -> Any:
        try:
            response = await http.request(method, url, json=body)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def classify(exc: BaseException) -> ServiceError:
        return ServiceError(SERVICE, f"context probe failed: {scrub(f'{type(exc).__name__}: {exc}', secrets)}")

    return await gateway.call(SERVICE, f"context_probe.{server}", fetch, classify=classify)


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
