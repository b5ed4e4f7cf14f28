"""process_item(): the one place that decides what happens to an item.

Every script reaches it: the original scripts, the enhanced sequential path
and the parallel workers. The modes differ only in how items are scheduled
and how the events are reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from .enrichers.base import Enricher
from .errors import EnrichmentDeferred, ExtractionError, FatalRunError, ItemError, ServiceError
from .extract import TextExtractor
from .journal import Journal
from .capture.links import title_from_link
from .models import Enrichment, Item, Outcome, OutcomeKind, PartialRead, Taxonomy
from .sources.base import SourceStore
from .services import CircuitBreaker
from .telemetry import Telemetry
from .urls import shown_url, strip_userinfo

MAX_REASON_CHARS = 500


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


def _one_line(text: str) -> str:
    line = strip_userinfo(" ".join(str(text).split()))
    return line[: MAX_REASON_CHARS - 1] + "…" if len(line) > MAX_REASON_CHARS else line


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


async def _enrich_and_write(item: Item, deps: Deps, done: _Progress) -> None:
    entry = deps.journal.get(item.id)
    extracted = await deps.extractor.read(item, title=has_stand_in_title(item))
    done.text = extracted.text
    if not done.text.strip():
        raise ExtractionError("empty text after extraction")
    enrichment = entry.enrichment if entry else None
    if enrichment is None:
        enrichment = await deps.enricher.enrich(item, done.text, deps.taxonomy)
        deps.journal.record_enrichment(item.id, enrichment)
    enrichment = _with_extraction(item, enrichment, extracted.title,
                                  _partial_reads(item, deps, extracted.warnings, len(done.text)))
    repair = bool(entry and entry.writing)
    deps.journal.mark_writing(item.id)
    await deps.store.write_enrichment(item, enrichment, done.text, repair=repair)
    done.enrichment = enrichment


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


async def _fail(
    item: Item, deps: Deps, started: float, reason: str, error_type: str, length: int, *, service: str | None = None
) -> Outcome:
    reason = _one_line(reason) or error_type
    stored = True
    try:
        await deps.store.mark_failed(item, reason)
    except FatalRunError:
        raise
    except ServiceError as exc:
        if exc.fatal:
            raise FatalRunError(str(exc)) from exc
        stored = False
        reason = f"{reason} (could not record the failure: {_one_line(str(exc))})"
    except Exception as exc:  # the item stays in the Inbox and is tried again next run
        stored = False
        reason = f"{reason} (could not record the failure: {_one_line(str(exc))})"
    if stored and deps.breaker is not None:
        deps.breaker.note_failed_item(item, service, error_type, reason)
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
    )
    return Outcome(
        item.id, item.title, OutcomeKind.FAILED, duration=duration, content_length=length,
        reason=reason, error_type=error_type,
    )
