"""The OpenAI enricher with the real AsyncOpenAI SDK against the fake OpenAI server."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import httpx2
import openai
import pytest

from knowledge_pipeline.budget import Budget
from knowledge_pipeline.config import Settings
from knowledge_pipeline.enrichers.analyses import ORIGINAL, Analysis
from knowledge_pipeline.enrichers.anthropic import AnthropicEnricher
from knowledge_pipeline.enrichers.core import LLMEnricher
from knowledge_pipeline.enrichers.openai import OpenAIEnricher, classify_error, parse_date
from knowledge_pipeline.enrichers.pricing import estimate_cost
from knowledge_pipeline.enrichers.prompts import json_schema_format
from knowledge_pipeline.errors import EnrichmentError, FatalRunError, ServiceError
from knowledge_pipeline.models import DEFAULT_AI_PRIMITIVES, DEFAULT_CONTENT_TYPES, Enrichment, Item, SourceType, Taxonomy
from knowledge_pipeline.services import RetryPolicy, ServiceGateway
from knowledge_pipeline.telemetry import RunMetrics, Telemetry
from tests.fakes.openai_server import start_fake_openai

TAXONOMY = Taxonomy()
TEXT = (
    "Published 2025-03-04. OpenAI released an agent for Coding teams. "
    "It reads repositories, proposes patches and runs tests. "
    "Early users report faster Research on unfamiliar code. Pricing follows usage. "
    "The company plans wider availability next quarter."
)


@dataclass
class Run:
    results: list[Any]
    events: list[tuple[str, dict[str, Any]]]
    budget: Budget
    enricher: LLMEnricher
    fake: Any = None

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [data for kind, data in self.events if kind == event_type]

    def calls(self, event_type: str = "api_call_complete") -> list[dict[str, Any]]:
        """The model calls' events (not the probes of the server's context window)."""
        return [data for data in self.of(event_type) if data["service"] == "openai"]

    @property
    def result(self) -> Any:
        assert len(self.results) == 1
        return self.results[0]


@dataclass
class Doc:
    text: str = TEXT
    title: str = "Coding agents"
    id: str = "item-1"
    extra: dict[str, Any] = field(default_factory=dict)

    def item(self) -> Item:
        return Item(id=self.id, title=self.title, source_type=SourceType.WEBSITE, url="https://example.com/a")


def run(fake: Any, docs: list[Doc] | None = None, *, retries: int = 2, parallel: bool = False,
        provider: str = "openai", **overrides: Any) -> Run:
    """Enrich ``docs`` with a fresh enricher of ``provider`` (openai, anthropic) pointed at ``fake``;
    exceptions are collected as results."""
    docs = docs if docs is not None else [Doc()]
    telemetry = Telemetry()
    events: list[tuple[str, dict[str, Any]]] = []
    telemetry.add_observer(lambda kind, data: events.append((kind, data)))
    gateway = ServiceGateway(telemetry, spacing=0, retry=RetryPolicy(retries=retries, backoff_base=0.01, backoff_max=0.05))
    overrides = {f"{provider}_api_key": fake.api_key, "api_timeout": 5.0, **overrides}
    settings = Settings(enricher=provider, **{f"{provider}_base_url": fake.url}, **overrides)
    budget = Budget()

    async def one(enricher: LLMEnricher, doc: Doc) -> Any:
        try:
            return await enricher.enrich(doc.item(), doc.text, TAXONOMY)
        except Exception as exc:  # collected so the test can assert on it
            return exc

    async def main() -> Run:
        enricher = OpenAIEnricher(settings, gateway, budget) if provider == "openai" else \
            AnthropicEnricher(settings, gateway, budget)
        try:
            if parallel:
                results = await asyncio.gather(*(one(enricher, d) for d in docs))
            else:
                results = [await one(enricher, d) for d in docs]
        finally:
            await enricher.close()
        return Run(list(results), events, budget, enricher, fake)

    return asyncio.run(main())


def long_text(chars: int) -> str:
    paragraphs = []
    i = 0
    while sum(len(p) + 2 for p in paragraphs) < chars:
        i += 1
        paragraphs.append(
            f"Section {i} explains how teams apply Data Analysis to invoices. "
            f"Finding {i}: automated checks caught {i % 7 + 1} errors per batch. "
            "Reviewers confirmed the results and wrote follow-up notes for the next quarter."
        )
    return "\n\n".join(paragraphs)[:chars]


# --- the happy path ------------------------------------------------------------------


def test_one_strict_schema_call_gives_a_valid_enrichment() -> None:
    with start_fake_openai() as fake:
        r = run(fake)
        requests = fake.requests()
        stats = fake.stats()
    result = r.result
    assert isinstance(result, Enrichment)
    assert stats["calls"] == 1
    body_format = requests[0]["response_format"]
    assert body_format == "json_schema"
    assert result.summary.startswith("Published 2025-03-04. OpenAI released an agent")
    assert result.executive_summary.count(".") >= 5
    assert result.content_type in DEFAULT_CONTENT_TYPES
    assert result.ai_primitives == ("Coding", "Research")  # the labels the text names, in order
    assert result.vendor == "OpenAI"
    assert 3 <= len(result.key_insights) <= 5
    assert result.published_date.isoformat() == "2025-03-04"
    assert result.chunks == 1
    assert r.enricher.response_mode == "json_schema"
    (done,) = r.calls()
    assert done["service"] == "openai" and done["item_id"] == "item-1"
    assert {k: done[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens")} == stats["usage"]
    assert done["model"] == "gpt-4.1-mini-2025-04-14"


def test_the_request_holds_the_document_and_sdk_retries_are_off() -> None:
    with start_fake_openai() as fake:
        run(fake)
        (request,) = fake.requests()
    assert request["retry_count"] == "0"  # the SDK's own retries are off
    system, user = request["messages"]
    assert system["role"] == "system" and "Coding agents" in user["content"] and TEXT in user["content"]


def test_schema_is_strict_with_all_properties_required() -> None:
    fmt = json_schema_format(TAXONOMY)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])
    assert schema["properties"]["content_type"]["enum"] == list(DEFAULT_CONTENT_TYPES)
    assert schema["properties"]["ai_primitives"]["items"]["enum"] == list(DEFAULT_AI_PRIMITIVES)
    assert schema["properties"]["vendor"]["type"] == ["string", "null"]


def test_fenced_json_from_a_compatible_server_is_accepted() -> None:
    with start_fake_openai(answer="fenced") as fake:
        r = run(fake)
    assert isinstance(r.result, Enrichment) and r.result.vendor == "OpenAI"


def test_invalid_dates_and_empty_vendors_become_none() -> None:
    assert parse_date("2024-13-45") is None
    assert parse_date("yesterday") is None
    assert parse_date(None) is None
    assert parse_date("2024-05-01T10:00:00Z").isoformat() == "2024-05-01"
    with start_fake_openai() as fake:
        r = run(fake, [Doc(text="Released on 2024-13-45 by a small team. It helps with Automation.")])
    assert r.result.published_date is None and r.result.vendor is None


# --- json_object fallback ----------------------------------------------------------


def test_json_object_fallback_is_detected_once_across_parallel_items(caplog: pytest.LogCaptureFixture) -> None:
    docs = [Doc(id=f"item-{i}", text=f"Item {i} is about Automation at Microsoft. " + TEXT) for i in range(4)]
    with caplog.at_level(logging.WARNING, logger="knowledge_pipeline"):
        with start_fake_openai(reject_json_schema=True) as fake:
            r = run(fake, docs, parallel=True)
            requests = fake.requests()
    assert all(isinstance(x, Enrichment) for x in r.results), r.results
    assert [x.vendor for x in r.results] == ["Microsoft"] * 4
    assert len(r.of("openai_json_mode_fallback")) == 1
    # no lock around the first call: at most one rejected json_schema call per item in flight
    assert 1 <= [rq["response_format"] for rq in requests].count("json_schema") <= len(docs)
    assert [rq["response_format"] for rq in requests].count("json_object") == 4
    assert r.enricher.response_mode == "json_object"
    json_object_system = next(rq for rq in requests if rq["response_format"] == "json_object")["messages"][0]
    assert '"additionalProperties": false' in json_object_system["content"]
    fallback = [rec for rec in caplog.records if rec.extra_fields.get("event_type") == "openai_json_mode_fallback"]
    assert fallback and fallback[0].levelno == logging.WARNING


# --- answer checks and the corrective retry -------------------------------------------


def test_out_of_taxonomy_labels_are_mapped_to_the_closest_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="knowledge_pipeline"):
        with start_fake_openai(answer="off_taxonomy") as fake:
            r = run(fake)
    assert r.result.ai_primitives == ("Coding", "Research")
    assert r.result.content_type in DEFAULT_CONTENT_TYPES
    mapped = r.of("taxonomy_label_mapped")
    assert {(m["label"], m["mapped_to"]) for m in mapped} >= {("codin", "Coding"), ("researc", "Research")}
    records = [rec for rec in caplog.records if rec.extra_fields.get("event_type") == "taxonomy_label_mapped"]
    assert records and all(rec.levelno == logging.WARNING for rec in records)


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("refusal", "model refused: I'm sorry, but I can't help with that request."),
        ("length", "output truncated (finish_reason=length)"),
        ("invalid_json", "invalid JSON from model: Expecting value at line 1 column 1"),
    ],
)
def test_a_bad_answer_gets_one_corrective_retry_then_fails_the_item(answer: str, reason: str) -> None:
    with start_fake_openai(answer=answer) as fake:
        r = run(fake)
        requests = fake.requests()
    assert isinstance(r.result, EnrichmentError) and not isinstance(r.result, ServiceError)
    assert r.result.reason == reason
    assert len(requests) == 2
    assert len(requests[1]["messages"]) == len(requests[0]["messages"]) + 1
    assert "previous answer" in requests[1]["messages"][-1]["content"]
    assert len(r.of("openai_output_retry")) == 1


def test_invalid_json_then_a_valid_answer_succeeds() -> None:
    with start_fake_openai(script=["invalid_json"]) as fake:
        r = run(fake)
        assert fake.stats()["calls"] == 2
    assert isinstance(r.result, Enrichment)
    assert r.of("openai_output_retry")[0]["reason"].startswith("invalid JSON from model")


# --- transport errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "action, status, wait",
    [
        ({"status": 429, "retry_after": 0}, 429, 0.0),
        ({"status": 429, "retry_after_ms": 5}, 429, 0.005),
        ({"status": 500}, 500, None),
        ({"status": 503}, 503, None),
    ],
)
def test_retryable_errors_are_retried_visibly_then_succeed(action: dict, status: int, wait: float | None) -> None:
    with start_fake_openai(script=[action]) as fake:
        r = run(fake)
        requests = fake.requests()
    assert isinstance(r.result, Enrichment)
    assert [rq["status"] for rq in requests] == [status, 200]
    assert all(rq["retry_count"] == "0" for rq in requests)
    (retry,) = r.of("api_call_retry")
    assert retry["service"] == "openai" and retry["status_code"] == status
    if wait is not None:
        assert retry["wait"] == wait  # the server's Retry-After, not a backoff guess
    assert len(r.calls()) == 1


def test_a_timeout_is_retried_then_succeeds() -> None:
    with start_fake_openai(script=[{"latency": 1.5}]) as fake:
        r = run(fake, api_timeout=0.5)
    assert isinstance(r.result, Enrichment)
    (retry,) = r.of("api_call_retry")
    assert "timed out after 0.5s" in retry["error"]


def test_retries_run_out_and_the_item_fails_with_the_service_error() -> None:
    with start_fake_openai(error_rate_5xx=1.0) as fake:
        r = run(fake, retries=1)
        assert fake.stats()["calls"] == 2
    assert isinstance(r.result, ServiceError) and r.result.status_code == 500 and not r.result.fatal
    assert "OpenAI server error (500" in r.result.reason


def test_a_wrong_key_is_fatal_and_never_shown() -> None:
    with start_fake_openai(api_key="sk-the-right-key-000000", leak_key_in_errors=True) as fake:
        r = run(fake, openai_api_key="sk-a-wrong-key-1234567890")
        assert fake.stats()["calls"] == 1
    assert isinstance(r.result, FatalRunError)
    assert "OpenAI rejected the API key (401 invalid_api_key)" in str(r.result)
    assert "sk-a-wrong-key-1234567890" not in str(r.result)
    assert all("sk-a-wrong-key-1234567890" not in str(data) for _, data in r.events)


def test_exhausted_quota_stops_the_run_with_a_clear_message() -> None:
    with start_fake_openai(quota_exhausted=True) as fake:
        r = run(fake)
        assert fake.stats()["calls"] == 1  # retrying does not bring quota back
    assert isinstance(r.result, FatalRunError)
    assert str(r.result).startswith("OpenAI quota exhausted (insufficient_quota): You exceeded your current quota")
    assert not r.of("api_call_retry")


def test_context_length_exceeded_retries_once_with_a_smaller_budget_that_sticks() -> None:
    docs = [Doc(id="a", text=long_text(60_000)), Doc(id="b", text=long_text(50_000))]
    with start_fake_openai(context_tokens=8000) as fake:
        r = run(fake, docs, max_input_tokens=60_000)
        statuses = [rq["status"] for rq in fake.requests()]
    assert all(isinstance(x, Enrichment) for x in r.results), r.results
    assert statuses.count(400) == 1  # only the first item met the limit
    (reduced,) = r.of("openai_context_reduced")
    assert reduced["input_tokens"] == 6000  # 75% of the server's stated context
    assert r.results[0].chunks > 1 and r.results[1].chunks > 1


def test_context_too_small_for_any_call_fails_the_item_not_the_run() -> None:
    with start_fake_openai(context_tokens=100) as fake:
        r = run(fake, max_input_tokens=500)
    assert isinstance(r.result, ServiceError) and not r.result.fatal
    assert r.result.code == "context_length_exceeded"
    assert "maximum context length is 100 tokens" in r.result.reason


# --- long documents ---------------------------------------------------------------------


def test_a_265k_character_text_is_map_reduced_within_the_context() -> None:
    text = long_text(265_000)
    assert len(text) == 265_000
    with start_fake_openai(context_tokens=8000) as fake:
        r = run(fake, [Doc(text=text)], max_input_tokens=8000)
        requests = fake.requests()
        stats = fake.stats()
    result = r.result
    assert isinstance(result, Enrichment), result
    maps = [rq for rq in requests if rq["response_format"] is None]
    assert result.chunks == len(maps) > 1
    assert stats["calls"] == result.chunks + 1
    assert all(rq["status"] == 200 for rq in requests)
    assert max(rq["usage"]["prompt_tokens"] for rq in requests) <= 8000
    assert "Part 1 of" in result.summary and "Section 1 explains" in result.summary
    assert [e["step"] for e in r.calls()] == ["map"] * result.chunks + ["reduce"]


def test_with_the_default_budget_a_265k_character_text_takes_two_chunks() -> None:
    with start_fake_openai() as fake:
        r = run(fake, [Doc(text=long_text(265_000))])
        assert fake.stats()["calls"] == 3
    assert r.result.chunks == 2


def test_chunks_beyond_the_cap_are_dropped_evenly_and_logged() -> None:
    text = long_text(265_000)
    with start_fake_openai(context_tokens=8000) as fake:
        r = run(fake, [Doc(text=text)], max_input_tokens=8000, max_chunks=3)
        maps = [rq for rq in fake.requests() if rq["response_format"] is None]
    assert r.result.chunks == 3 and len(maps) == 3
    (capped,) = r.of("document_chunks_capped")
    assert capped["chunks_kept"] == 3 and capped["chunks_total"] > 3
    last_part = maps[-1]["messages"][1]["content"]
    assert "Part 3 of 3" in last_part and "Section 1 " not in last_part  # the end of the text, not its start


# --- costs and budget --------------------------------------------------------------------


def test_cost_of_a_known_model_is_estimated_and_charged_to_the_budget() -> None:
    with start_fake_openai(cached_share=0.5) as fake:
        r = run(fake, [Doc(text=long_text(8000)), Doc(id="item-2", text=TEXT)])
        usage = [rq["usage"] for rq in fake.requests()]
    completes = r.calls()
    expected = [
        estimate_cost("gpt-4.1-mini", u["prompt_tokens"], u["completion_tokens"], u["cached_tokens"]) for u in usage
    ]
    assert usage[0]["cached_tokens"] > 0  # a long prompt has a cached prefix
    assert [c["cached_tokens"] for c in completes] == [u["cached_tokens"] for u in usage]
    assert [c["estimated_cost_usd"] for c in completes] == pytest.approx(expected)
    u = usage[0]
    by_hand = ((u["prompt_tokens"] - u["cached_tokens"]) * 0.40 + u["cached_tokens"] * 0.10 + u["completion_tokens"] * 1.60) / 1e6
    assert completes[0]["estimated_cost_usd"] == pytest.approx(by_hand)
    assert r.budget.spent_usd == pytest.approx(sum(expected)) and r.budget.spent_usd > 0


def test_an_unknown_model_has_no_cost_not_a_zero_cost() -> None:
    with start_fake_openai() as fake:
        r = run(fake, [Doc(), Doc(id="item-2")], openai_model="llama3.1:8b")
    completes = r.calls()
    assert [c["estimated_cost_usd"] for c in completes] == [None, None]
    assert len(r.of("openai_price_unknown")) == 1
    assert r.budget.spent_usd == 0


def test_price_overrides_from_settings_are_used() -> None:
    prices = {"llama3.1:8b": {"input": 1.0, "output": 2.0}}
    with start_fake_openai() as fake:
        r = run(fake, openai_model="llama3.1:8b", openai_prices=prices)
        (u,) = [rq["usage"] for rq in fake.requests()]
    (complete,) = r.calls()
    assert complete["estimated_cost_usd"] == pytest.approx((u["prompt_tokens"] * 1.0 + u["completion_tokens"] * 2.0) / 1e6)
    assert r.budget.spent_usd == pytest.approx(complete["estimated_cost_usd"])


# --- how other servers' errors are read ---------------------------------------------------


def _status_error(cls: type, status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, json=body, headers=headers, request=request)
    data = body.get("error", body) if isinstance(body, dict) else body
    return cls(f"Error code: {status}", response=response, body=data)


def test_llama_cpp_context_errors_count_as_context_length_exceeded() -> None:
    body = {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
                      "type": "exceed_context_size_error"}}
    error = classify_error(_status_error(openai.BadRequestError, 400, body))
    assert error.code == "context_length_exceeded" and not error.retryable and not error.fatal


def test_retry_after_as_an_http_date_and_non_json_5xx_bodies() -> None:
    soon = formatdate(time.time() + 30, usegmt=True)
    rate = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded", "param": None}}
    error = classify_error(_status_error(openai.RateLimitError, 429, rate, {"retry-after": soon}))
    assert error.retryable and 25 <= error.retry_after <= 31
    proxy = classify_error(_status_error(openai.InternalServerError, 502, "<html>Bad gateway</html>"))
    assert proxy.retryable and proxy.status_code == 502 and "\n" not in proxy.reason


# --- prompt caching ---------------------------------------------------------------------


def _prompt_text(request: dict[str, Any]) -> str:
    """Everything the model reads, in order: the instructions, then the turns."""
    return "".join(m["content"] for m in request["messages"])


def test_two_items_share_the_whole_static_prefix_and_one_cache_key() -> None:
    docs = [Doc(id="a", title="First", text=TEXT), Doc(id="b", title="Second", text="Another text. " * 40),
            Doc(id="c", title="Long", text=long_text(40_000))]
    with start_fake_openai() as fake:
        run(fake, docs, max_input_tokens=8000)
        requests = [rq for rq in fake.requests() if rq["response_format"] == "json_schema"]
    single_a, single_b, reduce_c = requests
    static = single_a["messages"][0]["content"]
    assert all(rq["messages"][0] == {"role": "system", "content": static} for rq in requests)
    texts = [_prompt_text(rq) for rq in requests]
    for text in texts[1:]:
        assert len(os.path.commonprefix([texts[0], text])) >= len(static), "the static part first, byte-identical"
    assert all(text[len(static):].startswith("Title: ") for text in texts), "then the item, nothing before it"
    assert "First" not in static and "too long to read at once" not in static
    assert "too long to read at once" in reduce_c["messages"][1]["content"]
    keys = {rq["prompt_cache_key"] for rq in requests}
    assert len(keys) == 1 and next(iter(keys)).startswith("kp-")


def test_cached_tokens_are_priced_at_the_cached_rate_and_the_share_is_reported() -> None:
    """OpenAI caches prefixes from 1,024 tokens: the original's analyses plus a few of one's own get there."""
    own = tuple(Analysis(f"lens_{n}", f"Lens {n}", f"How the document looks through lens {n}: " + "detail " * 40)
                for n in range(4))
    docs = [Doc(id=f"item-{i}", text=f"Article {i}. " + TEXT * 3) for i in range(3)]
    with start_fake_openai(prompt_cache=True) as fake:
        r = run(fake, docs, analyses=ORIGINAL + own)
        usage = [rq["usage"] for rq in fake.requests()]
    assert usage[0]["cached_tokens"] == 0 and all(u["cached_tokens"] >= 1024 for u in usage[1:])
    completes = r.calls()
    assert [c["cached_tokens"] for c in completes] == [u["cached_tokens"] for u in usage]
    for c in completes:
        uncached = c["prompt_tokens"] - c["cached_tokens"]
        by_hand = (uncached * 0.40 + c["cached_tokens"] * 0.10 + c["completion_tokens"] * 1.60) / 1e6
        assert c["estimated_cost_usd"] == pytest.approx(by_hand)
    metrics = RunMetrics()
    for kind, data in r.events:
        metrics(kind, data)
    summary = metrics.summary()
    expected = sum(u["cached_tokens"] for u in usage) / sum(u["prompt_tokens"] for u in usage)
    assert summary["cache_hit_share"] == pytest.approx(expected, abs=1e-4) and summary["cache_hit_share"] > 0.2


def test_a_server_that_rejects_prompt_cache_key_is_sent_none_for_the_rest_of_the_run() -> None:
    with start_fake_openai(reject_params=["prompt_cache_key"]) as fake:
        r = run(fake, [Doc(id="a"), Doc(id="b")])
        requests = fake.requests()
    assert all(isinstance(x, Enrichment) for x in r.results)
    assert [rq["status"] for rq in requests] == [400, 200, 200]
    assert [rq["prompt_cache_key"] is None for rq in requests] == [False, True, True]
    assert len(r.of("openai_cache_key_dropped")) == 1
