"""Local servers say their context window; prompts are sized to fit it, never cut by the server."""

from __future__ import annotations

import pytest

from knowledge_pipeline.enrichers.analyses import ORIGINAL
from knowledge_pipeline.enrichers.local_servers import is_openai_url, server_root
from knowledge_pipeline.models import Enrichment
from tests.enrichers.test_openai import Doc, long_text, run
from tests.fakes.openai_server import start_fake_openai

LONG = Doc(text=long_text(60_000))


def _largest_prompt(fake) -> int:
    return max(rq["usage"]["prompt_tokens"] for rq in fake.requests() if rq["status"] == 200)


@pytest.mark.parametrize("server, options, context, source", [
    ("ollama", {"ollama_num_ctx": 4096}, 4096, "/api/show parameters num_ctx"),
    ("ollama", {"model_context": 131072}, 4096, "Ollama's default context (no num_ctx; the model takes 131072)"),
    ("ollama", {"model_context": 2048}, 2048, "Ollama's default context (no num_ctx; the model takes 2048)"),
    ("vllm", {"server_context": 8192, "served_model": "gpt-4.1-mini"}, 8192, "/v1/models max_model_len"),
    ("llama.cpp", {"server_context": 3072}, 3072, "/props default_generation_settings.n_ctx"),
])
def test_the_server_says_its_context_and_every_prompt_fits_it(server: str, options: dict, context: int, source: str):
    with start_fake_openai(server=server, **options) as fake:
        r = run(fake, [LONG])
        requests = fake.requests()
        largest = _largest_prompt(fake)
    assert isinstance(r.result, Enrichment), r.result
    (detected,) = r.of("context_window_detected")
    assert (detected["server"], detected["context_tokens"], detected["source"]) == (server, context, source)
    (sized,) = r.of("context_window_sized")
    assert sized["input_tokens"] + sized["answer_reserve_tokens"] <= context
    assert all(rq["status"] == 200 and not rq.get("truncated") for rq in requests), "nothing cut or refused"
    assert largest + sized["answer_reserve_tokens"] <= context
    assert r.result.chunks > 1, "a text larger than the context is map-reduced"
    assert not r.of("openai_context_reduced"), "no wasted call"


def test_without_the_probe_ollama_would_have_cut_the_text_silently():
    """What the probe prevents: the same text and budget, the context given as unknown, the server truncates."""
    with start_fake_openai(server="ollama", ollama_num_ctx=4096) as fake:
        run(fake, [LONG], openai_context_tokens=200_000, max_input_tokens=60_000)
        truncated = [rq for rq in fake.requests() if rq.get("truncated")]
    assert truncated, "the fake Ollama cuts an over-long prompt without an error, like the real one"


def test_the_answer_keeps_its_room_when_analyses_make_it_longer():
    with start_fake_openai(server="llama.cpp", server_context=6000) as fake:
        plain = run(fake, [Doc(text=long_text(8_000))])
    with start_fake_openai(server="llama.cpp", server_context=6000) as fake:
        analysed = run(fake, [Doc(text=long_text(8_000))], analyses=ORIGINAL)
    reserve = lambda r: r.of("context_window_sized")[0]["answer_reserve_tokens"]  # noqa: E731
    assert reserve(analysed) > reserve(plain)
    assert isinstance(analysed.result, Enrichment) and len(analysed.result.analyses) == len(ORIGINAL)


@pytest.mark.parametrize("server, options, context", [
    ("ollama", {"served_model": "gpt-4.1-mini"}, 4096),  # Ollama's default context
    ("llama.cpp", {"server_context": 3072}, 3072),
])
def test_analyses_split_into_more_calls_so_prompt_and_answer_fit_a_small_context(server: str, options: dict, context: int,
                                                                                 caplog: pytest.LogCaptureFixture):
    caplog.set_level("INFO")
    with start_fake_openai(server=server, **options) as fake:
        r = run(fake, [Doc(text=long_text(6_000))], analyses=ORIGINAL)
        requests = fake.requests()
    assert isinstance(r.result, Enrichment), r.result
    (sized,) = r.of("context_window_sized")
    assert _level(caplog, "context_window_sized") == "INFO"
    assert sized["input_tokens"] + sized["answer_reserve_tokens"] <= context
    assert sized["input_tokens"] >= context // 2, "the answer takes at most half the window"
    assert all(rq["usage"]["prompt_tokens"] + sized["answer_reserve_tokens"] <= context for rq in requests)
    assert len(r.result.analyses) == len(ORIGINAL) and not any(a.placeholder for a in r.result.analyses)


def test_a_context_too_small_for_any_prompt_is_a_warning(caplog: pytest.LogCaptureFixture):
    caplog.set_level("INFO")
    with start_fake_openai(server="llama.cpp", server_context=400) as fake:
        r = run(fake, [Doc(text=long_text(3_000))], analyses=ORIGINAL)
    (sized,) = r.of("context_window_sized")
    assert _level(caplog, "context_window_sized") == "WARNING"
    assert sized["input_tokens"] == 250 and sized["context_tokens"] == 400


def _level(caplog: pytest.LogCaptureFixture, event_type: str) -> str:
    (record,) = [r for r in caplog.records if getattr(r, "extra_fields", {}).get("event_type") == event_type]
    return record.levelname


@pytest.mark.parametrize("server", ["vllm", "llama.cpp"])
def test_a_server_started_with_an_api_key_is_asked_with_it(server: str):
    with start_fake_openai(server=server, server_context=8192, local_api_key=True) as fake:
        r = run(fake, [Doc()])
        probes = fake.probes()
    assert not r.of("context_window_unknown")
    (detected,) = r.of("context_window_detected")
    assert detected["server"] == server and detected["context_tokens"] == 8192
    assert all(p["status"] != 401 for p in probes)


def test_openai_context_tokens_overrides_and_nothing_is_asked():
    with start_fake_openai(server="ollama", ollama_num_ctx=32768) as fake:
        r = run(fake, [LONG], openai_context_tokens=4096)
        probes = fake.probes()
        largest = _largest_prompt(fake)
    assert probes == []
    (sized,) = r.of("context_window_sized")
    assert sized["context_tokens"] == 4096 and sized["source"] == "OPENAI_CONTEXT_TOKENS"
    assert largest + sized["answer_reserve_tokens"] <= 4096


def test_a_server_that_says_nothing_is_logged_once_and_the_budget_stays():
    with start_fake_openai() as fake:
        r = run(fake, [Doc(id="a"), Doc(id="b")])
        probes = fake.probes()
    (unknown,) = r.of("context_window_unknown")
    assert unknown["model"] == "gpt-4.1-mini" and not r.of("context_window_sized")
    assert [(p["method"], p["path"], p["status"]) for p in probes] == [
        ("POST", "/api/show", 404), ("GET", "/v1/models", 200), ("GET", "/props", 404)]
    assert {e["operation"] for e in r.of("api_call_complete") if e["service"] == "local_llm"} == {
        "context_probe.ollama", "context_probe.vllm", "context_probe.llama.cpp"}


def test_openai_itself_is_never_asked():
    assert is_openai_url(None) and is_openai_url("https://api.openai.com/v1")
    assert not is_openai_url("http://localhost:11434/v1")
    assert server_root("http://localhost:11434/v1/") == "http://localhost:11434"


def test_parallel_workers_wait_for_the_context_before_their_first_prompt():
    docs = [Doc(id=f"item-{n}", text=long_text(30_000)) for n in range(4)]
    with start_fake_openai(server="ollama", ollama_num_ctx=4096, latency=0.05) as fake:
        r = run(fake, docs, parallel=True)
        truncated = [rq for rq in fake.requests() if rq.get("truncated")]
        asked = [p for p in fake.probes() if p["path"] == "/api/show"]
    assert all(isinstance(x, Enrichment) for x in r.results), r.results
    assert not truncated and len(asked) == 1
