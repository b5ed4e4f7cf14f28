"""The offline enricher: deterministic, from the taxonomy, with the fields every store needs."""

import asyncio
from datetime import date

from knowledge_pipeline.enrichers.local import LocalEnricher, find_date, find_vendor, split_sentences
from knowledge_pipeline.models import Item, SourceType, Taxonomy

TEXT = """OpenAI announced on October 14, 2026 a new API for coding agents. The company said the model
supports a context window of one million tokens and costs 40% less than its predecessor.

Developers can use the API today, and GitHub will integrate the model into its products. Analysts
said the release puts pressure on Anthropic and Google. OpenAI also published benchmark results
showing a 72% score on a software engineering benchmark.

The pricing change matters for automation workflows that call models thousands of times per day.
Several developers said the latency improvements were the most important part of the launch.
OpenAI expects enterprise customers to adopt the platform within the next quarter."""

ITEM = Item(id="1", title="OpenAI launches a coding API", source_type=SourceType.RSS)


def enrich(text: str = TEXT, taxonomy: Taxonomy = Taxonomy()):
    return asyncio.run(LocalEnricher().enrich(ITEM, text, taxonomy))


def test_fields_are_complete_and_from_the_taxonomy():
    result = enrich()
    assert result.content_type in Taxonomy().content_types
    assert result.ai_primitives and set(result.ai_primitives) <= set(Taxonomy().ai_primitives)
    assert "Coding" in result.ai_primitives
    assert result.vendor == "OpenAI"
    assert result.published_date == date(2026, 10, 14)
    assert 3 <= len(result.key_insights) <= 5
    assert len(split_sentences(result.executive_summary)) == 5
    assert 40 <= len(result.summary.split()) <= 160


def test_it_is_deterministic():
    assert enrich() == enrich()


def test_a_custom_taxonomy_is_respected():
    taxonomy = Taxonomy(content_types=("News", "Opinion"), ai_primitives=("Agents", "Pricing"))
    result = enrich(taxonomy=taxonomy)
    assert result.content_type in ("News", "Opinion")
    assert set(result.ai_primitives) <= {"Agents", "Pricing"}


def test_helpers():
    assert find_vendor("Shares of NVIDIA rose; NVIDIA and Microsoft said") == "NVIDIA"
    assert find_vendor("no company here") is None
    assert find_date("published 2026-02-30 then 3 March 2025") == date(2025, 3, 3)
    assert find_date("nothing") is None
