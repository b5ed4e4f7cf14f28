"""What an LLM call costs, estimated from its token usage, per provider.

Prices are USD per 1M tokens: ``input`` (uncached prompt tokens),
``cached_input`` (prompt tokens served from the provider's prompt cache),
``cache_write`` (Anthropic: prompt tokens written to the cache) and
``output`` (completion tokens, reasoning tokens included). ``OPENAI_PRICES`` /
``OPENAI_PRICES_FILE`` (parsed into ``Settings.openai_prices``) override or
extend the built-in tables of every provider, by model name. A model that
nothing prices has no estimate (``None``), never a cost of 0: a run against
an unpriced model reports its cost as unknown rather than as free.

The ``batch`` tier (OpenAI's Batch API) costs ``BATCH_DISCOUNT`` of the
standard price for every kind of token.
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

# Anthropic list prices from platform.claude.com/docs/en/about-claude/pricing as of 2026-11
# (5-minute cache writes; cache hits at 0.1x input).
ANTHROPIC_PRICES: dict[str, dict[str, float]] = {
    "claude-opus-4-6": {"input": 5.00, "cache_write": 6.25, "cached_input": 0.50, "output": 25.00},
    "claude-opus-4-5": {"input": 5.00, "cache_write": 6.25, "cached_input": 0.50, "output": 25.00},
    "claude-opus-4-1": {"input": 15.00, "cache_write": 18.75, "cached_input": 1.50, "output": 75.00},
    "claude-opus-4-0": {"input": 15.00, "cache_write": 18.75, "cached_input": 1.50, "output": 75.00},
    "claude-opus-4": {"input": 15.00, "cache_write": 18.75, "cached_input": 1.50, "output": 75.00},
    "claude-sonnet-4-6": {"input": 3.00, "cache_write": 3.75, "cached_input": 0.30, "output": 15.00},
    "claude-sonnet-4-5": {"input": 3.00, "cache_write": 3.75, "cached_input": 0.30, "output": 15.00},
    "claude-sonnet-4-0": {"input": 3.00, "cache_write": 3.75, "cached_input": 0.30, "output": 15.00},
    "claude-sonnet-4": {"input": 3.00, "cache_write": 3.75, "cached_input": 0.30, "output": 15.00},
    "claude-3-7-sonnet": {"input": 3.00, "cache_write": 3.75, "cached_input": 0.30, "output": 15.00},
    "claude-haiku-4-5": {"input": 1.00, "cache_write": 1.25, "cached_input": 0.10, "output": 5.00},
    "claude-3-5-haiku": {"input": 0.80, "cache_write": 1.00, "cached_input": 0.08, "output": 4.00},
    "claude-3-haiku": {"input": 0.25, "cache_write": 0.30, "cached_input": 0.03, "output": 1.25},
}

PROVIDER_PRICES: dict[str, dict[str, dict[str, float]]] = {"openai": BUILTIN_PRICES, "anthropic": ANTHROPIC_PRICES}
BATCH_DISCOUNT = 0.5
TIERS = ("direct", "batch")

# "gpt-4.1-mini-2025-04-14" -> "gpt-4.1-mini"; "gpt-4-0613", "claude-haiku-4-5-20251001", "-latest" too.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")


def base_model(model: str) -> str:
    """The model name without a dated snapshot suffix, lower-cased."""
    return _SNAPSHOT.sub("", model.strip().lower())


def price_for(
    model: str, overrides: Mapping[str, Prices] | None = None, provider: str = "openai"
) -> Prices | None:
    """Prices of ``model``: an override beats the table, an exact name beats its base model."""
    overrides = {k.lower(): v for k, v in (overrides or {}).items()}
    exact, base = model.strip().lower(), base_model(model)
    for table in (overrides, PROVIDER_PRICES.get(provider, {})):
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
    *,
    cache_write_tokens: int = 0,
    provider: str = "openai",
    tier: str = "direct",
) -> float | None:
    """Estimated USD cost of one call; ``None`` when the model's price is unknown.

    ``prompt_tokens`` includes ``cached_tokens`` and ``cache_write_tokens``
    (OpenAI's usage counts them in; the Anthropic transport adds them), so
    the rest is charged at ``input``, the cached part at ``cached_input``
    and the written part at ``cache_write`` (``input`` when the table has no
    such price).
    """
    prices = price_for(model, overrides, provider)
    if prices is None:
        return None
    cached = max(0, min(cached_tokens, prompt_tokens))
    written = max(0, min(cache_write_tokens, prompt_tokens - cached))
    uncached = prompt_tokens - cached - written
    total = (
        uncached * prices["input"]
        + cached * prices.get("cached_input", prices["input"])
        + written * prices.get("cache_write", prices["input"])
        + completion_tokens * prices["output"]
    )
    if tier == "batch":
        total *= BATCH_DISCOUNT
    return total / 1_000_000
