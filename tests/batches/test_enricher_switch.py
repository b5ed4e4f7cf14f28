"""ENRICHER changed while OpenAI batches are open: their items wait for them, never enriched twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.batches.support import env, run, seed, statuses
from tests.fakes.openai_server import start_fake_openai


@pytest.mark.parametrize("mode", ["inbox-first", "enrich-first"])
def test_items_in_an_open_batch_wait_for_it_when_the_enricher_changes(tmp_path: Path, mode: str) -> None:
    ids = seed(tmp_path / "data" / "sources.db", 4)
    with start_fake_openai() as fake:
        openai = env(tmp_path, fake, OPENAI_BATCH="always", CAPTURE_MODE=mode)
        run(openai)
        held_ids = set(ids)
        more = seed(tmp_path / "data" / "sources.db", 2, start=10)
        local = {**openai, "ENRICHER": "local"}
        switched = run(local)
        after_switch = statuses(tmp_path)
        collected = run(openai)
    (held,) = switched.of("batch_items_held")
    assert held["items_held"] == 4 and held["enricher"] == "local"
    assert {i: after_switch[i] for i in held_ids} == {i: "Inbox" for i in held_ids}, "left for the batch"
    assert {after_switch[i] for i in more} == {"Enriched"}, "the rest is enriched by the new enricher"
    assert collected.result.exit_code == 0 and set(statuses(tmp_path).values()) == {"Enriched"}
