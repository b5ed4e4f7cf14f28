"""One run of an enrich script, whatever its mode: capture, schedule, summarise.

The original and the enhanced scripts, sequential or parallel, all call
:func:`run`; they differ only in the options they pass and in how the
events are shown (logging setup, progress bar).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Collection, TypeVar

from .budget import Budget
from .capture import CaptureReport, report_complete
from .capture.handover import CaptureStore
from .capture.known import KnownHashes
from .capture.registry import SourceKind, kinds_of, source_types_of
from .config import Settings
from .dedup import FingerprintIndex
from .duplicates import Duplicates
from .engine import EngineResult, ParallelEnricher, Producer, Put, close_stream
from .enrichers import make_enricher
from .errors import FatalRunError, ItemError, ItemNotFound, LockHeldError, PipelineError, ServiceError, StoreError
from .extract import TextExtractor
from .journal import Journal, RunLock, pending_read_only
from .models import Item, NewItem, SourceType, Status
from .processing import Deps
from .run_locks import notion_lock_path, run_lock_paths
from .services import ServiceGateway
from .shutdown import Shutdown, finish_or_cancel, run_bounded
from .sources import open_store
from .telemetry import Observer, RunMetrics, Telemetry
from .text_cache import TextCache

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130

T = TypeVar("T")
DRY_RUN_LISTED = 1000
FEED_TYPES = source_types_of("feeds")
PDF_TYPES = source_types_of("pdfs")


@dataclass
class RunOptions:
    script: str
    source_types: frozenset[SourceType]
    capture: str  # "feeds", "pdfs" or "none"
    parallel: bool = False
    dry_run: bool = False
    retry_failed: bool = False
    retry_reason: str | None = None
    add_url: str | None = None
    add_title: str | None = None
    observers: list[Observer] = field(default_factory=list)
    progress_factory: Callable[[int], Observer | None] | None = None
    extractor_factory: Callable[[Settings, ServiceGateway], TextExtractor] | None = None

    @property
    def mode(self) -> str:
        return "parallel" if self.parallel else "sequential"


@dataclass
class RunResult:
    exit_code: int
    metrics: dict[str, Any] = field(default_factory=dict)
    captures: list[CaptureReport] = field(default_factory=list)
    would_enrich: list[Item] = field(default_factory=list)
    would_add: list[NewItem] = field(default_factory=list)
    would_retry: list[Item] = field(default_factory=list)
    retried: int = 0
    engine: EngineResult | None = None
    error: str | None = None


def run(settings: Settings, options: RunOptions, telemetry: Telemetry) -> RunResult:
    """Run synchronously (the scripts' entry); see :func:`run_async`. Its clean-up cannot hang (shutdown.py)."""
    return run_bounded(run_async(settings, options, telemetry))


async def run_async(settings: Settings, options: RunOptions, telemetry: Telemetry) -> RunResult:
    if options.dry_run:
        return await _dry_run(settings, options, telemetry)
    held: list[RunLock] = []
    try:
        for path in run_lock_paths(settings):
            _take(held, path)
        return await _locked_run(settings, options, telemetry, held)
    finally:
        for lock in reversed(held):
            lock.release()


def _take(held: list[RunLock], path: Path) -> None:
    """Acquire one more run lock (see run_locks.py); LockHeldError when another run has it."""
    if any(lock.path == path for lock in held):
        return
    lock = RunLock(path)
    lock.acquire()
    held.append(lock)


async def _locked_run(
    settings: Settings, options: RunOptions, telemetry: Telemetry, held: list[RunLock]
) -> RunResult:
    run_id = uuid.uuid4().hex[:12]
    telemetry.bind(run_id=run_id)
    metrics = RunMetrics()
    telemetry.add_observer(metrics)
    for observer in options.observers:
        telemetry.add_observer(observer)
    budget = Budget(settings.max_cost_usd)
    gateway = ServiceGateway.from_settings(settings, telemetry)
    shutdown = Shutdown(telemetry)
    result = RunResult(exit_code=EXIT_OK)
    store = open_store(settings, gateway)
    journal = Journal(settings.journal_path)
    extractor = (options.extractor_factory or TextExtractor)(settings, gateway)
    enricher = make_enricher(settings, gateway, budget)
    batching: Any = None  # a batches.BatchRun when the run deals with OpenAI batches
    progress: Observer | None = None
    shutdown.install()
    locked_out = False

    async def until_stopped(work: Awaitable[T]) -> T:
        """Capture and --retry-failed: done, or cut short SHUTDOWN_GRACE_SECONDS after a signal."""
        if shutdown.stop.is_set():
            work.close()  # type: ignore[attr-defined]
            raise asyncio.CancelledError
        return await finish_or_cancel(work, shutdown.stop, settings.shutdown_grace_seconds)

    dedup = FingerprintIndex(settings.dedup_path, window_days=settings.dedup_window_days)
    cache: TextCache | None = None
    try:
        await store.open()
        if settings.sources_backend == "notion":
            _take(held, notion_lock_path(settings, store.data_source_id))
        journal.open()
        dedup.open()
        cache = _open_cache(settings, telemetry)
        extractor.cache = cache
        if cache is not None and hasattr(store, "text_kept"):  # Notion: no read-back of what the cache holds
            store.text_kept = getattr(extractor, "holds", None)
        taxonomy = await store.taxonomy()
        await _forget_finished_writes(journal, store)
        capture_store = CaptureStore(store, extractor, dedup, journal if settings.enrich_first else None)
        deps = Deps(store, enricher, extractor, journal, telemetry, taxonomy, item_timeout=settings.item_timeout,
                    breaker=gateway.breaker, duplicates=Duplicates(dedup, capture_store.store_hashes))
        if settings.enrich_first:
            await _retry_failed(options, store, telemetry, result, until_stopped)
            total = journal.count_pending(options.source_types) + await store.count_inbox(options.source_types)
        else:
            result.captures = await until_stopped(_capture(settings, options, capture_store, extractor, gateway,
                                                           telemetry, stop=shutdown.stop))
            await _retry_failed(options, store, telemetry, result, until_stopped)
            total = await store.count_inbox(options.source_types)
        held: Collection[str] = _held_for_openai(settings, options, telemetry)
        total -= len(held)
        if _batch_path_in_use(settings):  # OpenAI's Batch API (docs/openai.md): collect, hold, defer, submit
            from .batches import BatchRun

            batching = BatchRun(settings, gateway, budget, journal, enricher)  # type: ignore[arg-type]
            await batching.begin(taxonomy, total, options.source_types)
            telemetry.add_observer(batching.observe)
            held = batching.held
            total -= batching.held_here
            deps = dataclasses.replace(deps, enricher=batching.enricher(), extractor=batching.extractor(extractor))
        engine = ParallelEnricher(
            deps,
            max_workers=settings.parallel_max_workers,
            rate_limit=settings.parallel_rate_limit,
            metrics=metrics,
            budget=budget,
            stop=shutdown.stop,
            grace_seconds=settings.shutdown_grace_seconds,
        )
        if settings.enrich_first:
            items: Any = _enrich_first(settings, options, store, journal, capture_store, extractor, gateway,
                                       telemetry, engine, result, held)
        else:
            items = store.inbox(options.source_types)
            if held:
                items = _leaving_out(items, held)
        _run_start(settings, options, telemetry, total)
        if options.progress_factory is not None:
            progress = options.progress_factory(total)
            if progress is not None:
                telemetry.add_observer(progress)
        result.engine = await engine.run(items, total, mode=options.mode)
        if batching is not None:
            await batching.finish(submit=not (result.engine.interrupted or result.engine.fatal_error))
        result.exit_code = _exit_code(result.engine, metrics, settings)
        result.error = result.engine.fatal_error
    except LockHeldError:
        locked_out = True
        raise
    except asyncio.CancelledError:  # a second signal, or work cut short after the grace period
        result.exit_code, result.error = EXIT_INTERRUPTED, "interrupted"
        _uncancel()
    except FatalRunError as exc:
        result.exit_code, result.error = EXIT_FAILED, str(exc)
        telemetry.event("run_aborted", f"Run stopped: {exc}", level=logging.ERROR, error=str(exc))
    except (StoreError, PipelineError) as exc:
        result.exit_code, result.error = EXIT_FAILED, str(exc)
        telemetry.event("run_aborted", f"Run stopped: {exc}", level=logging.ERROR, error=str(exc))
    except Exception as exc:  # a bug or an unforeseen library error: reported, summarised, exit 1
        result.exit_code, result.error = EXIT_FAILED, f"{type(exc).__name__}: {exc}"
        telemetry.logger.error(
            "Run stopped by an unexpected error: %s", result.error, exc_info=True,
            extra={"extra_fields": {"event_type": "run_aborted", **telemetry.context, "error": result.error,
                                    "error_type": type(exc).__name__}},
        )
    finally:
        if progress is not None:
            close = getattr(progress, "close", None)
            if close:
                close()
        if shutdown.interrupted and not locked_out:
            result.exit_code = EXIT_INTERRUPTED
        result.metrics = metrics.summary()
        try:
            await _close_all(store, journal, extractor, enricher, dedup, *([cache] if cache else []),
                             *([batching] if batching else []))
            if not locked_out:
                await _finish(settings, options, telemetry, result)
        except asyncio.CancelledError:  # a second signal while closing: what is written stays written
            _uncancel()
        finally:
            shutdown.remove()
    return result


INTERRUPTED_WRITES_CHECKED = 50


async def _forget_finished_writes(journal: Journal, store: Any) -> None:
    """Drop journal rows of writes that landed before a kill cut off their confirmation.

    Such an item is Enriched and never comes back through the Inbox, so its row would stay for good.
    One store read per row, once (a kill leaves at most a worker's worth); an unanswered read keeps the row.
    """
    for item_id in journal.interrupted_writes(INTERRUPTED_WRITES_CHECKED):
        try:
            item = await store.get(item_id)
        except ItemNotFound:  # the page is gone: nothing is left to repair
            journal.mark_written(item_id)
            continue
        except ServiceError:
            continue
        except ItemError:  # there, but not as the pipeline knows it (another Status, moved): keep what was paid
            journal.looked_at(item_id)
            continue
        except PipelineError:
            continue
        if item.status in (Status.ENRICHED, Status.DUPLICATE):
            journal.mark_written(item_id)
        else:
            journal.looked_at(item_id)


async def _retry_failed(options: RunOptions, store: Any, telemetry: Telemetry, result: RunResult,
                        until_stopped: Callable[[Awaitable[int]], Awaitable[int]]) -> None:
    if not options.retry_failed:
        return
    result.retried = await until_stopped(store.retry_failed(options.retry_reason, options.source_types))
    telemetry.event(
        "retry_failed",
        f"Put {result.retried} failed items back in the Inbox",
        count=result.retried,
        reason_filter=options.retry_reason,
    )


def _run_start(settings: Settings, options: RunOptions, telemetry: Telemetry, total: int) -> None:
    known = (f"{total} items waiting, plus what capture finds" if settings.enrich_first
             else f"{total} items to enrich")
    telemetry.event(
        "run_start",
        f"{options.script}: {known} ({options.mode}, {settings.sources_backend} store, "
        f"{settings.enricher} enricher, {settings.capture_mode})",
        script=options.script,
        mode=options.mode,
        total_items=total,
        capture_mode=settings.capture_mode,
        config={
            "workers": settings.parallel_max_workers if options.parallel else 1,
            "rate_limit": settings.parallel_rate_limit,
            "backend": settings.sources_backend,
            "enricher": settings.enricher,
            "retry_attempts": settings.retry_attempts,
            "api_timeout": settings.api_timeout,
            "capture_mode": settings.capture_mode,
        },
    )


def _enrich_first(
    settings: Settings,
    options: RunOptions,
    store: Any,
    journal: Journal,
    capture_store: CaptureStore,
    extractor: TextExtractor,
    gateway: ServiceGateway,
    telemetry: Telemetry,
    engine: ParallelEnricher,
    result: RunResult,
    held: Collection[str],
) -> Producer:
    """The engine's producer in enrich-first mode: what a killed run left pending, capture, then the Inbox.

    Capture hands each new item over as it finds it (the queue is bounded: capture waits
    while the workers are busy), so enrichment starts with the first one. The Inbox comes
    last (pages created elsewhere, ``--retry-failed``), without the pages this run created.
    Items an open Batch API batch holds (``held``) are left out, pending or not: an item is never
    both in a batch and enriched directly.
    """
    created: set[str] = set()

    def note_page(event_type: str, data: dict[str, Any]) -> None:
        if event_type in ("item_complete", "item_error") and data.get("page_id"):
            created.add(str(data["page_id"]))

    async def produce(put: Put) -> None:
        telemetry.add_observer(note_page)
        try:
            for item in journal.pending_items(options.source_types):
                if item.id not in held and not await put(item):
                    return
            capture_store.hand_over(put, engine.count_more)
            result.captures = await _capture(settings, options, capture_store, extractor, gateway, telemetry,
                                             stop=engine.stop)
            inbox = store.inbox(options.source_types)
            try:
                async for item in inbox:
                    if item.id not in created and item.id not in held and not await put(item):
                        return
            finally:
                await close_stream(inbox)
        finally:
            telemetry.remove_observer(note_page)

    return produce


def _held_for_openai(settings: Settings, options: RunOptions, telemetry: Telemetry) -> set[str]:
    """Items in OpenAI batches of earlier runs, when this run's enricher cannot collect them (ENRICHER changed).

    They are left out, so that no item is both in a paid batch and enriched directly; a run with
    ENRICHER=openai collects them.
    """
    if settings.enricher == "openai":
        return set()
    from .batches import BatchState, state_path

    path = state_path(settings.journal_path)
    if not path.exists():
        return set()
    state = BatchState(path).open()
    try:
        held = state.held({t.value for t in options.source_types} if options.source_types else None)
    finally:
        state.close()
    if held:
        telemetry.event("batch_items_held", f"{len(held)} items wait in OpenAI batches that ENRICHER="
                        f"{settings.enricher} cannot collect; a run with ENRICHER=openai collects them",
                        level=logging.WARNING, items_held=len(held), enricher=settings.enricher)
    return held


async def _leaving_out(items: AsyncIterator[Item], held: Collection[str]) -> AsyncIterator[Item]:
    """The Inbox stream without the items an open batch holds."""
    try:
        async for item in items:
            if item.id not in held:
                yield item
    finally:
        await close_stream(items)


def _batch_path_in_use(settings: Settings) -> bool:
    if settings.enricher != "openai":  # the batches package (and its SDK) only for OpenAI runs
        return False
    from .batches import batch_path_in_use

    return batch_path_in_use(settings)


def _open_cache(settings: Settings, telemetry: Telemetry) -> TextCache | None:
    """The text cache, or None (CACHE_MAX_MB=0, or a file that cannot be opened: the run goes on without)."""
    if settings.cache_max_mb <= 0:
        return None
    cache = TextCache(settings.cache_path, max_bytes=int(settings.cache_max_mb * 1024 * 1024))
    try:
        cache.open()
    except StoreError as exc:
        telemetry.event("run_state_unavailable", f"{exc}; texts are fetched again instead of kept",
                        level=logging.WARNING, path=str(settings.cache_path), error=str(exc))
        return None
    return cache


def _uncancel() -> None:
    """The run's own task caught its cancellation: the clean-up after it must not be cancelled again."""
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()




async def _capture(
    settings: Settings,
    options: RunOptions,
    store: Any,
    extractor: TextExtractor,
    gateway: ServiceGateway,
    telemetry: Telemetry,
    *,
    dry_run: bool = False,
    stop: asyncio.Event | None = None,
) -> list[CaptureReport]:
    """Run the capture of every configured source kind of the script (capture/registry.py)."""
    kinds = kinds_of(options.capture) if options.capture in ("feeds", "pdfs") else ()
    active = [kind for kind in kinds if kind.configured(settings)]
    for kind in kinds:
        if kind not in active:
            telemetry.event(
                "capture_skipped",
                f"{kind.settings[0]} is not set: no {kind.label} capture",
                level=logging.DEBUG,
                source=kind.name,
            )
    reports: list[CaptureReport] = []
    if not (active or options.add_url):
        return reports
    # known_hashes() is a full paginated query on Notion: read only when a capture needs it
    # (feed capture asks only when a feed has entries to check: a run of 304s asks nothing)
    known = KnownHashes(store)
    if options.add_url:
        from .capture.manual import add_url

        await known.load()
        reports.append(await add_url(options.add_url, store, telemetry, known_hashes=known, title=options.add_title,
                                     dry_run=dry_run))
    resources = {"fetcher": extractor.fetcher, "gateway": gateway, "stop": stop}
    for kind in active:
        if not kind.lazy_hashes:
            await known.load()
        reports += await _capture_kind(kind, settings, store, telemetry, known, dry_run, resources)
    return reports


async def _capture_kind(
    kind: SourceKind,
    settings: Settings,
    store: Any,
    telemetry: Telemetry,
    known: set[str],
    dry_run: bool,
    resources: dict[str, Any],
) -> list[CaptureReport]:
    """One kind's capture; a failure of the source (not of the store) is reported and the run goes on."""
    capture = kind.capture_function()
    try:
        result = await capture(
            settings=settings, store=store, telemetry=telemetry, known_hashes=known, dry_run=dry_run,
            **{need: resources[need] for need in kind.needs},
        )
    except (StoreError, FatalRunError):
        raise
    except PipelineError as exc:
        reason = f"{kind.label}: {exc}"
        telemetry.event("capture_error", f"{reason}; the other sources go on", level=logging.ERROR,
                        source=kind.name, kind=kind.name, error=str(exc))
        report = CaptureReport(source=kind.name, errors=[reason])
        report_complete(telemetry, report, kind.name, f"{kind.label}: not captured ({exc})", source_failed=True)
        return [report]
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _exit_code(engine: EngineResult, metrics: RunMetrics, settings: Settings) -> int:
    if engine.interrupted:
        return EXIT_INTERRUPTED
    if engine.fatal_error:
        return EXIT_FAILED
    attempted = metrics.succeeded + metrics.failed
    if attempted and metrics.failed / attempted > settings.alert_failure_rate:
        return EXIT_FAILED
    if metrics.all_sources_failed:
        return EXIT_FAILED
    return EXIT_OK


async def _finish(settings: Settings, options: RunOptions, telemetry: Telemetry, result: RunResult) -> None:
    """pipeline_summary, metrics textfile and alert: for every run, also a failed one."""
    telemetry.event(
        "pipeline_summary",
        f"{options.script} finished: {result.metrics['items_processed']} enriched, "
        f"{result.metrics['items_failed']} failed, {result.metrics['items_skipped']} skipped "
        f"in {result.metrics['duration_seconds']:.1f}s",
        script=options.script,
        mode=options.mode,
        exit_code=result.exit_code,
        metrics=result.metrics,
    )
    if settings.metrics_textfile is not None:
        from .metrics_export import write_textfile

        try:
            write_textfile(
                settings.metrics_textfile,
                metrics=result.metrics,
                script=options.script,
                mode=options.mode,
                success=result.exit_code == EXIT_OK,
                finished_at=time.time(),
            )
        except OSError as exc:
            telemetry.event(
                "metrics_export_failed",
                f"Cannot write METRICS_TEXTFILE {settings.metrics_textfile}: {exc.strerror}",
                level=logging.WARNING,
                error=str(exc),
            )
    from .alerts import send_alert, should_alert

    reason = should_alert(result.metrics, exit_code=result.exit_code, threshold=settings.alert_failure_rate)
    if reason is not None:
        await send_alert(
            telemetry,
            reason=reason,
            script=options.script,
            metrics=result.metrics,
            webhook_url=settings.alert_webhook_url,
        )


async def _close_all(*resources: Any) -> None:
    for resource in resources:
        try:
            closed = resource.close()
            if asyncio.iscoroutine(closed):
                await closed
        except Exception:  # noqa: BLE001 - closing must not hide the run's own result
            pass


async def _dry_run(settings: Settings, options: RunOptions, telemetry: Telemetry) -> RunResult:
    """What would be captured, put back and enriched; writes nothing (no lock, no journal, no log).

    The store is opened read-only: a SQLite file is neither created nor
    changed, and any write would raise instead of happening.
    """
    gateway = ServiceGateway.from_settings(settings, telemetry)
    store = open_store(settings, gateway, read_only=True)
    extractor = (options.extractor_factory or TextExtractor)(settings, gateway)
    result = RunResult(exit_code=EXIT_OK)
    try:
        await store.open()
        pending = pending_read_only(settings.journal_path, options.source_types, DRY_RUN_LISTED)
        known = _AlsoKnown(store, {item.hash for item in pending if item.hash})
        result.captures = await _capture(settings, options, known, extractor, gateway, telemetry, dry_run=True)
        result.would_add = [item for report in result.captures for item in report.would_add]
        if options.retry_failed:
            result.would_retry = await _failed_matching(store, options)
        result.would_enrich = pending  # enrich-first: what a stopped run left, resumed first
        async for item in store.inbox(options.source_types):
            result.would_enrich.append(item)
            if len(result.would_enrich) >= DRY_RUN_LISTED:
                break
    except PipelineError as exc:
        result.exit_code, result.error = EXIT_FAILED, str(exc)
    finally:
        await _close_all(store, extractor)
    return result


class _AlsoKnown:
    """The store, its known hashes plus ``hashes`` (a dry run: the journal's pending items are known)."""

    def __init__(self, store: Any, hashes: set[str]) -> None:
        self.store, self.hashes = store, hashes

    async def known_hashes(self) -> set[str]:
        return await self.store.known_hashes() | self.hashes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def _failed_matching(store: Any, options: RunOptions) -> list[Item]:
    """The Failed items --retry-failed [REASON] would put back (as the stores select them)."""
    wanted = options.retry_reason.lower() if options.retry_reason else None
    matching = []
    async for item in store.list_items(Status.FAILED):
        if item.source_type in options.source_types and (wanted is None or wanted in (item.error or "").lower()):
            matching.append(item)
            if len(matching) >= DRY_RUN_LISTED:
                break
    return matching
