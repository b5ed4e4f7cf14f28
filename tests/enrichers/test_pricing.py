"""Cost estimates per model: the built-in table, overrides, snapshots, unknown models."""

from __future__ import annotations

import pytest

from knowledge_pipeline.config import DEFAULT_OPENAI_MODEL, load_settings
from knowledge_pipeline.enrichers.pricing import BUILTIN_PRICES, base_model, estimate_cost, price_for


def test_cost_is_uncached_input_plus_cached_input_plus_output() -> None:
    # gpt-4.1-mini: $0.40 input, $0.10 cached input, $1.60 output per 1M tokens
    cost = estimate_cost("gpt-4.1-mini", prompt_tokens=10_000, completion_tokens=2_000, cached_tokens=4_000)
    assert cost == pytest.approx((6_000 * 0.40 + 4_000 * 0.10 + 2_000 * 1.60) / 1_000_000)


def test_a_model_without_a_cached_price_charges_cached_tokens_as_input() -> None:
    cost = estimate_cost("gpt-4-turbo", 1_000, 0, cached_tokens=500)
    assert cost == pytest.approx(1_000 * 10.00 / 1_000_000)


def test_the_default_model_and_the_common_ones_are_priced() -> None:
    for model in (DEFAULT_OPENAI_MODEL, "gpt-4.1", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "o4-mini"):
        assert estimate_cost(model, 1_000, 1_000) > 0, model


def test_dated_snapshots_use_their_base_model_price() -> None:
    assert base_model("gpt-4.1-mini-2025-04-14") == "gpt-4.1-mini"
    assert base_model("GPT-3.5-Turbo-0125") == "gpt-3.5-turbo"
    assert price_for("gpt-4.1-mini-2025-04-14") == BUILTIN_PRICES["gpt-4.1-mini"]
    assert price_for("gpt-4o-2024-08-06") == BUILTIN_PRICES["gpt-4o"]
    # a prefix is not a match: gpt-4.1-mini must not be priced as gpt-4.1
    assert price_for("gpt-4.1-mini") != BUILTIN_PRICES["gpt-4.1"]


def test_an_unknown_model_has_no_estimate_rather_than_zero() -> None:
    assert estimate_cost("llama3.1:8b", 1_000, 1_000) is None
    assert estimate_cost("ft:gpt-4.1-mini:acme::abc123", 1_000, 1_000) is None
    assert estimate_cost("gpt-4.1-mini", 0, 0) == 0.0  # known and free of tokens: a real zero


def test_overrides_win_over_the_table_and_cover_snapshots() -> None:
    overrides = {"gpt-4.1-mini": {"input": 1.0, "output": 1.0}, "llama3.1:8b": {"input": 0.0, "output": 0.0}}
    assert estimate_cost("gpt-4.1-mini-2025-04-14", 1_000_000, 0, 0, overrides) == pytest.approx(1.0)
    assert estimate_cost("llama3.1:8b", 1_000, 1_000, 0, overrides) == 0.0
    snapshot_only = {"gpt-4o-2024-08-06": {"input": 3.0, "output": 3.0}, "gpt-4o": {"input": 9.0, "output": 9.0}}
    assert estimate_cost("gpt-4o-2024-08-06", 1_000_000, 0, 0, snapshot_only) == pytest.approx(3.0)


def test_prices_from_the_environment_reach_the_estimate(tmp_path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"my-model": {"input": 2, "output": 4, "cached_input": 1}}')
    settings = load_settings({"OPENAI_PRICES_FILE": str(prices), "OPENAI_PRICES": '{"other": {"input": 1, "output": 1}}'}, env_file=None)
    assert estimate_cost("my-model", 3_000_000, 1_000_000, 1_000_000, settings.openai_prices) == pytest.approx(2 * 2 + 1 + 4)
    assert estimate_cost("other", 1_000_000, 0, 0, settings.openai_prices) == pytest.approx(1.0)
