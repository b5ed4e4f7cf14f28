"""One run's part in the Batch API: finish what earlier runs left, collect, hold, defer, submit.

At the start of a run (:meth:`BatchRun.begin`):

1. a batch a killed run was still collecting is discarded (nothing was sent);
   one it was uploading or creating is finished, after looking for the file
   (by name) and the batch (by ``metadata.kp_batch``) it may already have made,
   so none is submitted twice;
2. every submitted batch is polled; a finished one (``completed``,
   ``expired``, ``cancelled`` or ``failed``) is collected: each answered item's
   enrichment goes into the journal, to be written by the normal write path
   (``process_item`` finds it there and does not enrich again); a long
   document's map summaries wait for their reduce step; an item whose line
   failed, expired or is missing is enriched directly instead;
3. the mode is chosen: ``OPENAI_BATCH=always``, or ``auto`` with at least
   ``BATCH_MIN_ITEMS`` items to enrich on a server that has the Batch API.

During the run, items a batch holds are left out of the Inbox stream, so no
item is ever both in a batch and enriched directly. In batch mode the
enricher puts each item's requests into a batch (split at the API's limits)
and the item stays in the Inbox; :meth:`BatchRun.finish` uploads and creates
the batches at the end. Tokens of collected batches are priced at batch
rates and charged to the run that collects them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Collection

from ..budget import Budget
from ..config import Settings
from ..errors import EnrichmentDeferred, FatalRunError, ServiceError
from ..enrichers.accounting import Meter
from ..enrichers.core import BadAnswer, LLMEnricher
from ..enrichers.openai import JSON_SCHEMA, OpenAITransport, prompt_of, reply_of_body
from ..enrichers.transport import STEP_ANALYSES, STEP_REDUCE, Usage
from ..extract import Extracted, TextExtractor
from ..journal import Journal
from ..models import AnalysisResult, Enrichment, Item, PartialRead, SourceType, Taxonomy
from ..services import ServiceGateway
from ..sqlite_files import now_stamp
from ..telemetry import Telemetry
from .api import ENDPOINT, MAX_BYTES, MAX_REQUESTS, TERMINAL, BatchApi
from .state import (
    COLLECTING,
    NEXT,
    READY,
    RETRY,
    SUBMITTED,
    UPLOADED,
    UPLOADING,
    BatchRecord,
    BatchState,
    state_path,
)

_SEPARATOR = "|"


def batch_path_in_use(settings: Settings) -> bool:
    """Whether this run deals with batches: it may submit some, or an earlier run left some."""
    if settings.enricher != "openai":
        return False
    return settings.openai_batch != "never" or state_path(settings.journal_path).exists()


class BatchRun:
    def __init__(
        self,
        settings: Settings,
        gateway: ServiceGateway,
        budget: Budget,
        journal: Journal,
        enricher: LLMEnricher,
        *,
        max_requests: int = MAX_REQUESTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.settings = settings
        self.telemetry: Telemetry = gateway.telemetry
        self.state = BatchState(state_path(settings.journal_path))
        self.api = BatchApi(settings, gateway)
        self.core = enricher
        self.transport: OpenAITransport = enricher.transport  # type: ignore[assignment]
        self.meter = Meter("openai", budget, self.telemetry, overrides=settings.openai_prices, tier="batch")
        self.budget = budget
        self.journal = journal
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.batching = False
        self.held: set[str] = set()
        self.held_here = 0
        self._current: str | None = None
        self._reader: StoredText | None = None

    # --- start of the run ---------------------------------------------------------------------

    async def begin(self, taxonomy: Taxonomy, inbox: int, source_types: Collection[SourceType] = ()) -> None:
        """Finish, poll and collect earlier batches, then choose this run's way (``inbox``: its Inbox count)."""
        self.state.open()  # an OpenAI run always has one: cheap, and the batches command reads it
        self.state.forget_stale()
        for batch in self.state.batches(COLLECTING):
            items = self.state.discard(batch.local_id)
            self.telemetry.event("batch_discarded", f"batch {batch.local_id} of a stopped run was never sent; "
                        f"its {items} items are free again", level=logging.WARNING, local_id=batch.local_id, items=items,
                        reason="never_sent")
        for batch in self.state.batches(UPLOADING, UPLOADED):
            await self._send(batch, recovering=True)
        for batch in self.state.batches(SUBMITTED):
            await self._poll(batch, taxonomy)
        self.held = self.state.held()
        self.held_here = len(self.state.held({SourceType(t).value for t in source_types}))
        await self._choose(inbox - self.held_here)

    async def _choose(self, pending: int) -> None:
        mode = self.settings.openai_batch
        if mode == "always":
            self.batching, reason = True, "OPENAI_BATCH=always"
        elif mode == "never":
            self.batching, reason = False, "OPENAI_BATCH=never"
        elif pending < self.settings.batch_min_items:
            self.batching, reason = False, f"{pending} items to enrich, fewer than BATCH_MIN_ITEMS={self.settings.batch_min_items}"
        elif not await self.api.supported():
            self.batching, reason = False, "the server has no Batch API"
        else:
            self.batching, reason = True, f"{pending} items to enrich, at least BATCH_MIN_ITEMS={self.settings.batch_min_items}"
        self.telemetry.event("batch_mode", f"openai: {'Batch API' if self.batching else 'direct calls'} ({reason}); "
                    f"{self.held_here} items wait in open batches",
                    batching=self.batching, reason=reason, items_held=self.held_here, items_pending=pending)

    # --- what the engine sees ----------------------------------------------------------------------

    def extractor(self, inner: TextExtractor) -> StoredText:
        self._reader = StoredText(inner, self.state, keep=self.batching)
        return self._reader

    def enricher(self) -> BatchPathEnricher:
        return BatchPathEnricher(self)

    def observe(self, event_type: str, data: dict[str, Any]) -> None:
        """An item written (by any path) no longer needs its batch row; a finished item its extraction."""
        item_id = data.get("item_id")
        if not item_id or event_type not in ("item_complete", "item_error", "item_deferred"):
            return
        if event_type == "item_complete":
            self.state.forget(str(item_id))
        if self._reader is not None:
            self._reader.recent.pop(str(item_id), None)

    # --- putting items into batches ---------------------------------------------------------------

    def defer(self, item: Item, text: str, taxonomy: Taxonomy) -> None:
        """Add the item's next step to a batch; raise EnrichmentDeferred."""
        record = self.state.item(item.id)
        parts = record.parts if record is not None and record.status == NEXT else None
        step = self.core.plan(item, text, taxonomy, parts)
        lines, usage = [], Usage()
        for index, prompt in enumerate(step.prompts):
            custom_id = _SEPARATOR.join((item.id, prompt.step, str(index)))
            body = self.transport.request(prompt, JSON_SCHEMA if prompt.schema is not None else None)
            line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
            lines.append((custom_id, json.dumps(line, ensure_ascii=False, separators=(",", ":"))))
            usage = Usage(prompt=usage.prompt + prompt.estimated_tokens(),
                          completion=usage.completion + (400 if prompt.schema is None else prompt.max_output_tokens // 8))
        local_id = self._room_for(lines)
        chunks = step.chunks if parts is None else record.chunks  # type: ignore[union-attr]
        found = self._reader.recent.pop(item.id, None) if self._reader is not None else None
        self.state.add_item(local_id, item.id, lines, text, phase="map" if step.kind == "map" else "final",
                            parts=parts, chunks=chunks, source_type=item.source_type.value, extra=None if found is None else {
                                "title": found.title, "warnings": [dataclasses.asdict(w) for w in found.warnings]})
        self.budget.reserve(self.meter.cost(self.transport.model, usage))
        raise EnrichmentDeferred(local_id)

    def _room_for(self, lines: list[tuple[str, str]]) -> str:
        """The collecting batch these lines fit in (a new one at the API's limits of requests and bytes)."""
        size = sum(len(body.encode("utf-8")) + 1 for _, body in lines)
        current = self.state.batch(self._current) if self._current else None
        if current is None or (current.requests and (
                current.requests + len(lines) > self.max_requests or current.bytes + size > self.max_bytes)):
            self._current = self.state.new_batch(self.transport.model)
        return self._current

    # --- end of the run ---------------------------------------------------------------------------

    async def finish(self, *, submit: bool) -> None:
        """Upload and create the batches this run collected (not after an interrupted run: they are dropped next time)."""
        if not submit:
            return
        for batch in self.state.batches(COLLECTING):
            self.state.update(batch.local_id, state=UPLOADING)
            await self._send(self.state.batch(batch.local_id), recovering=False)  # type: ignore[arg-type]

    async def close(self) -> None:
        await self.api.close()
        self.state.close()

    # --- upload and create (also after a crash) -----------------------------------------------------

    async def _send(self, batch: BatchRecord, *, recovering: bool) -> None:
        try:
            if batch.state == UPLOADING:
                file = await self.api.find_file(batch.filename) if recovering else None
                if file is None:
                    file = await self._upload(batch)
                self.state.update(batch.local_id, state=UPLOADED, input_file_id=file.id)
            remote = await self.api.find_batch(batch.local_id, _epoch(batch.created_at)) if recovering else None
            if remote is None:
                remote = await self.api.create(self.state.batch(batch.local_id).input_file_id, batch.local_id)  # type: ignore[union-attr]
        except FatalRunError:
            raise
        except ServiceError as exc:
            if recovering and exc.status_code == 404:  # this server has no such API: nothing to finish here
                items = self.state.discard(batch.local_id)
                self._lost(batch, exc, items, "its items are free again")
                return
            if exc.fatal:
                raise FatalRunError(str(exc)) from exc
            if exc.retryable:  # it may have happened: the next run looks for it before trying again
                self.telemetry.event("batch_submit_pending", f"batch {batch.local_id}: {exc}; the next run finishes it",
                            level=logging.WARNING, local_id=batch.local_id, error=str(exc))
                return
            items = self.state.discard(batch.local_id)
            self.telemetry.event("batch_submit_failed", f"batch {batch.local_id} refused: {exc}; its {items} items "
                        "will be enriched directly", level=logging.ERROR, local_id=batch.local_id, error=str(exc),
                        items=items)
            return
        record = self.state.batch(batch.local_id)
        self.state.update(batch.local_id, state=SUBMITTED, remote_id=remote.id, remote_status=remote.status,
                          submitted_at=now_stamp())
        self.telemetry.event(
            "batch_submitted",
            f"batch {remote.id} ({batch.local_id}): {record.items} items, {record.requests} requests"  # type: ignore[union-attr]
            + (" (recovered after a stopped run)" if recovering else ""),
            local_id=batch.local_id, batch_id=remote.id, items=record.items, requests=record.requests,  # type: ignore[union-attr]
            bytes=record.bytes, recovered=recovering,  # type: ignore[union-attr]
        )

    async def _upload(self, batch: BatchRecord) -> Any:
        directory = self.state.path.parent
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=directory, prefix=batch.local_id,
                                         suffix=".jsonl", delete=False) as handle:
            for line in self.state.lines(batch.local_id):
                handle.write(line + "\n")
            path = Path(handle.name)
        try:
            return await self.api.upload(path, batch.filename)
        finally:
            path.unlink(missing_ok=True)

    # --- polling and collecting ----------------------------------------------------------------------

    async def _poll(self, batch: BatchRecord, taxonomy: Taxonomy) -> None:
        try:
            remote = await self.api.retrieve(batch.remote_id)  # type: ignore[arg-type]
            counts = remote.request_counts
            self.state.update(batch.local_id, remote_status=remote.status,
                              completed=counts.completed if counts else 0, failed=counts.failed if counts else 0)
            if remote.status in TERMINAL:
                await self._collect(batch, remote, taxonomy)
        except FatalRunError:
            raise
        except ServiceError as exc:
            if exc.status_code == 404:  # the server no longer knows the batch (or has no Batch API at all)
                outcomes: dict[str, tuple[str, list[str] | None]] = {
                    item_id: (RETRY, None) for item_id in self.state.item_ids(batch.local_id)}
                self.state.finish(batch.local_id, outcomes, remote_status="lost", error=str(exc))
                self._lost(batch, exc, len(outcomes), "its items are enriched directly")
                return
            if exc.fatal:
                raise FatalRunError(str(exc)) from exc
            self.telemetry.event("batch_poll_failed", f"batch {batch.remote_id}: {exc}; its items stay held until the next run",
                        level=logging.WARNING, batch_id=batch.remote_id, error=str(exc))

    def _lost(self, batch: BatchRecord, exc: ServiceError, items: int, then: str) -> None:
        """A 404: the batch (or the Batch API) is gone from this server, e.g. OPENAI_BASE_URL or the key changed."""
        self.telemetry.event(
            "batch_discarded", f"batch {batch.remote_id or batch.local_id} is unknown to {self.settings.openai_base_url or 'OpenAI'} "
            f"({exc}); {then} ({items} items)", level=logging.WARNING,
            local_id=batch.local_id, batch_id=batch.remote_id, items=items, reason="unknown_to_server", error=str(exc))

    async def _collect(self, batch: BatchRecord, remote: Any, taxonomy: Taxonomy) -> None:
        """Each item in turn: its request lines from the state, its answers from the output file on disk.

        Neither the batch's requests (up to 200 MB of item texts) nor its
        output file is ever whole in memory: only the offsets of the answers.
        """
        outcomes: dict[str, tuple[str, list[str] | None]] = {}
        totals, cost, known = Usage(), 0.0, True
        with Answers(self.state.path.parent, batch.local_id) as answers:
            await answers.fetch(self.api, remote.output_file_id)
            for item_id in self.state.line_items(batch.local_id):
                replies = []
                requests = self.state.item_lines(batch.local_id, item_id)
                for custom_id, line in sorted(requests, key=lambda r: int(r[0].rsplit(_SEPARATOR, 1)[1])):
                    step = custom_id.rsplit(_SEPARATOR, 2)[1]
                    body = answers.get(custom_id)
                    prompt = prompt_of(json.loads(line)["body"], step)
                    reply = reply_of_body(body, prompt, self.transport.model) if body is not None else None
                    if reply is not None:
                        price = self.meter.cost(reply.model, reply.usage)
                        known = known and price is not None
                        cost += price or 0.0
                        totals = _add(totals, reply.usage)
                    replies.append((prompt, reply))
                outcomes[item_id] = self._outcome(item_id, replies, taxonomy)
        statuses = [status for status, _ in outcomes.values()]
        total_cost = round(cost, 8) if known else None
        self.budget.add(total_cost)
        self.state.finish(batch.local_id, outcomes, remote_status=remote.status,
                          output_file_id=remote.output_file_id, error_file_id=remote.error_file_id,
                          items_enriched=statuses.count(READY), cost_usd=total_cost)
        errors = [e.message for e in ((remote.errors.data or []) if remote.errors else [])][:3]
        deleted, kept = await self._delete_files(remote)
        self.telemetry.event(
            "batch_collected",
            f"batch {remote.id} {remote.status}: {statuses.count(READY)} items answered, {statuses.count(NEXT)} "
            f"waiting for their reduce step, {statuses.count(RETRY)} to enrich directly"
            + (f"; could not delete {', '.join(kept)} (OpenAI removes batch files after 30 days)" if kept else ""),
            level=logging.INFO if remote.status == "completed" and not kept else logging.WARNING,
            service="openai", tier="batch", batch_id=remote.id, local_id=batch.local_id, status=remote.status,
            items_enriched=statuses.count(READY), items_next=statuses.count(NEXT), items_retry=statuses.count(RETRY),
            prompt_tokens=totals.prompt, completion_tokens=totals.completion, total_tokens=totals.total,
            cached_tokens=totals.cached, model=self.transport.model, estimated_cost_usd=total_cost,
            files_deleted=deleted, **({"files_kept": kept} if kept else {}), **({"errors": errors} if errors else {}),
        )

    async def _delete_files(self, remote: Any) -> tuple[int, list[str]]:
        """Delete the batch's files once its answers are in the journal: the input holds every item's text.

        Returns how many were deleted and the ids of those that could not be
        (already gone counts as deleted); a failure never stops the run.
        """
        files = [f for f in (remote.input_file_id, remote.output_file_id, remote.error_file_id) if f]
        deleted, kept = 0, []
        for n, file_id in enumerate(files):
            try:
                await self.api.delete_file(file_id)
            except ServiceError as exc:
                if exc.status_code != 404:
                    kept.append(file_id)
                    continue
            except FatalRunError:  # the breaker opened on the Files API: try no more
                kept += files[n:]
                break
            deleted += 1
        return deleted, kept

    def _outcome(self, item_id: str, replies: list, taxonomy: Taxonomy) -> tuple[str, list[str] | None]:
        """What became of one item: READY (answer in the journal), NEXT (summaries), or RETRY."""
        record = self.state.item(item_id)
        if record is None or any(reply is None for _, reply in replies):
            return RETRY, None
        item = Item(id=item_id, title=item_id, source_type=SourceType.WEBSITE)  # for the events only
        if record.phase == "map":
            summaries = [self.core.summary_of(item, reply, n, len(replies)) for n, (_, reply) in enumerate(replies, 1)]
            parts = [s for s in summaries if s]
            return (NEXT, parts) if parts else (RETRY, None)
        try:
            enrichment: Enrichment = self.core.parse(replies[0][1], replies[0][0], taxonomy, item)
            extra: list[AnalysisResult] = []
            for prompt, reply in replies[1:]:
                if prompt.step == STEP_ANALYSES:
                    extra += self.core.parse(reply, prompt, taxonomy, item)
        except BadAnswer:
            return RETRY, None
        enrichment = self.core.merge(enrichment, extra)
        if replies[0][0].step == STEP_REDUCE:
            enrichment = dataclasses.replace(enrichment, chunks=record.chunks)
        self.journal.record_enrichment(item_id, enrichment)
        return READY, None


class Answers:
    """A batch's output file on disk, with the place of each answered line (``custom_id`` -> offset, length)."""

    def __init__(self, directory: Path, local_id: str) -> None:
        self.directory = directory
        self.local_id = local_id
        self.path: Path | None = None
        self.places: dict[str, tuple[int, int]] = {}
        self._handle: Any = None

    def __enter__(self) -> Answers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    async def fetch(self, api: BatchApi, file_id: str | None) -> None:
        """Download the output file (none: no answers) and note where each line with a 200 answer is."""
        if not file_id:
            return
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix=self.local_id, suffix=".output.jsonl",
                                         delete=False) as handle:
            self.path = Path(handle.name)
        await api.download(file_id, self.path)
        self._handle = open(self.path, "rb")
        offset = 0
        for raw in self._handle:
            if raw.strip():
                line = json.loads(raw)
                response = line.get("response") or {}
                if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                    self.places[line["custom_id"]] = (offset, len(raw))
            offset += len(raw)

    def get(self, custom_id: str) -> dict[str, Any] | None:
        """The chat completion body answering ``custom_id``, or None."""
        place = self.places.get(custom_id)
        if place is None:
            return None
        self._handle.seek(place[0])
        return json.loads(self._handle.read(place[1]))["response"]["body"]


class StoredText:
    """The extractor, except for items whose text a batch row kept (no second fetch).

    What it reads for an item about to be batched is kept in ``recent`` until
    the item's row takes it (title and partial reads travel with the text).
    """

    def __init__(self, inner: TextExtractor, state: BatchState, *, keep: bool) -> None:
        self.inner = inner
        self.state = state
        self.fetcher = inner.fetcher
        self.keep = keep
        self.recent: dict[str, Extracted] = {}

    async def read(self, item: Item, *, title: bool = False) -> Extracted:
        record = self.state.item(item.id)
        if record is not None:
            warnings = tuple(PartialRead(**w) for w in record.extra.get("warnings") or ())
            return Extracted(record.text, record.extra.get("title") if title else None, warnings)
        extracted = await self.inner.read(item, title=title)
        if self.keep:
            self.recent[item.id] = extracted
        return extracted

    async def extract(self, item: Item) -> str:
        return (await self.read(item)).text

    async def close(self) -> None:
        await self.inner.close()


class BatchPathEnricher:
    """Direct calls for some items, a batch for the others, as the run's mode and each item's row say."""

    def __init__(self, run: BatchRun) -> None:
        self.run = run
        self.name = run.core.name

    async def enrich(self, item: Item, text: str, taxonomy: Taxonomy) -> Enrichment:
        record = self.run.state.item(item.id)
        if self.run.batching and (record is None or record.status == NEXT) and text.strip():
            self.run.defer(item, text, taxonomy)
        if record is not None and record.status == NEXT and record.parts:
            return await self.run.core.enrich(item, text, taxonomy, parts=record.parts, chunks=record.chunks)
        return await self.run.core.enrich(item, text, taxonomy)

    async def close(self) -> None:
        await self.run.core.close()


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(a.prompt + b.prompt, a.completion + b.completion, a.cached + b.cached, a.cache_write + b.cache_write)


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) - 3600

