"""process_item(): the one place that decides what happens to an item.

Every script reaches it: the original scripts, the enhanced sequential path
and the parallel workers. The modes differ only in how items are scheduled
and how the events are reported.

An item is either in the store (an Inbox page) or *pending* (enrich-first
mode: captured, held in the journal, no page yet). Both are extracted, checked
for duplicates (``duplicates.py``) and enriched the same way; then an Inbox
item's enrichment is written onto its page (``write_enrichment``), while a
pending item's page is created complete in one write (``add_enriched``), or
Failed with its reason when it failed. A duplicate costs no LLM call: a pending
one gets no page, an Inbox one is marked Duplicate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, TypeVar

from .capture.links import title_from_link
from .duplicates import Check, Duplicates, describe
from .enrichers.base import Enricher
from .errors import EnrichmentDeferred, ExtractionError, FatalRunError, ItemError, ServiceError, one_line
from .extract import Extracted, TextExtractor
from .journal import Journal
from .models import Enrichment, Item, Outcome, OutcomeKind, PartialRead, Status, Taxonomy
from .sources.base import SourceStore, new_item_of
from .services import CircuitBreaker
from .telemetry import Telemetry
from .urls import shown_url, strip_userinfo

MAX_REASON_CHARS = 500
T = TypeVar("T")


@dataclass
class Deps:
    store: SourceStore
    enricher: Enricher
    extractor: TextExtractor
    journal: Journal
    telemetry: Telemetry
    taxonomy: Taxonomy
    clock: Callable[[], float] = field(default=time.monotonic)
    item_timeout: float | None = None
    breaker: CircuitBreaker | None = None
    duplicates: Duplicates | None = None


def _one_line(text: str) -> str:
    return one_line(strip_userinfo(str(text)), MAX_REASON_CHARS)


async def process_item(item: Item, deps: Deps) -> Outcome:
    """Extract, enrich, write, within ``deps.item_timeout``; a failure marks only this item Failed.

    Raises FatalRunError (nothing further can succeed) and CancelledError
    (shutdown); everything else becomes this item's outcome. An item cut at
    its deadline is Failed; a store write cut there stays marked ``writing``
    in the journal and is repaired when the item is tried again, as after a
    crash.
    """
    started = deps.clock()
    telemetry = deps.telemetry
    telemetry.event("item_start", f"Processing: {item.title}", level=logging.DEBUG, item_id=item.id, title=item.title)
    if item.archived:
        telemetry.event("item_skipped", f"Skipped (archived): {item.title}", item_id=item.id, title=item.title, reason="archived")
        return Outcome(item.id, item.title, OutcomeKind.SKIPPED, reason="archived")
    done = _Progress()
    deadline = asyncio.timeout(deps.item_timeout)
    try:
        async with deadline:
            await _enrich_and_write(item, deps, done)
    except FatalRunError:
        raise
    except EnrichmentDeferred as deferred:
        telemetry.event("item_deferred", f"In batch {deferred.batch}: {item.title}", item_id=item.id,
                        title=item.title, batch=deferred.batch)
        return Outcome(item.id, item.title, OutcomeKind.DEFERRED, content_length=len(done.text))
    except ServiceError as exc:
        if exc.fatal:
            raise FatalRunError(str(exc)) from exc
        return await _fail(item, deps, started, exc.reason, exc.error_type if not exc.code else exc.code,
                           len(done.text), service=exc.service)
    except ItemError as exc:
        return await _fail(item, deps, started, exc.reason, exc.error_type, len(done.text))
    except Exception as exc:  # one bad item never stops the others
        if isinstance(exc, TimeoutError) and deadline.expired():
            reason = f"item took longer than ITEM_TIMEOUT={deps.item_timeout:g}s"
            return await _fail(item, deps, started, reason, "item_timeout", len(done.text))
        return await _fail(item, deps, started, f"{type(exc).__name__}: {exc}", type(exc).__name__, len(done.text))
    if done.check is not None and done.check.match is not None:
        return await _duplicate(item, deps, started, done.check, len(done.text))
    text, enrichment = done.text, done.enrichment
    assert enrichment is not None  # set by _enrich_and_write's last step
    journal_error = _forget(item, deps)
    duration = round(deps.clock() - started, 4)
    telemetry.event(
        "item_complete",
        f"Enriched: {item.title} ({enrichment.content_type}) in {duration:.2f}s"
        + (f"; its journal row stays: {journal_error}" if journal_error else ""),
        level=logging.WARNING if journal_error else logging.INFO,
        item_id=item.id,
        title=item.title,
        duration=duration,
        content_length=len(text),
        content_type=enrichment.content_type,
        ai_primitives=list(enrichment.ai_primitives),
        vendor=enrichment.vendor,
        chunks=enrichment.chunks,
        **({"page_id": done.page_id} if done.page_id else {}),
        **({"journal_error": journal_error} if journal_error else {}),
    )
    return Outcome(
        item.id,
        item.title,
        OutcomeKind.ENRICHED,
        duration=duration,
        content_length=len(text),
        content_type=enrichment.content_type,
        vendor=enrichment.vendor,
        chunks=enrichment.chunks,
    )


@dataclass
class _Progress:
    text: str = ""
    enrichment: Enrichment | None = None
    check: Check | None = None
    page_id: str | None = None


async def _enrich_and_write(item: Item, deps: Deps, done: _Progress) -> None:
    entry = deps.journal.get(item.id)
    extracted = await deps.extractor.read(item, title=has_stand_in_title(item))
    done.text = extracted.text
    if not done.text.strip():
        raise ExtractionError("empty text after extraction")
    if deps.duplicates is None:
        await _enrich_and_store(item, deps, done, entry, extracted)
        return
    # a write had started (a crash, a write that failed): that item was found new, it is not a copy now
    look = not (entry and entry.writing)
    async with deps.duplicates.claim(item, done.text, extracted.canonical_url, look=look) as check:
        done.check = check
        if check.match is None:
            await _enrich_and_store(item, deps, done, entry, extracted)
            _remember(item, deps, check, done)


async def _enrich_and_store(item: Item, deps: Deps, done: _Progress, entry, extracted: Extracted) -> None:
    enrichment = entry.enrichment if entry else None
    if enrichment is None:
        enrichment = await deps.enricher.enrich(item, done.text, deps.taxonomy)
        deps.journal.record_enrichment(item.id, enrichment)
    enrichment = _with_extraction(item, enrichment, extracted.title,
                                  _partial_reads(item, deps, extracted.warnings, len(done.text)))
    if item.pending:
        done.page_id = (await _create(item, deps, bool(entry and entry.writing), enrichment, done.text)).id
    else:
        repair = bool(entry and entry.writing)
        deps.journal.mark_writing(item.id)
        await deps.store.write_enrichment(item, enrichment, done.text, repair=repair)
    done.enrichment = enrichment


async def _create(item: Item, deps: Deps, started: bool, enrichment: Enrichment, text: str) -> Item:
    """A pending item's page, complete; after a crash mid-create (``started``) the page is looked up first."""
    if started:
        found = await deps.store.find_by_hash(item.hash or "")
        if found is not None:
            if found.status is not Status.ENRICHED:  # created Failed, or with its body cut off
                await deps.store.write_enrichment(found, enrichment, text, repair=True)
            return found
    deps.journal.mark_writing(item.id)
    return await deps.store.add_enriched(new_item_of(item), enrichment, text)


def _remember(item: Item, deps: Deps, check: Check, done: _Progress) -> None:
    """Keep the written item's fingerprint; a dedup state that cannot take it does not fail the item."""
    assert deps.duplicates is not None and done.enrichment is not None
    try:
        deps.duplicates.remember(check, done.enrichment.title or item.title, item.url or item.pdf_path)
    except Exception as exc:  # noqa: BLE001 - sqlite3 or OS errors of the dedup state file
        deps.telemetry.event("dedup_error", f"Could not remember {item.title} for duplicate checks: {exc}",
                             level=logging.WARNING, item_id=item.id, error=_one_line(str(exc)))


async def _duplicate(item: Item, deps: Deps, started: float, check: Check, length: int) -> Outcome:
    """No LLM call, no new page: a pending duplicate is forgotten (its hash kept), an Inbox one marked."""
    match = check.match
    assert match is not None and deps.duplicates is not None
    what = describe(match)

    async def record() -> None:
        if item.pending:
            deps.duplicates.alias(check, item.hash)  # type: ignore[union-attr]
        else:
            await deps.store.mark_duplicate(item, f"Duplicate of {what}")
        deps.journal.mark_written(item.id)

    _, trouble = await _recorded(record())  # unrecorded: the next run finds the duplicate again, at no LLM cost
    recorded = trouble is None
    duration = round(deps.clock() - started, 4)
    deps.telemetry.event(
        "item_duplicate",
        f"Duplicate, not enriched: {item.title} = {what}",
        item_id=item.id,
        title=item.title,
        duplicate_of={"key": match.key, "title": match.title, "location": match.location},
        how=match.how,
        recorded=recorded,
        duration=duration,
    )
    return Outcome(item.id, item.title, OutcomeKind.DUPLICATE, duration=duration, content_length=length,
                   reason=f"duplicate of {what}")


def has_stand_in_title(item: Item) -> bool:
    """Whether the title only stands in for one (the URL, ``host/path``): extraction may find the real one."""
    title = " ".join(item.title.split())
    links = [link.strip() for link in (item.url, item.pdf_path) if link]
    return not title or any(title in (link, link[:300], shown_url(link, 300), title_from_link(link)) for link in links)


def _partial_reads(item: Item, deps: Deps, found: tuple[PartialRead, ...], length: int) -> list[PartialRead]:
    """What extraction only partly read, plus what the store will cut; each one an ``item_warning`` event."""
    reads = list(found)
    cap = getattr(deps.store, "max_raw_chars", None)
    if cap is not None and length > cap:
        reads.append(PartialRead("characters", cap, length, "NOTION_MAX_RAW_CHARS", verb="kept in the Raw toggle"))
    for read in reads:
        deps.telemetry.event(
            "item_warning", f"Partly read: {item.title}: {read}", level=logging.WARNING, item_id=item.id,
            title=item.title, warning=str(read), unit=read.unit, kept=read.kept, total=read.total, cause=read.cause,
        )
    return reads


def _with_extraction(item: Item, enrichment: Enrichment, title: str | None, reads: list[PartialRead]) -> Enrichment:
    """The enrichment with what extraction adds: the document's title for a stand-in one, the warnings."""
    better = title if title and has_stand_in_title(item) else None
    return dataclasses.replace(enrichment, title=better, warnings=tuple(str(read) for read in reads))


def _forget(item: Item, deps: Deps) -> str | None:
    """Drop the item's journal row once the store has everything; the error text if that failed.

    The store has the whole enrichment at this point, so a journal that cannot
    record it (disk full) must not turn the item Failed. The row left behind
    is inert, as after a kill between the store's reply and this step.
    """
    try:
        deps.journal.mark_written(item.id)
    except Exception as exc:  # noqa: BLE001 - sqlite3 or OS errors of the journal file
        return _one_line(f"{type(exc).__name__}: {exc}")
    return None


async def _recorded(write: Awaitable[T]) -> tuple[T | None, str | None]:
    """A store write recording an item's outcome: (its result, None), or (None, the one-line error).

    Fatal errors (bad credentials) still stop the run.
    """
    try:
        return await write, None
    except FatalRunError:
        raise
    except ServiceError as exc:
        if exc.fatal:
            raise FatalRunError(str(exc)) from exc
        return None, _one_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - sqlite3, OS or library errors of the store
        return None, _one_line(str(exc))


async def _record_failure(item: Item, deps: Deps, reason: str) -> Item:
    """Mark the item Failed; a pending one gets its page, created Failed (or found, after a cut-off create)."""
    if not item.pending:
        await deps.store.mark_failed(item, reason)
        return item
    entry = deps.journal.get(item.id)
    found = await deps.store.find_by_hash(item.hash or "") if entry and entry.writing else None
    if found is not None:
        await deps.store.mark_failed(found, reason)
        page = found
    else:
        deps.journal.mark_writing(item.id)
        page = await deps.store.add_failed(new_item_of(item), reason)
    deps.journal.settle(item.id, page.id)
    return page


async def _fail(
    item: Item, deps: Deps, started: float, reason: str, error_type: str, length: int, *, service: str | None = None
) -> Outcome:
    reason = _one_line(reason) or error_type
    failed_page, trouble = await _recorded(_record_failure(item, deps, reason))
    page = failed_page or item
    stored = trouble is None  # not stored: the item stays in the Inbox (or pending) for the next run
    if trouble is not None:
        reason = f"{reason} (could not record the failure: {trouble})"
    if stored and deps.breaker is not None:
        deps.breaker.note_failed_item(page, service, error_type, reason)
    duration = round(deps.clock() - started, 4)
    deps.telemetry.event(
        "item_error",
        f"Failed: {item.title}: {reason}",
        level=logging.ERROR,
        item_id=item.id,
        title=item.title,
        error=reason,
        error_type=error_type,
        duration=duration,
        recorded=stored,
        **({"page_id": page.id} if page.id != item.id else {}),
    )
    return Outcome(
        item.id, item.title, OutcomeKind.FAILED, duration=duration, content_length=length,
        reason=reason, error_type=error_type,
    )
