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

import logging
from typing import Any, Mapping

from ..budget import Budget
from ..telemetry import Telemetry
from .pricing import Prices, estimate_cost
from .transport import Usage


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
