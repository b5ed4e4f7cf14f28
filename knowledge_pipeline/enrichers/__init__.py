"""Enrichers: turn an item's text into summary, labels and insights."""

from __future__ import annotations

from ..budget import Budget
from ..config import Settings
from ..services import ServiceGateway
from .base import Enricher

__all__ = ["Enricher", "make_enricher"]


def make_enricher(settings: Settings, gateway: ServiceGateway, budget: Budget) -> Enricher:
    if settings.enricher == "openai":
        from .openai import OpenAIEnricher

        return OpenAIEnricher(settings, gateway, budget)
    from .local import LocalEnricher

    return LocalEnricher()
