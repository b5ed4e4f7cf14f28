"""Collecting a batch holds one item at a time, not the batch: its input lines and its output file stay on disk."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import httpx

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.journal import Journal
from tests.batches.support import collect_batches, env, submit_backlog
from tests.fakes.openai_server import start_fake_openai


def finish_remotely(fake) -> None:
    """Let the fake run its batches now (a retrieve does), so collecting measures only the client."""
    for batch_id in list(fake.batches.batches):
        httpx.get(f"{fake.url}/batches/{batch_id}", headers={"authorization": f"Bearer {fake.api_key}"},
                  timeout=600).raise_for_status()


def test_collecting_a_batch_of_long_texts_holds_a_small_part_of_it_in_memory(tmp_path: Path) -> None:
    items, chars = 500, 20_000
    with start_fake_openai() as fake:
        settings = load_settings(env(tmp_path, fake, OPENAI_BATCH="always"), env_file=None)
        size = submit_backlog(settings, items, chars)
        finish_remotely(fake)
        output = sum(len(data) for file_id, data in fake.batches.contents.items()
                     if fake.batches.files[file_id]["purpose"] == "batch_output")
        tracemalloc.start()
        try:
            events = collect_batches(settings)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    (collected,) = [data for kind, data in events if kind == "batch_collected"]
    assert collected["items_enriched"] == items and collected["items_retry"] == 0
    journal = Journal(settings.journal_path)
    journal.open()
    assert journal.pending() == items, "every answer is in the journal"
    journal.close()
    assert size > items * chars and output > 0
    assert not list(settings.journal_path.parent.glob("*.jsonl")), "the downloaded output file is removed"
    assert peak < size / 5, f"peak {peak / 1e6:.1f} MB while collecting {size / 1e6:.1f} MB of requests " \
                            f"and {output / 1e6:.1f} MB of answers"
