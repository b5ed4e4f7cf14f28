"""process_item(): the one decision point for an item, with the journal's exactly-once steps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from knowledge_pipeline.errors import ExtractionError, FatalRunError, ServiceError
from knowledge_pipeline.journal import Journal
from knowledge_pipeline.models import Enrichment, Item, OutcomeKind, SourceType, Taxonomy
from knowledge_pipeline.processing import Deps, process_item
from knowledge_pipeline.telemetry import Telemetry
from knowledge_pipeline.extract import Extracted

TEXT = "Anthropic released a model. It writes code well. Analysts like it a lot. Prices fell by 20% this year."
RESULT = Enrichment("s", "e", "Market News", ("Coding",), "Anthropic", ("a", "b", "c"))


class Store:
    def __init__(self, fail_write: Exception | None = None, fail_mark: Exception | None = None) -> None:
        self.writes: list[tuple[str, bool]] = []
        self.failed: dict[str, str] = {}
        self.fail_write, self.fail_mark = fail_write, fail_mark

    async def write_enrichment(self, item, enrichment, text, *, repair=False):
        self.writes.append((item.id, repair))
        if self.fail_write:
            error, self.fail_write = self.fail_write, None
            raise error

    async def mark_failed(self, item, reason):
        if self.fail_mark:
            raise self.fail_mark
        self.failed[item.id] = reason


class Enricher:
    def __init__(self) -> None:
        self.calls = 0

    async def enrich(self, item, text, taxonomy):
        self.calls += 1
        return RESULT


class Extractor:
    def __init__(self, text: str = TEXT, error: Exception | None = None) -> None:
        self.text, self.error = text, error

    async def read(self, item, *, title=False):
        if self.error:
            raise self.error
        return Extracted(self.text)


def deps(tmp_path: Path, store=None, extractor=None, enricher=None) -> Deps:
    journal = Journal(tmp_path / "journal.db")
    journal.open()
    return Deps(store or Store(), enricher or Enricher(), extractor or Extractor(), journal, Telemetry("t"), Taxonomy())


ITEM = Item(id="p1", title="A page", source_type=SourceType.WEBSITE, url="https://example.com/a")


def test_archived_items_are_skipped_untouched(tmp_path: Path):
    d = deps(tmp_path)
    outcome = asyncio.run(process_item(Item(id="x", title="t", source_type=SourceType.RSS, archived=True), d))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.SKIPPED, "archived")
    assert d.store.writes == []


def test_empty_text_fails_the_item_with_that_reason(tmp_path: Path):
    d = deps(tmp_path, extractor=Extractor(text="  \n "))
    outcome = asyncio.run(process_item(ITEM, d))
    assert outcome.kind is OutcomeKind.FAILED
    assert d.store.failed == {"p1": "empty text after extraction"}


def test_a_write_cut_off_is_repaired_and_the_enrichment_not_paid_twice(tmp_path: Path):
    store, enricher = Store(fail_write=ConnectionResetError("cut")), Enricher()
    d = deps(tmp_path, store=store, enricher=enricher)
    first = asyncio.run(process_item(ITEM, d))
    assert first.kind is OutcomeKind.FAILED
    second = asyncio.run(process_item(ITEM, d))
    assert second.kind is OutcomeKind.ENRICHED
    assert store.writes == [("p1", False), ("p1", True)], "the second write repairs the first"
    assert enricher.calls == 1, "the journal kept the paid-for enrichment"
    assert d.journal.get("p1") is None, "a finished item leaves no journal entry"


def test_fatal_errors_stop_the_run_even_while_recording_a_failure(tmp_path: Path):
    d = deps(tmp_path, extractor=Extractor(error=ExtractionError("no text")),
             store=Store(fail_mark=ServiceError("notion", "unauthorized: API token is invalid.", fatal=True)))
    with pytest.raises(FatalRunError, match="unauthorized"):
        asyncio.run(process_item(ITEM, d))


def test_a_failure_that_cannot_be_recorded_leaves_the_item_for_the_next_run(tmp_path: Path):
    d = deps(tmp_path, extractor=Extractor(error=ExtractionError("no text")),
             store=Store(fail_mark=ServiceError("notion", "503 service_unavailable", retryable=True)))
    outcome = asyncio.run(process_item(ITEM, d))
    assert outcome.kind is OutcomeKind.FAILED and "could not record the failure" in outcome.reason


def test_unexpected_exceptions_fail_only_the_item(tmp_path: Path):
    d = deps(tmp_path, extractor=Extractor(error=ZeroDivisionError("division by zero")))
    outcome = asyncio.run(process_item(ITEM, d))
    assert outcome.kind is OutcomeKind.FAILED
    assert d.store.failed["p1"] == "ZeroDivisionError: division by zero"
