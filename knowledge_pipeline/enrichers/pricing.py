"""What an OpenAI call costs, estimated from its token usage.

Prices are USD per 1M tokens: ``input`` (uncached prompt tokens),
``cached_input`` (prompt tokens served from OpenAI's prompt cache) and
``output`` (completion tokens, reasoning tokens included). ``OPENAI_PRICES`` /
``OPENAI_PRICES_FILE`` (parsed into ``Settings.openai_prices``) override or
extend the built-in table. A model that neither knows has no estimate
(``None``), never a cost of 0: a run against an unpriced model reports its
cost as unknown rather than as free.
"""

from __future__ import annotations

import re
from typing import Mapping

Prices = Mapping[str, float]

# Standard-tier list prices from openai.com/api/pricing as of 2025-08.
# Estimates only: prices change, and batch/flex/priority tiers differ.
BUILTIN_PRICES: dict[str, dict[str, float]] = {
    "gpt-5": {"input": 1.25, "cached_input": 0.125, "output": 10.00},
    "gpt-5-mini": {"input": 0.25, "cached_input": 0.025, "output": 2.00},
    "gpt-5-nano": {"input": 0.05, "cached_input": 0.005, "output": 0.40},
    "gpt-5-chat-latest": {"input": 1.25, "cached_input": 0.125, "output": 10.00},
    "gpt-4.1": {"input": 2.00, "cached_input": 0.50, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "cached_input": 0.10, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "cached_input": 0.025, "output": 0.40},
    "gpt-4o": {"input": 2.50, "cached_input": 1.25, "output": 10.00},
    "gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60},
    "o4-mini": {"input": 1.10, "cached_input": 0.275, "output": 4.40},
    "o3": {"input": 2.00, "cached_input": 0.50, "output": 8.00},
    "o3-mini": {"input": 1.10, "cached_input": 0.55, "output": 4.40},
    "o1": {"input": 15.00, "cached_input": 7.50, "output": 60.00},
    "gpt-4-turbo": {"input": 10.00, "output": 30.00},
    "gpt-3.5-turbo": {"input": 0.50, "output": 1.50},
}

# "gpt-4.1-mini-2025-04-14" -> "gpt-4.1-mini"; "gpt-4-0613" style suffixes too.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")


def base_model(model: str) -> str:
    """The model name without a dated snapshot suffix, lower-cased."""
    return _SNAPSHOT.sub("", model.strip().lower())


def price_for(model: str, overrides: Mapping[str, Prices] | None = None) -> Prices | None:
    """Prices of ``model``: an override beats the table, an exact name beats its base model."""
    overrides = {k.lower(): v for k, v in (overrides or {}).items()}
    exact, base = model.strip().lower(), base_model(model)
    for table in (overrides, BUILTIN_PRICES):
        for name in (exact, base):
            if name in table:
                return table[name]
    return None


def estimate_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    overrides: Mapping[str, Prices] | None = None,
) -> float | None:
    """Estimated USD cost of one call; ``None`` when the model's price is unknown.

    ``prompt_tokens`` includes ``cached_tokens`` (as in OpenAI's usage), so the
    uncached part is charged at ``input`` and the cached part at
    ``cached_input`` (``input`` when the table has no cached price).
    """
    prices = price_for(model, overrides)
    if prices is None:
        return None
    cached = max(0, min(cached_tokens, prompt_tokens))
    uncached = prompt_tokens - cached
    cached_price = prices.get("cached_input", prices["input"])
    total = uncached * prices["input"] + cached * cached_price + completion_tokens * prices["output"]
    return total / 1_000_000
