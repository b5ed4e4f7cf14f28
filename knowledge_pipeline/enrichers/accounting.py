"""Tokens and money of LLM calls, per provider: event fields and the run's budget.

Every transport reports what a call used through one :class:`Meter`, so the
``api_call_*`` events of every provider carry the same token fields and
every priced call is charged to ``MAX_COST_USD`` the same way: answered
calls with the usage the server sent, calls whose answer never came back
(a read timeout, a dropped connection after the request went out) with the
prompt tokens estimated from the request, because the provider bills them
all the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Mapping

from ..budget import Budget
from ..errors import ServiceError
from ..services import ServiceGateway
from ..telemetry import Telemetry
from .pricing import Prices, estimate_cost
from .transport import CONNECTION_ERROR, TIMEOUT, Prompt, Reply, Usage, request_was_sent


class Meter:
    """Prices the usage of one provider's calls and charges it to the run's budget."""

    def __init__(
        self,
        service: str,
        budget: Budget,
        telemetry: Telemetry,
        *,
        overrides: Mapping[str, Prices] | None = None,
        tier: str = "direct",
    ) -> None:
        self.service = service
        self.tier = tier
        self._budget = budget
        self._telemetry = telemetry
        self._overrides = overrides or {}
        self._unpriced: set[str] = set()

    def cost(self, model: str, usage: Usage) -> float | None:
        cost = estimate_cost(
            model, usage.prompt, usage.completion, usage.cached, self._overrides,
            cache_write_tokens=usage.cache_write, provider=self.service, tier=self.tier,
        )
        if cost is None:
            self._warn_unpriced(model)
        return cost

    def charge(self, model: str, usage: Usage) -> dict[str, Any]:
        """The event fields of one call's usage; its cost is added to the budget."""
        cost = self.cost(model, usage)
        self._budget.add(cost)
        fields: dict[str, Any] = {
            "prompt_tokens": usage.prompt,
            "completion_tokens": usage.completion,
            "total_tokens": usage.total,
            "cached_tokens": usage.cached,
            "model": model,
            "estimated_cost_usd": None if cost is None else round(cost, 8),
        }
        if usage.cache_write:
            fields["cache_write_tokens"] = usage.cache_write
        if usage.estimated:
            fields["tokens_estimated"] = True
        if self.tier != "direct":
            fields["tier"] = self.tier
        return fields

    def bill_lost(self, error: ServiceError, exc: BaseException, model: str, prompt: Prompt) -> ServiceError:
        """A request that went out but whose answer was lost is billed: charge its estimated prompt tokens."""
        if error.code in (TIMEOUT, CONNECTION_ERROR) and request_was_sent(exc):
            error.fields = self.charge(model, unanswered_usage(prompt.estimated_tokens()))
        return error

    def bill_cancelled(self, operation: str, model: str, prompt: Prompt, duration: float, context: dict[str, Any]) -> None:
        """A call cut off after its request went out (item timeout, shutdown): billed, so charged and reported."""
        self._telemetry.event(
            "api_call_error",
            f"{self.service} {operation} cut off after {duration:.3f}s (item timeout or shutdown); "
            "its prompt tokens are counted, estimated",
            level=logging.ERROR, service=self.service, operation=operation, duration=duration,
            error="call cut off while waiting for the answer", error_type="cancelled", attempt=None,
            **context, **self.charge(model, unanswered_usage(prompt.estimated_tokens())),
        )

    def _warn_unpriced(self, model: str) -> None:
        if model in self._unpriced:
            return
        self._unpriced.add(model)
        self._telemetry.event(
            f"{self.service}_price_unknown",
            f"{self.service}: no price known for model {model!r}; its cost is reported as unknown and "
            "MAX_COST_USD cannot limit it (add it to OPENAI_PRICES)",
            level=logging.WARNING,
            model=model,
        )


def unanswered_usage(prompt_tokens: int) -> Usage:
    """A sent request whose answer was lost: its prompt tokens, estimated, and nothing else."""
    return Usage(prompt=prompt_tokens, estimated=True)


async def metered_call(
    gateway: ServiceGateway,
    meter: Meter,
    operation: str,
    request: Callable[[], Awaitable[Any]],
    *,
    prompt: Prompt,
    model: str,
    to_reply: Callable[[Any, Prompt, str], Reply],
    classify: Callable[[BaseException], ServiceError],
    context: dict[str, Any],
) -> Reply:
    """One model call through the gateway: its reply, its tokens in the event, its cost in the budget.

    A call cut off while its request is in flight (``ITEM_TIMEOUT``, a
    shutdown: ``CancelledError``) is billed like a lost answer: its prompt
    tokens, estimated, in an ``api_call_error`` event (``error_type``
    ``cancelled``) and in the budget. "In flight" means the SDK call had
    started: one cut off while still connecting is counted too (an
    overestimate of one prompt at most); one cut off while waiting for its
    rate-limit slot or a retry's back-off is not.
    """
    replies: list[Reply] = []
    cut: list[float] = []  # how long the attempt cut off in flight had run, if one was

    def fields(response: Any) -> dict[str, Any]:
        reply = to_reply(response, prompt, model)
        replies.append(reply)
        return meter.charge(reply.model, reply.usage)

    async def send() -> Any:
        started = time.monotonic()
        try:
            return await request()
        except asyncio.CancelledError:
            cut.append(round(time.monotonic() - started, 4))
            raise

    try:
        await gateway.call(
            meter.service, operation, send,
            classify=lambda exc: meter.bill_lost(classify(exc), exc, model, prompt), fields=fields, context=context,
        )
    except asyncio.CancelledError:
        if cut:
            meter.bill_cancelled(operation, model, prompt, cut[0], context)
        raise
    return replies[-1]

