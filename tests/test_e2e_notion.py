"""The whole pipeline against the fake Notion and the fake OpenAI at once (issues: Notion backend, reliability).

``pipeline_enhanced.sh`` on the example feeds and PDFs, with SOURCES_BACKEND=notion
on the original Sources schema and ENRICHER=openai, the default NOTION_MAX_RPS=3
and the fake enforcing Notion's own average of 3 requests/s: every item ends
Enriched with its properties and one set of body toggles, no 10 s window holds
more than 30 requests (up to a few ms of arrival jitter), and nothing was left
rate limited.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_pipeline.models import DEFAULT_AI_PRIMITIVES, DEFAULT_CONTENT_TYPES
from knowledge_pipeline.sources.base import BODY_TOGGLES

from .conftest import EXAMPLE_PDFS, events, run_script
from .fakes.notion_server import FakeNotion, start_fake_notion
from .fakes.openai_server import start_fake_openai

NOTION_RPS = 3.0
# The fake timestamps arrivals: starts booked on the limiter's 1/3 s grid arrive a few ms early or late,
# so a window of exactly 10 s can catch a 31st request sitting on its edge (measured: 31 in 9.98 s).
ARRIVAL_JITTER = 0.05


def busiest(times: list[float], window: float) -> int:
    """The most requests that arrived within any ``window`` seconds."""
    ordered, low, best = sorted(times), 0, 0
    for high, t in enumerate(ordered):
        while t - ordered[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def plain(block: dict) -> str:
    return "".join(part["plain_text"] for part in block[block["type"]]["rich_text"])


def check_workspace(notion: FakeNotion) -> list[dict]:
    """Every Sources row Enriched, with the enrichment's properties and exactly one set of toggles."""
    pages = notion.pages()
    rows = []
    for page in pages:
        values = notion.values(page["id"])
        assert values["Status"] == "Enriched", values
        assert values["Summary"].strip() and values["Hash"]
        assert values["Content-Type"] in DEFAULT_CONTENT_TYPES
        assert values["AI-Primitive"] and set(values["AI-Primitive"]) <= set(DEFAULT_AI_PRIMITIVES)
        assert values["Source Type"] in ("RSS", "PDF")
        assert values["Article URL" if values["Source Type"] == "RSS" else "Drive URL"]
        toggles = [b for b in notion.blocks_of(page["id"]) if b["type"] == "toggle"]
        assert [plain(b) for b in toggles] == list(BODY_TOGGLES), values["Title"]
        assert all(b["children"] for b in toggles), f"{values['Title']}: no empty toggle"
        rows.append(values)
    return rows


@pytest.mark.parametrize(("parallel", "mode"), [
    ("false", "enrich-first"),
    ("false", "inbox-first"),
    pytest.param("true", "enrich-first", marks=pytest.mark.slow),
])
def test_pipeline_on_the_examples_against_fake_notion_and_fake_openai(tmp_path: Path, demo_env: dict, parallel: str,
                                                                       mode: str):
    with start_fake_notion(database="original", rps=NOTION_RPS) as notion, start_fake_openai(latency=0.01) as openai:
        env = {
            **demo_env,
            **notion.env(),
            **openai.env(),
            "ENABLE_PARALLEL": parallel,
            "CAPTURE_MODE": mode,
        }
        done = run_script(["pipeline_enhanced.sh"], tmp_path, env, timeout=180)
        stats = notion.stats()
        rows = check_workspace(notion)
        calls = openai.stats()
    assert done.returncode == 0, done.stdout + done.stderr
    expected = sum(1 for _ in EXAMPLE_PDFS.glob("*.pdf"))
    assert len(rows) >= 15 and sum(r["Source Type"] == "PDF" for r in rows) == expected
    assert len({r["Hash"] for r in rows}) == len(rows), "no item captured twice"
    assert any(r["Vendor"] for r in rows), "vendors found in the texts are set"
    assert calls["ok"] == len(rows), "one OpenAI call per item"

    most = busiest(stats["timestamps"], 10.0 - ARRIVAL_JITTER)
    assert most <= 10 * NOTION_RPS, f"{most} requests within 10 s (less {ARRIVAL_JITTER} s of arrival jitter)"
    assert stats["rate_limited"] == 0, "the pipeline kept under Notion's average: no 429 at all"
    writes = stats["by_endpoint"]
    creates, appends, updates = (writes.get(e, 0) for e in ("pages.create", "blocks.children.append", "pages.update"))
    if mode == "enrich-first":
        assert (creates, appends, updates) == (len(rows), 0, 0), "one pages.create per item, complete"
    else:
        assert (creates, appends + updates) == (len(rows), 2 * len(rows)), "create, then one append and one update"

    summaries = events(tmp_path / "logs", "pipeline_summary")
    assert [s["exit_code"] for s in summaries] == [0, 0]
    assert sum(s["metrics"]["items_processed"] for s in summaries) == len(rows)
    assert sum(s["metrics"]["items_failed"] for s in summaries) == 0
    assert not events(tmp_path / "logs", "item_error")


def test_a_second_run_against_the_same_workspace_adds_and_writes_nothing(tmp_path: Path, demo_env: dict):
    with start_fake_notion(database="original", rps=None) as notion:
        env = {**demo_env, **notion.env(), "NOTION_MAX_RPS": "100", "ENRICHER": "local", "PDF_DIR": ""}
        first = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
        assert first.returncode == 0, first.stderr
        before = json.dumps([notion.values(p["id"]) for p in notion.pages()], sort_keys=True)
        notion.reset_stats()
        second = run_script(["enrich_rss_enhanced.py"], tmp_path, env)
        writes = {k: v for k, v in notion.stats()["by_endpoint"].items()
                  if k in ("pages.create", "pages.update", "blocks.children.append", "blocks.delete")}
        after = json.dumps([notion.values(p["id"]) for p in notion.pages()], sort_keys=True)
        check_workspace(notion)
    assert second.returncode == 0, second.stderr
    assert writes == {} and before == after
