"""The OpenAI enricher: one structured chat-completions call per item.

The answer is constrained by a strict JSON schema (``response_format`` of
type ``json_schema``). A server that rejects that (some OpenAI-compatible
servers) is detected on the first call of the run; from then on the enricher
asks for ``json_object`` with the schema in the prompt. Either way the answer
is checked here: labels outside the taxonomy are mapped to the closest
allowed one, and a refusal, a truncated or an invalid answer gets one
corrective retry before the item fails.

A text longer than the input budget (``MAX_INPUT_TOKENS``, tokens estimated
as characters / 4) is map-reduced: each chunk is summarised in plain text,
then the structured call reads the chunk summaries. If the server still
answers ``context_length_exceeded`` (its context is smaller than the budget),
the item is retried once with a smaller budget, which later items keep.

Every call goes through :class:`ServiceGateway` (limiter, tenacity retries,
``api_call_*`` events with tokens and estimated cost); the SDK's own retries
are off.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import re
from datetime import date
from typing import Any, NoReturn

import openai
from openai.types.chat import ChatCompletion

from ..budget import Budget
from ..config import Settings
from ..errors import EnrichmentError, FatalRunError, ServiceError
from ..models import Enrichment, Item, Taxonomy
from ..services import ServiceGateway, retry_after_seconds
from . import prompts
from .chunking import CHARS_PER_TOKEN, evenly_spaced, split_text
from .pricing import estimate_cost

SERVICE = "openai"
OPERATION = "chat.completions"
JSON_SCHEMA = "json_schema"
JSON_OBJECT = "json_object"
RESPONSE_FORMAT_UNSUPPORTED = "response_format_unsupported"
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"

_MIN_INPUT_TOKENS = 250
_MIN_TEXT_CHARS = 1000
_HEADER_RESERVE_CHARS = 400
_MAX_DETAIL = 300
_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-*]{4,}")
# OpenAI/vLLM: "maximum context length is N tokens"; llama.cpp: "available context size (N tokens)"
_CONTEXT_LIMIT = re.compile(r"(?:maximum context length is|context size \()\s*(\d+)")
_CONTEXT_CODES = {CONTEXT_LENGTH_EXCEEDED, "exceed_context_size_error"}
_ISO_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")
_NO_VENDOR = {"", "null", "none", "n/a", "na", "unknown", "not specified"}


class _BadAnswer(Exception):
    """The model answered, but not usably. ``kind`` picks the corrective instruction."""

    def __init__(self, kind: str, reason: str, detail: str = "") -> None:
        self.kind = kind
        self.reason = reason
        self.detail = detail
        super().__init__(reason)


class OpenAIEnricher:
    """Enriches items with an OpenAI (or OpenAI-compatible) chat model."""

    name = "openai"

    def __init__(self, settings: Settings, gateway: ServiceGateway, budget: Budget) -> None:
        self._settings = settings
        self._gateway = gateway
        self._telemetry = gateway.telemetry
        self._budget = budget
        self._client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            max_retries=0,
            timeout=settings.api_timeout,
        )
        self._mode: str | None = None
        self._input_tokens = settings.max_input_tokens
        self._unpriced: set[str] = set()

    @property
    def response_mode(self) -> str | None:
        """``json_schema`` or ``json_object`` once the first structured call told; None before."""
        return self._mode

    async def enrich(self, item: Item, text: str, taxonomy: Taxonomy) -> Enrichment:
        text = text.strip()
        if not text:
            raise EnrichmentError("no text to enrich")
        try:
            return await self._enrich_fitting(item, text, taxonomy)
        except ServiceError as exc:
            if exc.fatal:
                raise FatalRunError(str(exc)) from exc
            raise

    async def close(self) -> None:
        await self._client.close()

    # --- one item -----------------------------------------------------------------

    async def _enrich_fitting(self, item: Item, text: str, taxonomy: Taxonomy) -> Enrichment:
        """Enrich within the input budget; on context_length_exceeded retry once with a smaller one."""
        budget = self._input_tokens
        try:
            return await self._enrich_within(item, text, taxonomy, budget)
        except ServiceError as exc:
            smaller = _smaller_budget(exc, budget)
            if smaller is None:
                raise
            self._input_tokens = min(self._input_tokens, smaller)
            self._telemetry.event(
                "openai_context_reduced",
                f"openai: server context is smaller than the input budget; using {smaller} tokens",
                level=logging.WARNING,
                item_id=item.id,
                previous_input_tokens=budget,
                input_tokens=smaller,
            )
            return await self._enrich_within(item, text, taxonomy, smaller)

    async def _enrich_within(self, item: Item, text: str, taxonomy: Taxonomy, input_tokens: int) -> Enrichment:
        limit = _text_budget_chars(taxonomy, input_tokens)
        if len(text) <= limit:
            return await self._structured(item, text, taxonomy, partial=False)
        chunks = split_text(text, limit)
        kept = evenly_spaced(chunks, self._settings.max_chunks)
        if len(kept) < len(chunks):
            self._telemetry.event(
                "document_chunks_capped",
                f"openai: {item.title!r} has {len(chunks)} chunks; summarising {len(kept)} spread over it",
                level=logging.WARNING,
                item_id=item.id,
                chunks_total=len(chunks),
                chunks_kept=len(kept),
            )
        summaries = []
        for index, chunk in enumerate(kept, 1):
            summary = await self._summarise_chunk(item, chunk, index, len(kept))
            if summary:
                summaries.append(f"Part {index} of {len(kept)}: {summary}")
        if not summaries:
            raise EnrichmentError("model gave no summary for any part of the document")
        combined = _fit_parts(summaries, limit)
        enrichment = await self._structured(item, combined, taxonomy, partial=True)
        return dataclasses.replace(enrichment, chunks=len(kept))

    async def _summarise_chunk(self, item: Item, chunk: str, index: int, total: int) -> str | None:
        messages = [
            {"role": "system", "content": prompts.CHUNK_SYSTEM},
            {"role": "user", "content": prompts.chunk_message(item, chunk, index, total)},
        ]
        response = await self._complete(item, messages, None, step="map", chunk=index)
        choice = response.choices[0] if response.choices else None
        content = (choice.message.content or "").strip() if choice else ""
        if choice is None or choice.message.refusal or not content:
            self._telemetry.event(
                "openai_chunk_skipped",
                f"openai: no summary for part {index} of {total} of {item.title!r}",
                level=logging.WARNING,
                item_id=item.id,
                chunk=index,
                refusal=_one_line(choice.message.refusal) if choice and choice.message.refusal else None,
            )
            return None
        return content

    async def _structured(self, item: Item, body: str, taxonomy: Taxonomy, *, partial: bool) -> Enrichment:
        """The structured call, with one corrective retry for a refused, cut-off or invalid answer."""
        messages = [{"role": "user", "content": prompts.document_message(item, body)}]
        for attempt in (1, 2):
            response = await self._structured_call(item, taxonomy, messages, partial)
            try:
                return self._parse(response, taxonomy, item)
            except _BadAnswer as bad:
                if attempt == 2:
                    raise EnrichmentError(bad.reason) from None
                self._telemetry.event(
                    "openai_output_retry",
                    f"openai: {bad.reason}; asking once more",
                    level=logging.WARNING,
                    item_id=item.id,
                    reason=bad.reason,
                )
                messages = messages + [{"role": "user", "content": prompts.correction(bad.kind, bad.detail)}]
        raise AssertionError("unreachable")  # pragma: no cover

    # --- response format detection ----------------------------------------------

    async def _structured_call(
        self, item: Item, taxonomy: Taxonomy, messages: list[dict[str, str]], partial: bool
    ) -> ChatCompletion:
        """json_schema until the server says it does not take it, then json_object for the run.

        No lock around the first call: holding every worker behind it cost
        (workers - 1) model latencies per run. A server without json_schema
        gets at most one rejected call per worker in flight; the fallback is
        logged once.
        """
        if self._mode == JSON_OBJECT:
            return await self._call_in_mode(JSON_OBJECT, item, taxonomy, messages, partial)
        try:
            response = await self._call_in_mode(JSON_SCHEMA, item, taxonomy, messages, partial)
        except ServiceError as exc:
            if exc.code != RESPONSE_FORMAT_UNSUPPORTED:
                raise
            self._fall_back_to_json_object(item, exc)
            return await self._call_in_mode(JSON_OBJECT, item, taxonomy, messages, partial)
        self._mode = self._mode or JSON_SCHEMA
        return response

    def _fall_back_to_json_object(self, item: Item, exc: ServiceError) -> None:
        if self._mode == JSON_OBJECT:
            return
        self._mode = JSON_OBJECT
        self._telemetry.event(
            "openai_json_mode_fallback",
            "openai: the server rejected response_format json_schema; "
            "using json_object with the schema in the prompt for this run",
            level=logging.WARNING,
            item_id=item.id,
            model=self._settings.openai_model,
            error=str(exc),
        )

    async def _call_in_mode(
        self, mode: str, item: Item, taxonomy: Taxonomy, messages: list[dict[str, str]], partial: bool
    ) -> ChatCompletion:
        system = prompts.system_prompt(taxonomy, schema_in_prompt=mode == JSON_OBJECT, partial=partial)
        response_format = prompts.json_schema_format(taxonomy) if mode == JSON_SCHEMA else {"type": JSON_OBJECT}
        full = [{"role": "system", "content": system}, *messages]
        return await self._complete(item, full, response_format, step="reduce" if partial else "single")

    # --- one API call -------------------------------------------------------------

    async def _complete(
        self,
        item: Item,
        messages: list[dict[str, str]],
        response_format: dict[str, Any] | None,
        *,
        step: str,
        chunk: int | None = None,
    ) -> ChatCompletion:
        kwargs: dict[str, Any] = {"model": self._settings.openai_model, "messages": messages}
        if response_format is not None:
            kwargs["response_format"] = response_format
        usage: dict[str, Any] = {}

        def fields(response: Any) -> dict[str, Any]:
            usage.update(self._usage_fields(response))
            return usage

        context: dict[str, Any] = {"item_id": item.id, "step": step}
        if chunk is not None:
            context["chunk"] = chunk
        response = await self._gateway.call(
            SERVICE,
            OPERATION,
            lambda: self._client.chat.completions.create(**kwargs),
            classify=self._classify,
            fields=fields,
            context=context,
        )
        self._budget.add(usage.get("estimated_cost_usd"))
        return response

    def _usage_fields(self, response: ChatCompletion) -> dict[str, Any]:
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        total = int(getattr(usage, "total_tokens", 0) or 0) or prompt + completion
        details = getattr(usage, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0)
        model = getattr(response, "model", None) or self._settings.openai_model
        cost = None
        if usage is not None:  # a server that reports no usage has no estimate either
            cost = estimate_cost(model, prompt, completion, cached, self._settings.openai_prices)
            if cost is None:
                self._warn_unpriced(model)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": total,
            "cached_tokens": cached,
            "model": model,
            "estimated_cost_usd": None if cost is None else round(cost, 8),
        }

    def _warn_unpriced(self, model: str) -> None:
        if model in self._unpriced:
            return
        self._unpriced.add(model)
        self._telemetry.event(
            "openai_price_unknown",
            f"openai: no price known for model {model!r}; its cost is reported as unknown and "
            "MAX_COST_USD cannot limit it (add it to OPENAI_PRICES)",
            level=logging.WARNING,
            model=model,
        )

    def _classify(self, exc: BaseException) -> ServiceError:
        return classify_error(exc, secrets=self._settings.secrets, timeout=self._settings.api_timeout)

    # --- the answer -----------------------------------------------------------------

    def _parse(self, response: ChatCompletion, taxonomy: Taxonomy, item: Item) -> Enrichment:
        choice = response.choices[0] if response.choices else None
        if choice is None:
            raise _BadAnswer("invalid", "invalid JSON from model: no choices in the response", "no answer")
        message = choice.message
        if message.refusal:
            raise _BadAnswer("refusal", f"model refused: {_one_line(message.refusal)}")
        if choice.finish_reason == "length":
            raise _BadAnswer("length", "output truncated (finish_reason=length)")
        if choice.finish_reason == "content_filter":
            raise _BadAnswer("refusal", "model refused: content filter")
        content = _strip_fences(message.content or "")
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if content else "empty answer"
            raise _BadAnswer("invalid", f"invalid JSON from model: {problem}", problem) from None
        return self._validate(data, taxonomy, item)

    def _validate(self, data: Any, taxonomy: Taxonomy, item: Item) -> Enrichment:
        if not isinstance(data, dict):
            _invalid("expected a JSON object")
        primitives = data.get("ai_primitives")
        if isinstance(primitives, str):
            primitives = [primitives]
        if not isinstance(primitives, list) or not any(isinstance(p, str) and p.strip() for p in primitives):
            _invalid("'ai_primitives' must be a non-empty list of labels")
        mapped = [
            self._label(p, taxonomy.ai_primitives, "ai_primitives", item)
            for p in primitives
            if isinstance(p, str) and p.strip()
        ]
        insights = data.get("key_insights")
        if not isinstance(insights, list):
            _invalid("'key_insights' must be a list of strings")
        insights = [i.strip() for i in insights if isinstance(i, str) and i.strip()]
        if not insights:
            _invalid("'key_insights' is empty")
        return Enrichment(
            summary=_text(data, "summary"),
            executive_summary=_text(data, "executive_summary"),
            content_type=self._label(data.get("content_type"), taxonomy.content_types, "content_type", item),
            ai_primitives=tuple(dict.fromkeys(mapped)),
            vendor=_vendor(data.get("vendor")),
            key_insights=tuple(insights[:5]),
            published_date=parse_date(data.get("published_date")),
        )

    def _label(self, value: Any, allowed: tuple[str, ...], field: str, item: Item) -> str:
        """``value`` if allowed, else the closest allowed label (logged)."""
        if not isinstance(value, str) or not value.strip():
            _invalid(f"'{field}' is missing")
        value = value.strip()
        if value in allowed or not allowed:
            return value
        by_lower = {a.lower(): a for a in allowed}
        if value.lower() in by_lower:
            return by_lower[value.lower()]
        closest = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.0)
        mapped = by_lower[closest[0]] if closest else allowed[0]
        self._telemetry.event(
            "taxonomy_label_mapped",
            f"openai: {field} label {value!r} is not in the taxonomy; using {mapped!r}",
            level=logging.WARNING,
            item_id=item.id,
            field=field,
            label=value,
            mapped_to=mapped,
        )
        return mapped


# --- helpers --------------------------------------------------------------------------


def classify_error(
    exc: BaseException, *, secrets: tuple[str, ...] = (), timeout: float | None = None
) -> ServiceError:
    """Map an ``openai`` SDK exception to a ServiceError (retryable? fatal? Retry-After?)."""
    if isinstance(exc, openai.APITimeoutError):
        after = f" after {timeout:g}s" if timeout else ""
        return ServiceError(SERVICE, f"OpenAI request timed out{after}", code="timeout", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        detail = _scrub(f"{type(cause).__name__}: {cause}", secrets)
        return ServiceError(SERVICE, f"OpenAI connection failed: {detail}", code="connection_error", retryable=True)
    if not isinstance(exc, openai.APIStatusError):
        detail = _scrub(f"{type(exc).__name__}: {exc}", secrets)
        return ServiceError(SERVICE, f"OpenAI call failed: {detail}")
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    # llama.cpp puts the HTTP status in "code" and the reason in "type"
    code = exc.code if exc.code and not exc.code.isdigit() else exc.type or None
    detail = _scrub(str(body.get("message") or exc.message), secrets)
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
    if status == 401:
        message = f"OpenAI rejected the API key ({label}): {detail}"
        return ServiceError(SERVICE, message, status_code=status, code=code, fatal=True)
    if status == 403:
        message = f"OpenAI denied access ({label}): {detail}"
        return ServiceError(SERVICE, message, status_code=status, code=code, fatal=True)
    if status == 404:
        message = f"OpenAI model or endpoint not found ({label}): {detail} (check OPENAI_MODEL and OPENAI_BASE_URL)"
        return ServiceError(SERVICE, message, status_code=status, code=code, fatal=True)
    if status == 400 and (code in _CONTEXT_CODES or re.search(r"context (length|size)", detail, re.IGNORECASE)):
        message = f"OpenAI context length exceeded (400 {CONTEXT_LENGTH_EXCEEDED}): {detail}"
        return ServiceError(SERVICE, message, status_code=status, code=CONTEXT_LENGTH_EXCEEDED)
    if status == 400 and _mentions_response_format(exc, detail):
        message = f"OpenAI-compatible server rejected response_format ({label}): {detail}"
        return ServiceError(SERVICE, message, status_code=status, code=RESPONSE_FORMAT_UNSUPPORTED)
    retryable = status in (408, 409) or status >= 500
    return ServiceError(
        SERVICE,
        f"OpenAI {'server error' if status >= 500 else 'request failed'} ({label}): {detail}",
        status_code=status,
        code=code,
        retryable=retryable,
        retry_after=retry_after_seconds(exc.response.headers) if retryable else None,
    )


def parse_date(value: Any) -> date | None:
    """An ISO date (a datetime's date part is taken); anything else is None."""
    if not isinstance(value, str):
        return None
    match = _ISO_DATE.match(value)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _mentions_response_format(exc: openai.APIStatusError, detail: str) -> bool:
    text = detail.lower()
    return exc.param == "response_format" or "response_format" in text or "json_schema" in text


def _smaller_budget(exc: ServiceError, budget: int) -> int | None:
    """A smaller input budget after context_length_exceeded, or None when there is no point."""
    if exc.code != CONTEXT_LENGTH_EXCEEDED:
        return None
    smaller = budget // 2
    match = _CONTEXT_LIMIT.search(str(exc))
    if match:
        smaller = min(smaller, int(int(match.group(1)) * 0.75))
    return smaller if smaller >= _MIN_INPUT_TOKENS else None


def _text_budget_chars(taxonomy: Taxonomy, input_tokens: int) -> int:
    """Characters of document text that fit in one call next to the instructions."""
    overhead = len(prompts.system_prompt(taxonomy, schema_in_prompt=True, partial=True)) + _HEADER_RESERVE_CHARS
    return max(input_tokens * CHARS_PER_TOKEN - overhead, _MIN_TEXT_CHARS)


def _fit_parts(parts: list[str], limit: int) -> str:
    """Join chunk summaries, shortening each evenly if together they exceed ``limit`` characters."""
    joined = "\n\n".join(parts)
    if len(joined) <= limit:
        return joined
    share = max(limit // len(parts) - 2, 1)
    return "\n\n".join(p[:share] for p in parts)


def _invalid(problem: str) -> NoReturn:
    raise _BadAnswer("invalid", f"invalid JSON from model: {problem}", problem)


def _text(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        _invalid(f"'{field}' is missing or empty")
    return value.strip()


def _vendor(value: Any) -> str | None:
    if not isinstance(value, str) or value.strip().lower() in _NO_VENDOR:
        return None
    return value.strip()


def _strip_fences(content: str) -> str:
    """Some compatible servers wrap JSON in Markdown code fences despite being asked not to."""
    text = content.strip()
    if text.startswith("```"):
        text = re.sub(r"^```[a-zA-Z]*\s*", "", text)
        text = re.sub(r"\s*```$", "", text)
    return text


def _one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """One line without any secret or anything shaped like an API key."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _one_line(_KEY_PATTERN.sub(r"\1***", text))
