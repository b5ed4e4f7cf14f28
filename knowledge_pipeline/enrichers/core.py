"""The provider-neutral LLM enricher: prompts, answer checks, map-reduce.

Everything that does not depend on who answers lives here: the prompt and
its JSON schema (:mod:`.prompts`, laid out for prompt caching), the checks
of the answer (labels outside the taxonomy are mapped to the closest allowed
one; a refused, truncated or invalid answer gets one corrective retry before
the item fails), the optional analyses (:mod:`.analyses`), and long texts.

A text longer than the input budget is map-reduced: each chunk is summarised
in plain text, then the structured call reads the summaries; summaries that
together still do not fit are merged in further rounds, so no text is ever
cut to fit. The input budget is ``MAX_INPUT_TOKENS``, lowered to what the
server's context window leaves for the answer when the transport can tell it
(local servers); a server answering ``context_length_exceeded`` lowers it
once more for the rest of the run.

A provider is a :class:`~.transport.Transport`: it sends a :class:`Prompt`
and returns a :class:`Reply` or a classified ``ServiceError``. The steps of
one item are planned by :meth:`LLMEnricher.plan`, which the Batch API path
(:mod:`..batches`) shares: there each step is one batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

from ..config import Settings
from ..errors import EnrichmentError, FatalRunError, ServiceError, one_line
from ..models import AnalysisResult, Enrichment, Item, Taxonomy
from ..telemetry import Telemetry
from . import analyses as analysis_fields
from . import prompts
from .analyses import Analysis
from .chunking import CHARS_PER_TOKEN, evenly_spaced, split_text
from .transport import (
    CONTEXT_LENGTH_EXCEEDED,
    STEP_ANALYSES,
    STEP_MAP,
    STEP_REDUCE,
    STEP_SINGLE,
    Prompt,
    Reply,
    DETAIL_CHARS,
    Transport,
)

MIN_INPUT_TOKENS = 250
_MIN_TEXT_CHARS = 1000
_HEADER_RESERVE_CHARS = 400
# A share of the model's output limit that one call is planned to need at most.
_OUTPUT_SHARE = 0.6
# The share of a known context window one call's answer may take at most (the prompt has the rest).
_CONTEXT_OUTPUT_SHARE = 0.5
# OpenAI/vLLM: "maximum context length is N tokens"; llama.cpp: "available context size (N tokens)";
# Anthropic: "prompt is too long: 215000 tokens > 200000 maximum"
_CONTEXT_LIMIT = re.compile(r"(?:maximum context length is|context size \(|tokens > )\s*(\d+)")
_ISO_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")
_NO_VENDOR = {"", "null", "none", "n/a", "na", "unknown", "not specified"}


class BadAnswer(Exception):
    """The model answered, but not usably. ``kind`` picks the corrective instruction."""

    def __init__(self, kind: str, reason: str, detail: str = "") -> None:
        self.kind = kind
        self.reason = reason
        self.detail = detail
        super().__init__(reason)


@dataclass(frozen=True)
class Step:
    """What an item needs next: summaries of parts (``map``) or the structured answer(s) (``final``).

    A ``final`` step has one prompt for the standard fields (with the first
    analyses) and one more per group of analyses that would not fit the
    model's output limit in the same answer.
    """

    kind: str  # "map" or "final"
    prompts: tuple[Prompt, ...]
    chunks: int = 1
    partial: bool = False


class LLMEnricher:
    """Enriches items with any LLM a :class:`Transport` reaches."""

    def __init__(
        self,
        transport: Transport,
        telemetry: Telemetry,
        *,
        max_input_tokens: int = 60_000,
        max_chunks: int = 12,
        max_output_tokens: int = 8192,
        context_tokens: int | None = None,
        analyses: tuple[Analysis, ...] = (),
    ) -> None:
        self.transport = transport
        self.name = transport.service
        self.analyses = analyses
        self._telemetry = telemetry
        self._input_tokens = max_input_tokens
        self._max_chunks = max_chunks
        self._max_output_tokens = max_output_tokens  # per call: MAX_OUTPUT_TOKENS, or less in a small context
        self._context_tokens = context_tokens
        self._context_checked = False
        self._context_lock = asyncio.Lock()

    @property
    def input_tokens(self) -> int:
        """The input budget per call now (after the server's context window and any reduction)."""
        return self._input_tokens

    # --- the direct path -----------------------------------------------------------------

    async def enrich(
        self, item: Item, text: str, taxonomy: Taxonomy, *, parts: list[str] | None = None, chunks: int = 1
    ) -> Enrichment:
        """The item's enrichment; ``parts`` are summaries a batch already made of its chunks (``chunks`` of them)."""
        text = text.strip()
        if not text:
            raise EnrichmentError("no text to enrich")
        await self.fit_context()
        try:
            return await self._enrich_fitting(item, text, taxonomy, parts, chunks)
        except ServiceError as exc:
            if exc.fatal:
                raise FatalRunError(str(exc)) from exc
            raise

    async def close(self) -> None:
        await self.transport.close()

    async def fit_context(self) -> None:
        """Once per run: lower the input budget to what the server's context leaves for the answer."""
        if self._context_checked:
            return
        async with self._context_lock:  # the other workers wait: none may send a prompt sized for no context
            if self._context_checked:
                return
            window = self._context_tokens or await self.transport.context_tokens()
            self._context_checked = True
        if not window:
            return
        # a small window (Ollama's default 4096) splits the analyses over more calls rather than over-fill it
        self._max_output_tokens = min(self._max_output_tokens, max(int(window * _CONTEXT_OUTPUT_SHARE), 1))
        reserve = self._answer_reserve()
        fitting = max(window - reserve, MIN_INPUT_TOKENS)
        previous = self._input_tokens
        self._input_tokens = min(self._input_tokens, fitting)
        too_small = window - reserve < MIN_INPUT_TOKENS
        self._telemetry.event(
            "context_window_sized",
            f"{self.name}: context window {window} tokens; {self._input_tokens} for the prompt, "
            f"{reserve} kept for the answer"
            + (f"; the window is too small: prompt and answer will not fit (at least {MIN_INPUT_TOKENS + reserve} "
               "tokens needed; raise the server's context, e.g. Ollama's num_ctx)" if too_small else ""),
            level=logging.WARNING if too_small else logging.INFO,
            service=self.name,
            context_tokens=window,
            answer_reserve_tokens=reserve,
            input_tokens=self._input_tokens,
            previous_input_tokens=previous,
            source="OPENAI_CONTEXT_TOKENS" if self._context_tokens else "server",
        )

    def _answer_reserve(self) -> int:
        """Tokens kept free for the answer: the largest planned call's output, with room to spare."""
        first, *rest = self._analysis_groups()
        largest = max([prompts.expected_output_tokens(first)] + [
            prompts.expected_output_tokens(group, standard=False) for group in rest
        ])
        return min(self._max_output_tokens, int(largest * 1.5))

    async def _enrich_fitting(
        self, item: Item, text: str, taxonomy: Taxonomy, parts: list[str] | None, chunks: int
    ) -> Enrichment:
        budget = self._input_tokens
        try:
            return await self._enrich_within(item, text, taxonomy, budget, parts, chunks)
        except ServiceError as exc:
            smaller = smaller_budget(exc, budget)
            if smaller is None:
                raise
            self._input_tokens = min(self._input_tokens, smaller)
            self._telemetry.event(
                f"{self.name}_context_reduced",
                f"{self.name}: server context is smaller than the input budget; using {smaller} tokens",
                level=logging.WARNING,
                item_id=item.id,
                previous_input_tokens=budget,
                input_tokens=smaller,
            )
            return await self._enrich_within(item, text, taxonomy, smaller, parts, chunks)

    async def _enrich_within(
        self, item: Item, text: str, taxonomy: Taxonomy, input_tokens: int, parts: list[str] | None, chunks: int
    ) -> Enrichment:
        while True:
            step = self.plan(item, text, taxonomy, parts, input_tokens=input_tokens)
            if step.kind == "final":
                enrichment = await self._final(item, step.prompts, taxonomy)
                return dataclasses.replace(enrichment, chunks=chunks if step.partial else 1)
            if parts is None:
                chunks = step.chunks
            parts = await self._summaries(item, step.prompts)

    async def _summaries(self, item: Item, prompts_: tuple[Prompt, ...]) -> list[str]:
        """The map calls, one after another (the workers are the bound on concurrent requests)."""
        parts = []
        for index, prompt in enumerate(prompts_, 1):
            reply = await self.transport.send(prompt, context=self._context(item, prompt, index))
            summary = self.summary_of(item, reply, index, len(prompts_))
            if summary:
                parts.append(summary)
        if not parts:
            raise EnrichmentError("model gave no summary for any part of the document")
        return parts

    async def _final(self, item: Item, prompts_: tuple[Prompt, ...], taxonomy: Taxonomy) -> Enrichment:
        enrichment = await self._structured(item, prompts_[0], taxonomy)
        extra: list[AnalysisResult] = []
        for prompt in prompts_[1:]:
            extra += await self._structured(item, prompt, taxonomy)
        return self.merge(enrichment, extra)

    async def _structured(self, item: Item, prompt: Prompt, taxonomy: Taxonomy) -> Any:
        """One structured call with one corrective retry for a refused, cut-off or invalid answer."""
        for attempt in (1, 2):
            reply = await self.transport.send(prompt, context=self._context(item, prompt))
            try:
                return self.parse(reply, prompt, taxonomy, item)
            except BadAnswer as bad:
                if attempt == 2:
                    raise EnrichmentError(bad.reason) from None
                self._telemetry.event(
                    f"{self.name}_output_retry",
                    f"{self.name}: {bad.reason}; asking once more",
                    level=logging.WARNING,
                    item_id=item.id,
                    reason=bad.reason,
                )
                prompt = prompt.with_turn("user", prompts.correction(bad.kind, bad.detail))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _context(item: Item, prompt: Prompt, chunk: int | None = None) -> dict[str, Any]:
        context: dict[str, Any] = {"item_id": item.id, "step": prompt.step}
        if chunk is not None:
            context["chunk"] = chunk
        return context

    # --- planning (shared with the Batch API path) ---------------------------------------------

    def plan(
        self, item: Item, text: str, taxonomy: Taxonomy, parts: list[str] | None = None, *, input_tokens: int | None = None
    ) -> Step:
        """The next step for ``item``: summarise chunks or parts, or the structured answer(s)."""
        limit = self._text_budget_chars(taxonomy, input_tokens or self._input_tokens)
        if parts is None:
            if len(text) <= limit:
                return Step("final", self.final_prompts(item, text, taxonomy, partial=False))
            chunks = split_text(text, limit)
            kept = evenly_spaced(chunks, self._max_chunks)
            if len(kept) < len(chunks):
                self._telemetry.event(
                    "document_chunks_capped",
                    f"{self.name}: {item.title!r} has {len(chunks)} chunks; summarising {len(kept)} spread over it",
                    level=logging.WARNING,
                    item_id=item.id,
                    chunks_total=len(chunks),
                    chunks_kept=len(kept),
                )
            return Step("map", tuple(self._chunk_prompt(item, c, i, len(kept)) for i, c in enumerate(kept, 1)), len(kept))
        numbered = [f"Part {i} of {len(parts)}: {p}" for i, p in enumerate(parts, 1)]
        joined = "\n\n".join(numbered)
        if len(joined) <= limit:
            return Step("final", self.final_prompts(item, joined, taxonomy, partial=True), partial=True)
        groups = split_text(joined, limit)
        if len(groups) >= len(parts):
            raise EnrichmentError(
                f"the summaries of the document's parts do not fit the model's input budget ({limit} characters)"
            )
        return Step("map", tuple(self._combine_prompt(item, g) for g in groups))

    def final_prompts(self, item: Item, body: str, taxonomy: Taxonomy, *, partial: bool) -> tuple[Prompt, ...]:
        first, *rest = self._analysis_groups()
        system = prompts.system_prompt(taxonomy, first)
        schema = prompts.enrichment_schema(taxonomy, first)
        user = ({"role": "user", "content": prompts.document_message(item, body, partial=partial)},)
        step = STEP_REDUCE if partial else STEP_SINGLE
        result = [self._prompt(system, user, schema, step)]
        for group in rest:
            result.append(self._prompt(prompts.ANALYSES_ONLY_SYSTEM, user, prompts.analyses_only_schema(group), STEP_ANALYSES))
        return tuple(result)

    def _prompt(self, system: str, messages: tuple[dict[str, str], ...], schema: dict | None, step: str) -> Prompt:
        return Prompt(
            system=system,
            messages=messages,
            schema=schema,
            schema_name=prompts.SCHEMA_NAME,
            step=step,
            max_output_tokens=self._max_output_tokens,
            cache_key=prompts.cache_key(system, schema),
        )

    def _chunk_prompt(self, item: Item, chunk: str, index: int, total: int) -> Prompt:
        user = ({"role": "user", "content": prompts.chunk_message(item, chunk, index, total)},)
        return self._prompt(prompts.CHUNK_SYSTEM, user, None, STEP_MAP)

    def _combine_prompt(self, item: Item, parts: str) -> Prompt:
        user = ({"role": "user", "content": prompts.combine_message(item, parts)},)
        return self._prompt(prompts.COMBINE_SYSTEM, user, None, STEP_MAP)

    def _analysis_groups(self) -> list[tuple[Analysis, ...]]:
        budget = int(self._max_output_tokens * _OUTPUT_SHARE)
        return analysis_fields.groups(self.analyses, budget - prompts.STANDARD_OUTPUT_TOKENS, budget)

    def _text_budget_chars(self, taxonomy: Taxonomy, input_tokens: int) -> int:
        """Characters of document text that fit in one call next to the instructions and schema."""
        first = self._analysis_groups()[0]
        overhead = len(prompts.system_prompt(taxonomy, first, schema_in_prompt=True)) + _HEADER_RESERVE_CHARS
        return max(input_tokens * CHARS_PER_TOKEN - overhead, _MIN_TEXT_CHARS)

    # --- answers ---------------------------------------------------------------------------

    def summary_of(self, item: Item, reply: Reply, index: int, total: int) -> str | None:
        """A map step's summary, or None (logged) when the model gave none."""
        content = (reply.text or "").strip()
        if reply.refusal or not content:
            self._telemetry.event(
                f"{self.name}_chunk_skipped",
                f"{self.name}: no summary for part {index} of {total} of {item.title!r}",
                level=logging.WARNING,
                item_id=item.id,
                chunk=index,
                refusal=one_line(reply.refusal, DETAIL_CHARS) if reply.refusal else None,
            )
            return None
        return content

    def parse(self, reply: Reply, prompt: Prompt, taxonomy: Taxonomy, item: Item) -> Any:
        """The checked answer: an Enrichment (standard call) or analysis results (analyses-only call)."""
        if reply.refusal:
            raise BadAnswer("refusal", f"model refused: {one_line(reply.refusal, DETAIL_CHARS)}")
        if reply.truncated:
            raise BadAnswer("length", "output truncated (finish_reason=length)")
        data = reply.data
        if data is None:
            content = _strip_fences(reply.text or "")
            try:
                data = json.loads(content)
            except json.JSONDecodeError as exc:
                problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if content else "empty answer"
                raise BadAnswer("invalid", f"invalid JSON from model: {problem}", problem) from None
        if not isinstance(data, dict):
            _invalid("expected a JSON object")
        wanted = self._analyses_in(prompt)
        if prompt.step == STEP_ANALYSES:
            return self._analysis_results(data.get("analyses"), wanted, item)
        return self._validate(data, taxonomy, item, wanted)

    def merge(self, enrichment: Enrichment, extra: list[AnalysisResult]) -> Enrichment:
        """The enrichment with every analysis, in the configured order."""
        if not self.analyses:
            return enrichment
        found = {a.name: a for a in (*enrichment.analyses, *extra)}
        ordered = tuple(found[a.name] for a in self.analyses if a.name in found)
        return dataclasses.replace(enrichment, analyses=ordered)

    def _analyses_in(self, prompt: Prompt) -> tuple[Analysis, ...]:
        schema = prompt.schema or {}
        names = (schema.get("properties", {}).get("analyses") or {}).get("properties", {})
        return tuple(a for a in self.analyses if a.name in names)

    def _validate(self, data: dict[str, Any], taxonomy: Taxonomy, item: Item, wanted: tuple[Analysis, ...]) -> Enrichment:
        primitives = data.get("ai_primitives")
        if isinstance(primitives, str):
            primitives = [primitives]
        if not isinstance(primitives, list) or not any(isinstance(p, str) and p.strip() for p in primitives):
            _invalid("'ai_primitives' must be a non-empty list of labels")
        mapped = [
            self._label(p, taxonomy.ai_primitives, "ai_primitives", item)
            for p in primitives
            if isinstance(p, str) and p.strip()
        ]
        insights = data.get("key_insights")
        if not isinstance(insights, list):
            _invalid("'key_insights' must be a list of strings")
        insights = [i.strip() for i in insights if isinstance(i, str) and i.strip()]
        if not insights:
            _invalid("'key_insights' is empty")
        return Enrichment(
            summary=_text(data, "summary"),
            executive_summary=_text(data, "executive_summary"),
            content_type=self._label(data.get("content_type"), taxonomy.content_types, "content_type", item),
            ai_primitives=tuple(dict.fromkeys(mapped)),
            vendor=_vendor(data.get("vendor")),
            key_insights=tuple(insights[:5]),
            published_date=parse_date(data.get("published_date")),
            analyses=tuple(self._analysis_results(data.get("analyses"), wanted, item)),
        )

    def _analysis_results(self, answer: Any, wanted: tuple[Analysis, ...], item: Item) -> list[AnalysisResult]:
        """Each wanted analysis from the answer; one the model left out becomes a marked placeholder."""
        answer = answer if isinstance(answer, dict) else {}
        results = []
        for analysis in wanted:
            result = analysis_fields.result_from_answer(analysis, answer.get(analysis.name))
            if result is None:
                self._telemetry.event(
                    "analysis_missing",
                    f"{self.name}: no answer for analysis {analysis.name!r} of {item.title!r}",
                    level=logging.WARNING,
                    item_id=item.id,
                    analysis=analysis.name,
                )
                result = analysis_fields.placeholder(analysis, "the model gave no answer for this analysis")
            results.append(result)
        return results

    def _label(self, value: Any, allowed: tuple[str, ...], field: str, item: Item) -> str:
        """``value`` if allowed, else the closest allowed label (logged)."""
        if not isinstance(value, str) or not value.strip():
            _invalid(f"'{field}' is missing")
        value = value.strip()
        if value in allowed or not allowed:
            return value
        by_lower = {a.lower(): a for a in allowed}
        if value.lower() in by_lower:
            return by_lower[value.lower()]
        closest = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.0)
        mapped = by_lower[closest[0]] if closest else allowed[0]
        self._telemetry.event(
            "taxonomy_label_mapped",
            f"{self.name}: {field} label {value!r} is not in the taxonomy; using {mapped!r}",
            level=logging.WARNING,
            item_id=item.id,
            field=field,
            label=value,
            mapped_to=mapped,
        )
        return mapped


# --- helpers --------------------------------------------------------------------------


def limits(settings: Settings) -> dict[str, Any]:
    """The core's settings every provider shares."""
    return {"max_input_tokens": settings.max_input_tokens, "max_chunks": settings.max_chunks,
            "max_output_tokens": settings.max_output_tokens, "analyses": settings.analyses}


def smaller_budget(exc: ServiceError, budget: int) -> int | None:
    """A smaller input budget after context_length_exceeded, or None when there is no point."""
    if exc.code != CONTEXT_LENGTH_EXCEEDED:
        return None
    smaller = budget // 2
    match = _CONTEXT_LIMIT.search(str(exc))
    if match:
        smaller = min(smaller, int(int(match.group(1)) * 0.75))
    return smaller if smaller >= MIN_INPUT_TOKENS else None


def parse_date(value: Any) -> date | None:
    """An ISO date (a datetime's date part is taken); anything else is None."""
    if not isinstance(value, str):
        return None
    match = _ISO_DATE.match(value)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _invalid(problem: str) -> NoReturn:
    raise BadAnswer("invalid", f"invalid JSON from model: {problem}", problem)


def _text(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        _invalid(f"'{field}' is missing or empty")
    return value.strip()


def _vendor(value: Any) -> str | None:
    if not isinstance(value, str) or value.strip().lower() in _NO_VENDOR:
        return None
    return value.strip()


def _strip_fences(content: str) -> str:
    """Some compatible servers wrap JSON in Markdown code fences despite being asked not to."""
    text = content.strip()
    if text.startswith("```"):
        text = re.sub(r"^```[a-zA-Z]*\s*", "", text)
        text = re.sub(r"\s*```$", "", text)
    return text


