"""kill -9 at seeded points of the Batch API path: no batch lost, none submitted twice, every item once.

The pipeline runs as a subprocess (enrich_rss_enhanced.py, OPENAI_BATCH=always)
against the fake OpenAI in this process, which outlives every SIGKILL and is
the ground truth: its batches say what was submitted, its chat log what was
enriched directly. Kill points are counted in requests to the Files and
Batches endpoints the fake has received (so they fall on both sides of "the
server did it, the client has not recorded it yet"), plus up to 20 ms.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from knowledge_pipeline.batches.state import state_path
from knowledge_pipeline.models import BODY_TOGGLES
from tests.batches.support import seed, statuses
from tests.fakes.openai_server import FakeOpenAI, start_fake_openai
from tests.test_crash_safety import base_env, completions_per_item, journal_rows, run_enrich

SEED = 1818


def submissions(fake: FakeOpenAI) -> Counter:
    """How many batches each item's requests went into."""
    return Counter(line["custom_id"].split("|")[0] for batch_id in fake.batches.batches
                   for line in fake.batches.input_lines(batch_id))


def check_after_kill(fake: FakeOpenAI, ids: list[str]) -> None:
    assert fake.stats()["calls"] == 0, "no item went the direct way while batches hold it or could"
    twice = {item: n for item, n in submissions(fake).items() if n > 1}
    assert not twice, f"items submitted twice: {twice}"
    tags = Counter((b["metadata"] or {}).get("kp_batch") for b in fake.batches.batches.values())
    assert max(tags.values(), default=0) <= 1, "one remote batch per local batch"
    assert set(submissions(fake)) <= set(ids)


def open_batches(tmp_path: Path) -> list[tuple[str, str]]:
    path = state_path(tmp_path / "data" / "journal.db")
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute("SELECT local_id, state FROM batches WHERE state != 'finished'").fetchall()


def kill_loop(tmp_path: Path, items: int, kills: int, rng: random.Random) -> None:
    ids = seed(tmp_path / "data" / "sources.db", items)
    with start_fake_openai() as fake:
        env = base_env(tmp_path, ENRICHER="openai", OPENAI_API_KEY=fake.api_key, OPENAI_BASE_URL=fake.url,
                       OPENAI_BATCH="always", OPENAI_CONTEXT_TOKENS="128000")
        killed = runs = 0
        while killed < kills and runs < kills * 3:
            if set(statuses(tmp_path).values()) == {"Enriched"} and not open_batches(tmp_path):
                ids += seed(tmp_path / "data" / "sources.db", items // 2, start=len(ids))  # more work to cut into
            target = len(fake.batches.requests()) + rng.randint(1, 3)
            run = run_enrich(tmp_path, env, kill_when=lambda: len(fake.batches.requests()) >= target,
                             after=rng.uniform(0, 0.02))
            runs += 1
            assert run.killed or run.returncode == 0, run.output
            killed += run.killed
            check_after_kill(fake, ids)
        assert killed >= kills, f"only {killed} of {kills} kills landed in {runs} runs"
        for _ in range(4):
            if set(statuses(tmp_path).values()) == {"Enriched"} and not open_batches(tmp_path):
                break
            final = run_enrich(tmp_path, env)
            assert final.returncode == 0, final.output
        check_after_kill(fake, ids)
        assert Counter(submissions(fake).values()) == Counter({1: len(ids)}), "every item submitted exactly once"
        failed = [b for b in fake.batches.batches.values() if b["status"] == "failed"]
        assert not failed
    assert set(statuses(tmp_path).values()) == {"Enriched"}
    assert open_batches(tmp_path) == []
    assert journal_rows(tmp_path) == [] or all(statuses(tmp_path)[i] == "Enriched" for i, _, _ in journal_rows(tmp_path))
    assert max(completions_per_item(tmp_path).values()) == 1, "no item written twice"
    with sqlite3.connect(tmp_path / "data" / "sources.db") as db:
        layouts = Counter(tuple(dict.fromkeys(t for (t,) in db.execute(
            "SELECT toggle FROM blocks WHERE item_id = ? ORDER BY position", (i,)))) for i in ids)
    assert layouts == Counter({BODY_TOGGLES: len(ids)}), "one whole body per item"


@pytest.mark.parametrize("endpoint", ["files.create", "batches.create", "files.content"])
def test_killed_right_after_the_server_acted_the_next_run_finds_it_instead_of_redoing_it(tmp_path: Path, endpoint: str):
    """The deterministic cuts: the upload done, the batch created, the results downloaded; the client never knew."""
    ids = seed(tmp_path / "data" / "sources.db", 5)
    with start_fake_openai() as fake:
        env = base_env(tmp_path, ENRICHER="openai", OPENAI_API_KEY=fake.api_key, OPENAI_BASE_URL=fake.url,
                       OPENAI_BATCH="always", OPENAI_CONTEXT_TOKENS="128000")
        if endpoint == "files.content":
            assert run_enrich(tmp_path, env).returncode == 0
        fake.configure(batch_latency=2.0)  # the server acts, logs, then holds its answer: the kill lands in between
        cut = run_enrich(tmp_path, env, kill_when=lambda: any(
            r["endpoint"] == endpoint and r["status"] == 200 for r in fake.batches.requests()))
        fake.configure(batch_latency=0.0)
        assert cut.killed, cut.output
        for _ in range(2):
            assert run_enrich(tmp_path, env).returncode == 0
        check_after_kill(fake, ids)
        made = Counter(r["endpoint"] for r in fake.batches.requests() if r["status"] == 200)
    assert made["files.create"] == 1 and made["batches.create"] == 1, made
    assert set(statuses(tmp_path).values()) == {"Enriched"} and open_batches(tmp_path) == []


def test_kill_9_at_seeded_points_loses_no_batch_and_submits_none_twice(tmp_path: Path):
    kill_loop(tmp_path, items=12, kills=4, rng=random.Random(SEED))


@pytest.mark.slow
@pytest.mark.parametrize("seed_value", [SEED + 1, SEED + 2, SEED + 3])
def test_kill_9_many_times_on_a_larger_backlog(tmp_path: Path, seed_value: int):
    kill_loop(tmp_path, items=60, kills=10, rng=random.Random(seed_value))
