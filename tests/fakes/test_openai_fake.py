"""The fake OpenAI server answers like the real API (checked against OpenAI's own schema)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from knowledge_pipeline.enrichers.prompts import json_schema_format, system_prompt
from knowledge_pipeline.models import DEFAULT_CONTENT_TYPES, Taxonomy
from tests.fakes.openai_server import FakeOpenAI, schema_errors, start_fake_openai

SPEC = yaml.safe_load((Path(__file__).parent / "reference" / "openai-chat-completions-schema.yaml").read_text())
ROOT = Path(__file__).resolve().parents[2]
DOC = "Google showed a Market News tool on 2025-01-02. It helps Research teams. Third point. Fourth point."


def component(name: str) -> dict[str, Any]:
    return SPEC["components"]["schemas"][name]


def spec_errors(instance: Any, name: str) -> list[str]:
    return schema_errors(instance, component(name), SPEC)


def post(fake: FakeOpenAI, body: dict[str, Any], key: str | None = None, client: httpx.Client | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key or fake.api_key}"}
    return (client or httpx).post(fake.url + "/chat/completions", json=body, headers=headers, timeout=10)


def chat(response_format: dict[str, Any] | None = None, text: str = DOC, system: str = "Be brief.") -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
    }
    if response_format is not None:
        body["response_format"] = response_format
    return body


SCHEMA_FORMAT = json_schema_format(Taxonomy())
ENRICHMENT_SCHEMA = SCHEMA_FORMAT["json_schema"]["schema"]


# --- success shapes ----------------------------------------------------------------


@pytest.mark.parametrize("answer", ["normal", "refusal", "length", "invalid_json", "off_taxonomy"])
@pytest.mark.parametrize("kind", ["json_schema", "json_object", "text"])
def test_every_answer_is_a_valid_chat_completion(kind: str, answer: str) -> None:
    response_format = {"json_schema": SCHEMA_FORMAT, "json_object": {"type": "json_object"}, "text": None}[kind]
    with start_fake_openai(answer=answer) as fake:
        response = post(fake, chat(response_format))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert spec_errors(body, "CreateChatCompletionResponse") == []
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    choice = body["choices"][0]
    if answer == "refusal":
        assert choice["message"]["content"] is None and choice["message"]["refusal"]
    if answer == "length":
        assert choice["finish_reason"] == "length"


def test_structured_content_satisfies_the_requested_schema_and_is_deterministic() -> None:
    with start_fake_openai() as fake:
        first = post(fake, chat(SCHEMA_FORMAT)).json()
        second = post(fake, chat(SCHEMA_FORMAT)).json()
    content = json.loads(first["choices"][0]["message"]["content"])
    assert schema_errors(content, ENRICHMENT_SCHEMA) == []
    assert content == json.loads(second["choices"][0]["message"]["content"])
    assert content["content_type"] == "Market News"  # the allowed label the text names
    assert content["ai_primitives"] == ["Research"]
    assert content["vendor"] == "Google" and content["published_date"] == "2025-01-02"
    assert content["summary"].startswith("Google showed a Market News tool")


def test_labels_not_named_in_the_text_are_picked_by_hash_within_the_enum() -> None:
    texts = [f"Document number {i} about nothing in particular." for i in range(12)]
    with start_fake_openai() as fake:
        answers = [json.loads(post(fake, chat(SCHEMA_FORMAT, t)).json()["choices"][0]["message"]["content"]) for t in texts]
    assert {a["content_type"] for a in answers} <= set(DEFAULT_CONTENT_TYPES)
    assert len({a["content_type"] for a in answers}) > 1


def test_json_object_mode_follows_the_schema_written_in_the_prompt() -> None:
    system = system_prompt(Taxonomy(), schema_in_prompt=True)
    with start_fake_openai() as fake:
        body = post(fake, chat({"type": "json_object"}, system=system)).json()
    content = json.loads(body["choices"][0]["message"]["content"])
    assert schema_errors(content, ENRICHMENT_SCHEMA) == []


def test_off_taxonomy_answers_bend_every_label() -> None:
    with start_fake_openai(answer="off_taxonomy") as fake:
        content = json.loads(post(fake, chat(SCHEMA_FORMAT)).json()["choices"][0]["message"]["content"])
    assert content["content_type"] == "market new" and content["ai_primitives"] == ["researc"]


def test_plain_requests_get_a_text_summary() -> None:
    with start_fake_openai() as fake:
        body = post(fake, chat()).json()
    assert body["choices"][0]["message"]["content"] == "Summary: Google showed a Market News tool on 2025-01-02. It helps Research teams."


def test_headers_carry_request_id_and_rate_limits() -> None:
    with start_fake_openai() as fake:
        response = post(fake, chat())
    assert response.headers["x-request-id"].startswith("req_")
    for name in ("requests", "tokens"):
        assert int(response.headers[f"x-ratelimit-limit-{name}"]) > 0
        assert int(response.headers[f"x-ratelimit-remaining-{name}"]) >= 0
        assert response.headers[f"x-ratelimit-reset-{name}"].endswith("s")


def test_cached_tokens_are_reported_for_long_prompts_in_128_token_steps() -> None:
    with start_fake_openai(cached_share=0.5) as fake:
        short = post(fake, chat(text="Short.")).json()["usage"]
        long = post(fake, chat(text="word " * 4000)).json()["usage"]
    assert short["prompt_tokens_details"]["cached_tokens"] == 0
    cached = long["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0 and cached % 128 == 0 and cached <= long["prompt_tokens"] // 2


# --- errors --------------------------------------------------------------------------


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert spec_errors(body, "ErrorResponse") == []
    return body["error"]


def test_a_wrong_key_gets_401_invalid_api_key_with_the_key_masked() -> None:
    with start_fake_openai() as fake:
        response = post(fake, chat(), key="sk-wrong-key-abcdefghijklmnop")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert "sk-wrong-key-abcdefghijklmnop" not in error["message"] and "mnop" in error["message"]


def test_rate_limits_send_retry_after_headers() -> None:
    with start_fake_openai(script=[{"status": 429, "retry_after": 2, "retry_after_ms": 1500}, "429"]) as fake:
        first, second = post(fake, chat()), post(fake, chat())
    assert first.status_code == 429 and error_of(first)["code"] == "rate_limit_exceeded"
    assert first.headers["retry-after"] == "2" and first.headers["retry-after-ms"] == "1500"
    assert second.headers["retry-after"] == "0" and "retry-after-ms" not in second.headers


def test_exhausted_quota_is_429_insufficient_quota_without_retry_after() -> None:
    with start_fake_openai(quota_exhausted=True) as fake:
        response = post(fake, chat())
    assert response.status_code == 429 and "retry-after" not in response.headers
    error = error_of(response)
    assert error["code"] == error["type"] == "insufficient_quota"


def test_a_prompt_over_the_context_size_is_context_length_exceeded() -> None:
    with start_fake_openai(context_tokens=50) as fake:
        response = post(fake, chat(text="word " * 400))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert error["message"].startswith("This model's maximum context length is 50 tokens. However, your messages resulted in")


def test_a_server_without_json_schema_rejects_it_but_takes_json_object() -> None:
    with start_fake_openai(reject_json_schema=True) as fake:
        rejected = post(fake, chat(SCHEMA_FORMAT))
        accepted = post(fake, chat({"type": "json_object"}))
    assert rejected.status_code == 400 and error_of(rejected)["param"] == "response_format"
    assert accepted.status_code == 200


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(status: int) -> None:
    with start_fake_openai(script=[{"status": status}]) as fake:
        response = post(fake, chat())
    assert response.status_code == status and error_of(response)["type"] == "server_error"


def test_the_real_sdk_maps_the_fake_errors_to_its_exception_classes() -> None:
    with start_fake_openai(script=["429", "quota", "500"]) as fake:
        client = openai.OpenAI(api_key=fake.api_key, base_url=fake.url, max_retries=0)
        raised = []
        for _ in range(3):
            with pytest.raises(openai.APIStatusError) as info:
                client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
            raised.append(info.value)
        client.close()
    assert [type(e) for e in raised] == [openai.RateLimitError, openai.RateLimitError, openai.InternalServerError]
    assert [e.code for e in raised[:2]] == ["rate_limit_exceeded", "insufficient_quota"]
    assert raised[0].request_id.startswith("req_")


# --- faults, stats and control ---------------------------------------------------------


def test_fault_shares_are_seeded_and_roughly_honoured() -> None:
    with start_fake_openai(error_rate_5xx=0.3, error_rate_429=0.2, retry_after=0, seed=7) as fake, httpx.Client() as client:
        statuses = [post(fake, chat(), client=client).status_code for _ in range(60)]
    assert 8 <= statuses.count(500) <= 30 and 4 <= statuses.count(429) <= 22
    assert statuses.count(200) == 60 - statuses.count(500) - statuses.count(429)


def test_stats_count_calls_usage_windows_and_concurrency() -> None:
    with start_fake_openai(latency=0.4) as fake:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: post(fake, chat()), range(4)))
        post(fake, chat(), key="sk-bad-key-000000000000")
        stats = fake.stats()
    reported = [r.json()["usage"] for r in responses]
    assert stats["calls"] == 5 and stats["ok"] == 4 and stats["by_status"] == {"200": 4, "401": 1}
    assert stats["usage"]["prompt_tokens"] == sum(u["prompt_tokens"] for u in reported)
    assert stats["usage"]["completion_tokens"] == sum(u["completion_tokens"] for u in reported)
    assert stats["usage"]["total_tokens"] == sum(u["total_tokens"] for u in reported)
    assert stats["max_in_10s"] == 5 and stats["max_in_1s"] >= 4
    assert stats["max_concurrency"] == 4
    assert len(stats["timestamps"]) == 5


def test_latency_delays_answers() -> None:
    with start_fake_openai(latency=0.2) as fake:
        started = time.monotonic()
        post(fake, chat())
    assert time.monotonic() - started >= 0.2


def test_control_and_stats_over_http() -> None:
    with start_fake_openai() as fake:
        post(fake, chat())
        assert httpx.get(fake.root_url + "/__stats").json()["calls"] == 1
        options = httpx.post(fake.root_url + "/__control", json={"reset": True, "error_rate_5xx": 1.0}).json()
        assert options["error_rate_5xx"] == 1.0
        assert post(fake, chat()).status_code == 500
        assert httpx.get(fake.root_url + "/__stats").json()["calls"] == 1
        assert httpx.post(fake.root_url + "/__control", json={"no_such_option": 1}).status_code == 400
        assert httpx.get(fake.root_url + "/__requests").json()[0]["status"] == 500


def test_runs_on_its_own_as_a_module() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--context-tokens", "99"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        url = line.split()[3]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        response = httpx.post(
            url + "/chat/completions", json=chat(text="word " * 500),
            headers={"authorization": "Bearer " + line.split("(key ")[1].rstrip(")\n")},
        )
        assert response.json()["error"]["code"] == "context_length_exceeded"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
