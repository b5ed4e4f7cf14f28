"""The whole pipeline with ENRICHER=openai against the fake OpenAI server (real AsyncOpenAI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_pipeline.models import DEFAULT_CONTENT_TYPES

from .conftest import events, list_items, pending_titles, read_log, run_script
from .fakes.openai_server import start_fake_openai


@pytest.mark.parametrize("parallel", ["false", "true"])
def test_every_example_enriched_with_one_call_each_and_tokens_match(tmp_path: Path, demo_env: dict, parallel: str):
    with start_fake_openai(latency=0.01) as fake:
        env = {**demo_env, "OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": fake.url, "ENABLE_PARALLEL": parallel}
        done = run_script(["pipeline_enhanced.sh"], tmp_path, env)
        stats = fake.stats()
    assert done.returncode == 0, done.stderr + done.stdout
    items = list_items(tmp_path, env)
    assert items and all(i["status"] == "Enriched" for i in items)
    assert all(i["content_type"] in DEFAULT_CONTENT_TYPES for i in items)
    assert stats["calls"] == len(items), "one chat.completions call per item"
    summaries = events(tmp_path / "logs", "pipeline_summary")
    logged = {k: sum(s["metrics"]["tokens"][k] for s in summaries) for k in ("prompt", "completion", "total")}
    assert logged == {
        "prompt": stats["usage"]["prompt_tokens"],
        "completion": stats["usage"]["completion_tokens"],
        "total": stats["usage"]["total_tokens"],
    }
    calls = [e for e in events(tmp_path / "logs", "api_call_complete") if e["service"] == "openai"]
    assert sum(c["total_tokens"] for c in calls) == stats["usage"]["total_tokens"]
    assert all(s["metrics"]["api_calls"]["openai"]["estimated_cost_usd"] > 0 for s in summaries)
    noise = [r for r in read_log(tmp_path / "logs") if r["message"].startswith("HTTP Request")]
    assert not noise, "HTTP client chatter stays out of the structured log"


def test_insufficient_quota_stops_the_run_and_leaves_the_rest_in_inbox(tmp_path: Path, demo_env: dict):
    with start_fake_openai() as fake:
        fake.configure(quota_exhausted=True)
        env = {**demo_env, "OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": fake.url, "PDF_DIR": ""}
        done = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
        calls = fake.stats()["calls"]
    assert done.returncode == 1
    assert "insufficient_quota" in done.stderr
    assert calls == 1, "no further call after quota is gone"
    assert list_items(tmp_path, env) == [], "enrich-first: no page for an item not enriched"
    assert pending_titles(tmp_path / "data" / "journal.db"), "the captured items wait in the journal for the next run"


def test_budget_stops_new_items_with_an_event(tmp_path: Path, demo_env: dict):
    with start_fake_openai() as fake:
        env = {**demo_env, "OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": fake.url, "PDF_DIR": "",
               "MAX_COST_USD": "0.000001"}
        done = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    statuses = [i["status"] for i in list_items(tmp_path, env)]
    left = pending_titles(tmp_path / "data" / "journal.db")
    captured = sum(e["added"] for e in events(tmp_path / "logs", "capture_complete"))
    assert statuses == ["Enriched"] and len(left) == captured - 1 > 0, "the others wait in the journal"
    [exhausted] = events(tmp_path / "logs", "budget_exhausted")
    assert exhausted["limit_usd"] == 0.000001
