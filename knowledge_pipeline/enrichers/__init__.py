"""Enrichers: turn an item's text into summary, labels, insights and analyses.

``local`` is offline; ``openai`` and ``anthropic`` are the provider-neutral
core (:mod:`.core`) over one transport each (:mod:`.transport`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Enricher

if TYPE_CHECKING:
    from ..budget import Budget
    from ..config import Settings
    from ..services import ServiceGateway

__all__ = ["Enricher", "make_enricher"]


def make_enricher(settings: Settings, gateway: ServiceGateway, budget: Budget) -> Enricher:
    if settings.enricher == "openai":
        from .openai import OpenAIEnricher

        return OpenAIEnricher(settings, gateway, budget)
    if settings.enricher == "anthropic":
        from .anthropic import AnthropicEnricher

        return AnthropicEnricher(settings, gateway, budget)
    from .local import LocalEnricher

    return LocalEnricher(settings.analyses)
