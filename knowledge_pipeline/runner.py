"""One run of an enrich script, whatever its mode: capture, schedule, summarise.

The original and the enhanced scripts, sequential or parallel, all call
:func:`run`; they differ only in the options they pass and in how the
events are shown (logging setup, progress bar).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .budget import Budget
from .capture import CaptureReport, report_complete
from .capture.known import KnownHashes
from .capture.registry import SourceKind, kinds_of, source_types_of
from .config import Settings
from .engine import EngineResult, ParallelEnricher
from .enrichers import make_enricher
from .errors import FatalRunError, PipelineError, StoreError
from .extract import TextExtractor
from .journal import Journal, RunLock
from .models import Item, NewItem, SourceType
from .processing import Deps
from .services import ServiceGateway
from .sources import open_store
from .telemetry import Observer, RunMetrics, Telemetry

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130

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
    retried: int = 0
    engine: EngineResult | None = None
    error: str | None = None


def run(settings: Settings, options: RunOptions, telemetry: Telemetry) -> RunResult:
    """Run synchronously (the scripts' entry); see :func:`run_async`."""
    return asyncio.run(run_async(settings, options, telemetry))


async def run_async(settings: Settings, options: RunOptions, telemetry: Telemetry) -> RunResult:
    if options.dry_run:
        return await _dry_run(settings, options, telemetry)
    locks = [RunLock(path) for path in run_lock_paths(settings)]
    held: list[RunLock] = []
    try:
        for lock in locks:
            lock.acquire()
            held.append(lock)
        return await _locked_run(settings, options, telemetry)
    finally:
        for lock in reversed(held):
            lock.release()


def run_lock_paths(settings: Settings) -> tuple[Path, Path]:
    """The journal's lock, and one per Sources store shared by every run on this machine.

    The second catches two runs on the same store started from different
    directories (so with different relative JOURNAL_PATHs).
    """
    journal_lock = settings.journal_path.with_name(settings.journal_path.name + ".lock")
    if settings.sources_backend == "notion":
        identity = f"notion:{settings.notion_base_url}:{settings.notion_sources_db}"
    else:
        identity = f"sqlite:{settings.sources_db_path.resolve()}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return journal_lock, Path(tempfile.gettempdir()) / f"knowledge-pipeline-{digest}.lock"


async def _locked_run(settings: Settings, options: RunOptions, telemetry: Telemetry) -> RunResult:
    run_id = uuid.uuid4().hex[:12]
    telemetry.bind(run_id=run_id)
    metrics = RunMetrics()
    telemetry.add_observer(metrics)
    for observer in options.observers:
        telemetry.add_observer(observer)
    budget = Budget(settings.max_cost_usd)
    gateway = ServiceGateway.from_settings(settings, telemetry)
    stop = asyncio.Event()
    result = RunResult(exit_code=EXIT_OK)
    store = open_store(settings, gateway)
    journal = Journal(settings.journal_path)
    extractor = TextExtractor(settings, gateway)
    enricher = make_enricher(settings, gateway, budget)
    progress: Observer | None = None
    _install_signal_handlers(stop, telemetry)
    try:
        await store.open()
        journal.open()
        taxonomy = await store.taxonomy()
        result.captures = await _capture(settings, options, store, extractor, gateway, telemetry, stop=stop)
        if options.retry_failed:
            result.retried = await store.retry_failed(options.retry_reason, options.source_types)
            telemetry.event(
                "retry_failed",
                f"Put {result.retried} failed items back in the Inbox",
                count=result.retried,
                reason_filter=options.retry_reason,
            )
        total = await store.count_inbox(options.source_types)
        telemetry.event(
            "run_start",
            f"{options.script}: {total} items to enrich ({options.mode}, {settings.sources_backend} store, "
            f"{settings.enricher} enricher)",
            script=options.script,
            mode=options.mode,
            total_items=total,
            config={
                "workers": settings.parallel_max_workers if options.parallel else 1,
                "rate_limit": settings.parallel_rate_limit,
                "backend": settings.sources_backend,
                "enricher": settings.enricher,
                "retry_attempts": settings.retry_attempts,
                "api_timeout": settings.api_timeout,
            },
        )
        if options.progress_factory is not None:
            progress = options.progress_factory(total)
            if progress is not None:
                telemetry.add_observer(progress)
        deps = Deps(store, enricher, extractor, journal, telemetry, taxonomy)
        engine = ParallelEnricher(
            deps,
            max_workers=settings.parallel_max_workers,
            rate_limit=settings.parallel_rate_limit,
            metrics=metrics,
            budget=budget,
            stop=stop,
            grace_seconds=settings.shutdown_grace_seconds,
        )
        result.engine = await engine.run(store.inbox(options.source_types), total, mode=options.mode)
        result.exit_code = _exit_code(result.engine, metrics, settings)
        result.error = result.engine.fatal_error
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
        _remove_signal_handlers()
        if progress is not None:
            close = getattr(progress, "close", None)
            if close:
                close()
        result.metrics = metrics.summary()
        await _close_all(store, journal, extractor, enricher)
        await _finish(settings, options, telemetry, result)
    return result




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
        reports.append(await add_url(options.add_url, store, telemetry, known_hashes=known, title=options.add_title))
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
    """What would be captured and enriched; writes nothing (no lock, no journal, no log)."""
    gateway = ServiceGateway.from_settings(settings, telemetry)
    store = open_store(settings, gateway)
    extractor = TextExtractor(settings, gateway)
    result = RunResult(exit_code=EXIT_OK)
    try:
        await store.open()
        result.captures = await _capture(settings, options, store, extractor, gateway, telemetry, dry_run=True)
        result.would_add = [item for report in result.captures for item in report.would_add]
        async for item in store.inbox(options.source_types):
            result.would_enrich.append(item)
            if len(result.would_enrich) >= 1000:
                break
    except PipelineError as exc:
        result.exit_code, result.error = EXIT_FAILED, str(exc)
    finally:
        await _close_all(store, extractor)
    return result


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _install_signal_handlers(stop: asyncio.Event, telemetry: Telemetry) -> None:
    loop = asyncio.get_running_loop()

    def request_stop(signum: int) -> None:
        if stop.is_set():
            return
        telemetry.event(
            "shutdown_requested",
            f"{signal.Signals(signum).name} received: finishing items in flight, starting no new one",
            level=logging.WARNING,
            signal=signal.Signals(signum).name,
        )
        stop.set()

    for signum in _SIGNALS:
        try:
            loop.add_signal_handler(signum, request_stop, signum)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass


def _remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for signum in _SIGNALS:
        try:
            loop.remove_signal_handler(signum)
        except (NotImplementedError, RuntimeError):
            pass
