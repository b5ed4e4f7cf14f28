"""The journal's pending rows (enrich-first, issue 15): what a new item is before its page exists."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import Enrichment, NewItem, SourceType
from knowledge_pipeline.sources.base import new_item_of

ENRICHMENT = Enrichment("Summary.", "Executive.", "Market News", ("Research",), None, ("One.",))


def new(n: int, source_type: SourceType = SourceType.RSS, **extra) -> NewItem:
    return NewItem(title=f"Item {n} – ünïcode", source_type=source_type, hash=f"hash-{n}",
                   url=f"https://example.com/{n}", created_date=date(2025, 3, n), **extra)


def opened(path: Path) -> Journal:
    journal = Journal(path)
    journal.open()
    return journal


def test_a_pending_item_survives_the_process_and_comes_back_whole(tmp_path: Path):
    journal = opened(tmp_path / "journal.db")
    stand_in = journal.add_pending(new(1, content="Full text of the feed entry.", sender="A <a@b.c>"))
    journal.add_pending(new(2, SourceType.PDF, pdf_path="/srv/pdfs/2.pdf"))
    journal.close()

    again = opened(tmp_path / "journal.db")
    items = list(again.pending_items())
    assert [i.id for i in items] == [stand_in.id, "new:hash-2"] and all(i.pending for i in items)
    assert new_item_of(items[0]) == new(1, content="Full text of the feed entry.", sender="A <a@b.c>")
    assert [i.title for i in again.pending_items(frozenset({SourceType.PDF}))] == ["Item 2 – ünïcode"]
    assert again.pending_hashes() == {"hash-1", "hash-2"} and again.count_pending() == 2
    again.close()


def test_adding_the_same_item_twice_keeps_one_row_and_its_progress(tmp_path: Path):
    journal = opened(tmp_path / "journal.db")
    item = journal.add_pending(new(1))
    journal.record_enrichment(item.id, ENRICHMENT)
    journal.mark_writing(item.id)
    journal.add_pending(new(1))
    entry = journal.get(item.id)
    assert journal.count_pending() == 1 and entry.enrichment == ENRICHMENT and entry.writing


def test_written_forgets_the_row_and_a_failed_page_keeps_the_paid_enrichment(tmp_path: Path):
    journal = opened(tmp_path / "journal.db")
    done, failed, unpaid = (journal.add_pending(new(n)) for n in (1, 2, 3))
    journal.record_enrichment(failed.id, ENRICHMENT)
    journal.mark_writing(failed.id)
    journal.mark_written(done.id)
    journal.settle(failed.id, "page-2")
    journal.settle(unpaid.id, "page-3")
    assert journal.pending_hashes() == set()
    kept = journal.get("page-2")
    assert kept.enrichment == ENRICHMENT and kept.writing, "--retry-failed neither pays again nor skips the repair"
    assert journal.get("page-3") is None and journal.get(failed.id) is None


def test_a_journal_of_an_older_version_gets_the_new_columns_and_keeps_its_rows(tmp_path: Path):
    path = tmp_path / "journal.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE steps (item_id TEXT PRIMARY KEY, enrichment TEXT, writing INTEGER NOT NULL DEFAULT 0,"
               " updated_at TEXT NOT NULL)")
    db.execute("INSERT INTO steps VALUES ('page-1', NULL, 1, '2025-01-01T00:00:00+00:00')")
    db.commit()
    db.close()
    journal = opened(path)
    assert journal.get("page-1").writing and journal.count_pending() == 0
    journal.add_pending(new(1))
    assert journal.pending_hashes() == {"hash-1"}


def test_a_pending_row_that_cannot_be_read_back_is_dropped_so_capture_finds_the_item_again(tmp_path: Path):
    journal = opened(tmp_path / "journal.db")
    journal.add_pending(new(1))
    journal.db.execute("INSERT INTO steps (item_id, writing, updated_at, item, hash) VALUES "
                       "('new:hash-9', 0, '2025-01-01', '{\"layout\": \"of another version\"}', 'hash-9')")
    assert [i.hash for i in journal.pending_items()] == ["hash-1"]
    assert journal.pending_hashes() == {"hash-1"}, "its hash no longer blocks the capture"
