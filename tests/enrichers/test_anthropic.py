"""ENRICHER=anthropic with the real AsyncAnthropic SDK against the fake Messages API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from knowledge_pipeline.budget import Budget
from knowledge_pipeline.config import load_settings
from knowledge_pipeline.enrichers import make_enricher
from knowledge_pipeline.enrichers.analyses import ORIGINAL, Analysis
from knowledge_pipeline.enrichers.anthropic import AnthropicEnricher
from knowledge_pipeline.errors import EnrichmentError, FatalRunError, ServiceError
from knowledge_pipeline.models import DEFAULT_CONTENT_TYPES, Enrichment
from knowledge_pipeline.services import ServiceGateway
from knowledge_pipeline.telemetry import RunMetrics, Telemetry
from tests.enrichers.test_openai import TEXT, Doc, Run, long_text
from tests.enrichers.test_openai import run as run_enricher
from tests.fakes.anthropic_server import start_fake_anthropic


def run(fake: Any, docs: list[Doc] | None = None, *, retries: int = 2, **overrides: Any) -> Run:
    return run_enricher(fake, docs, retries=retries, provider="anthropic", **overrides)


def test_the_structured_answer_comes_from_a_forced_tool_with_the_same_schema() -> None:
    with start_fake_anthropic() as fake:
        r = run(fake)
        (request,) = fake.requests()
    result = r.result
    assert isinstance(result, Enrichment), result
    assert result.vendor == "OpenAI" and result.ai_primitives == ("Coding", "Research")
    assert result.content_type in DEFAULT_CONTENT_TYPES and result.published_date.isoformat() == "2025-03-04"
    body = request["body"]
    (tool,) = body["tools"]
    assert body["tool_choice"] == {"type": "tool", "name": tool["name"]}
    assert tool["input_schema"]["properties"]["content_type"]["enum"] == list(DEFAULT_CONTENT_TYPES)
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["max_tokens"] == 8192 and request["retry_count"] == "0"
    assert body["messages"][0]["content"].startswith("Title: Coding agents")
    (done,) = r.of("api_call_complete")
    assert done["service"] == "anthropic" and done["model"] == "claude-haiku-4-5"
    assert done["prompt_tokens"] == fake.stats()["usage"]["input_tokens"] and done["estimated_cost_usd"] > 0


def test_the_factory_and_the_settings_pick_anthropic() -> None:
    settings = load_settings({"ANTHROPIC_API_KEY": "sk-ant-x"}, env_file=None)
    assert settings.enricher == "anthropic" and settings.anthropic_model == "claude-haiku-4-5"
    assert "sk-ant-x" in settings.secrets
    enricher = make_enricher(settings, ServiceGateway(Telemetry()), Budget())
    assert isinstance(enricher, AnthropicEnricher) and enricher.name == "anthropic"
    asyncio.run(enricher.close())
    assert load_settings({"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "b"}, env_file=None).enricher == "openai"


def test_the_static_prefix_is_written_once_then_read_from_the_cache_and_priced_so() -> None:
    own = tuple(Analysis(f"lens_{n}", f"Lens {n}", "detail " * 60) for n in range(3))
    docs = [Doc(id=f"i{n}", text=f"Article {n}. " + TEXT) for n in range(3)]
    with start_fake_anthropic() as fake:
        r = run(fake, docs, analyses=ORIGINAL + own)
        usage = [rq["usage"] for rq in fake.requests()]
    assert usage[0]["cache_creation_input_tokens"] > 1024 and usage[0]["cache_read_input_tokens"] == 0
    assert all(u["cache_read_input_tokens"] == usage[0]["cache_creation_input_tokens"] for u in usage[1:])
    calls = r.of("api_call_complete")
    for call, u in zip(calls, usage):
        assert call["prompt_tokens"] == u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
        assert call["cached_tokens"] == u["cache_read_input_tokens"]
        by_hand = (u["input_tokens"] * 1.00 + u["cache_read_input_tokens"] * 0.10
                   + u["cache_creation_input_tokens"] * 1.25 + u["output_tokens"] * 5.00) / 1e6
        assert call["estimated_cost_usd"] == pytest.approx(by_hand)
    metrics = RunMetrics()
    for kind, data in r.events:
        metrics(kind, data)
    summary = metrics.summary()
    assert summary["api_calls"]["anthropic"]["tokens"]["cached"] == sum(u["cache_read_input_tokens"] for u in usage)
    assert "openai" not in summary["api_calls"] and summary["cache_hit_share"] > 0.3
    assert r.budget.spent_usd == pytest.approx(summary["estimated_cost_usd"], abs=1e-6)


@pytest.mark.parametrize("action, status", [
    ({"status": 529}, 529),
    ({"status": 429, "retry_after": 0}, 429),
    ({"status": 500}, 500),
])
def test_overload_rate_limits_and_server_errors_are_retried(action: dict, status: int) -> None:
    with start_fake_anthropic(script=[action]) as fake:
        r = run(fake)
        statuses = [rq["status"] for rq in fake.requests()]
    assert isinstance(r.result, Enrichment)
    assert statuses == [status, 200]
    (retry,) = r.of("api_call_retry")
    assert retry["status_code"] == status
    if status == 429:
        assert retry["wait"] == 0.0  # the server's retry-after, not a backoff guess


@pytest.mark.parametrize("status, fragment", [
    (401, "Anthropic rejected the API key (401 authentication_error)"),
    (402, "Anthropic billing problem (402 billing_error)"),
    (403, "Anthropic denied access (403 permission_error)"),
])
def test_credentials_billing_and_access_errors_stop_the_run(status: int, fragment: str) -> None:
    with start_fake_anthropic(script=[{"status": status}]) as fake:
        r = run(fake)
        assert fake.stats()["calls"] == 1
    assert isinstance(r.result, FatalRunError) and fragment in str(r.result)


def test_a_wrong_key_is_fatal_and_never_shown() -> None:
    with start_fake_anthropic() as fake:
        r = run(fake, anthropic_api_key="sk-ant-a-wrong-key-1234567890")
        assert fake.stats()["calls"] == 1
    assert isinstance(r.result, FatalRunError) and "401 authentication_error" in str(r.result)
    assert all("a-wrong-key-1234567890" not in str(data) for _, data in r.events)


def test_an_unknown_model_names_the_setting() -> None:
    with start_fake_anthropic() as fake:
        r = run(fake, anthropic_model="claude-nonexistent")
    assert isinstance(r.result, FatalRunError) and "ANTHROPIC_MODEL" in str(r.result)


@pytest.mark.parametrize("action", [
    {"status": 413, "message": "Request exceeds the maximum allowed number of bytes."},
    {"status": 400, "message": "prompt is too long: 215000 tokens > 200000 maximum"},
])
def test_a_request_too_large_retries_the_item_with_a_smaller_budget(action: dict) -> None:
    with start_fake_anthropic(script=[action]) as fake:
        r = run(fake, [Doc(text=long_text(30_000))], max_input_tokens=60_000)
        statuses = [rq["status"] for rq in fake.requests()]
    assert isinstance(r.result, Enrichment), r.result
    assert statuses[0] == action["status"] and set(statuses[1:]) == {200}
    (reduced,) = r.of("anthropic_context_reduced")
    assert reduced["input_tokens"] < 60_000


def test_a_context_smaller_than_the_text_is_map_reduced_never_cut() -> None:
    with start_fake_anthropic(context_tokens=3000) as fake:
        r = run(fake, [Doc(text=long_text(40_000))], max_input_tokens=60_000)
        ok = [rq for rq in fake.requests() if rq["status"] == 200]
    assert isinstance(r.result, Enrichment), r.result
    assert r.result.chunks > 1
    assert max(rq["usage"]["input_tokens"] + rq["usage"]["cache_creation_input_tokens"]
               + rq["usage"]["cache_read_input_tokens"] for rq in ok) <= 3000


@pytest.mark.parametrize("answer, reason", [
    ("refusal", "model refused: I'm sorry, but I can't help with that request."),
    ("max_tokens", "output truncated (finish_reason=length)"),
    ("no_tool", "invalid JSON from model: Expecting value at line 1 column 1"),
])
def test_an_unusable_answer_gets_one_corrective_retry(answer: str, reason: str) -> None:
    with start_fake_anthropic(answer=answer) as fake:
        r = run(fake)
        requests = fake.requests()
    assert isinstance(r.result, EnrichmentError) and not isinstance(r.result, ServiceError)
    assert r.result.reason == reason
    assert len(requests) == 2 and "previous answer" in requests[1]["body"]["messages"][-1]["content"]
    assert len(r.of("anthropic_output_retry")) == 1


def test_a_timed_out_call_is_billed_estimated() -> None:
    with start_fake_anthropic(script=[{"latency": 1.5}]) as fake:
        r = run(fake, api_timeout=0.5)
    assert isinstance(r.result, Enrichment)
    (retry,) = r.of("api_call_retry")
    assert retry["service"] == "anthropic" and retry["tokens_estimated"] is True and retry["prompt_tokens"] > 0
    (done,) = r.of("api_call_complete")
    assert r.budget.spent_usd == pytest.approx(retry["estimated_cost_usd"] + done["estimated_cost_usd"])
