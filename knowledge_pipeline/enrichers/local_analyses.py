"""The analyses the offline enricher can write, and a marked placeholder for the others.

Without a language model, three of the original's analyses can still be
written honestly from what the local enricher already found: the bullet
overview (its extractive summary, one sentence per bullet), thematic tags
(the most frequent content words, as the summary ranks them: any script,
Chinese and Japanese as character pairs) and metadata (vendor, dates, length).
Every other analysis gets a placeholder saying why it is missing, so a
reader never mistakes an empty toggle for an answer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from ..models import AnalysisResult, Enrichment
from .analyses import Analysis, placeholder
from .local import content_words, split_sentences

REASON = "the offline local enricher cannot write this analysis; use ENRICHER=openai or anthropic"


def with_local_analyses(enrichment: Enrichment, analyses: tuple[Analysis, ...], text: str) -> Enrichment:
    if not analyses:
        return enrichment
    return dataclasses.replace(enrichment, analyses=tuple(_one(a, enrichment, text) for a in analyses))


def _one(analysis: Analysis, enrichment: Enrichment, text: str) -> AnalysisResult:
    if analysis.name == "overview":
        lines = tuple(split_sentences(enrichment.summary))
    elif analysis.name == "tags":
        counts = Counter(content_words(text))
        lines = tuple(word for word, _ in counts.most_common(8))
    elif analysis.name == "metadata":
        lines = (
            "Field | Value",
            f"Vendor | {enrichment.vendor or '-'}",
            f"Date in the text | {enrichment.published_date.isoformat() if enrichment.published_date else '-'}",
            f"Content type | {enrichment.content_type}",
            f"Words | {len(text.split())}",
        )
    else:
        return placeholder(analysis, REASON)
    if not lines:
        return placeholder(analysis, REASON)
    return AnalysisResult(analysis.name, analysis.title, analysis.shape, lines)
