"""The original's analyses in the one structured call; user-defined ones; the offline placeholders."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.enrichers.analyses import ORIGINAL, Analysis
from knowledge_pipeline.enrichers.core import LLMEnricher
from knowledge_pipeline.enrichers.local import LocalEnricher
from knowledge_pipeline.enrichers.transport import Prompt, Reply
from knowledge_pipeline.errors import ConfigError
from knowledge_pipeline.models import Enrichment, Item, SourceType, Taxonomy
from knowledge_pipeline.telemetry import Telemetry
from tests.enrichers.test_openai import TEXT, Doc, long_text, run
from tests.fakes.openai_server import start_fake_openai

TYPICAL_ARTICLE_CHARS = 12_000  # about 3,000 tokens, the typical article of docs/openai.md


def test_original_is_the_issues_list_of_sections() -> None:
    assert [a.title for a in ORIGINAL] == [
        "Bullet Overview", "Risks, Opportunities and Implications", "Market and Competitor Insights",
        "Thematic Tags", "Audience Personas", "Social Posts", "Newsletter Paragraph", "Q&A", "SWOT",
        "Action Items", "Metadata", "Related Items", "FAQs", "Talk Outline",
    ]
    assert {a.shape for a in ORIGINAL} == {"paragraph", "bullets", "table"}


def test_all_original_analyses_come_from_one_call_in_order() -> None:
    with start_fake_openai() as fake:
        r = run(fake, [Doc()], analyses=ORIGINAL)
        (request,) = fake.requests()
    enrichment = r.result
    assert isinstance(enrichment, Enrichment)
    assert [a.name for a in enrichment.analyses] == [a.name for a in ORIGINAL]
    assert all(a.lines and not a.placeholder for a in enrichment.analyses)
    schema_fields = request["messages"][0]["content"]
    assert "analyses" in schema_fields  # the system text names the field; the schema holds one entry each
    (complete,) = r.calls()
    assert complete["step"] == "single"


def test_prompt_tokens_with_the_original_analyses_stay_within_1_2x() -> None:
    """Measured with what the fake server counts (characters / 4 of messages and schema), not timing."""
    doc = Doc(text=long_text(TYPICAL_ARTICLE_CHARS))
    with start_fake_openai() as fake:
        run(fake, [doc])
        without = fake.stats()["usage"]["prompt_tokens"]
    with start_fake_openai() as fake:
        run(fake, [doc], analyses=ORIGINAL)
        with_all = fake.stats()["usage"]["prompt_tokens"]
        calls = fake.stats()["calls"]
    assert calls == 1
    assert with_all / without <= 1.2, (without, with_all)


def test_analyses_are_split_over_calls_only_when_one_answer_would_exceed_the_output_limit() -> None:
    with start_fake_openai() as fake:
        r = run(fake, [Doc()], analyses=ORIGINAL, max_output_tokens=1500)
        requests = fake.requests()
    enrichment = r.result
    assert isinstance(enrichment, Enrichment), enrichment
    assert [a.name for a in enrichment.analyses] == [a.name for a in ORIGINAL]
    steps = [c["step"] for c in r.calls()]
    assert steps[0] == "single" and set(steps[1:]) == {"analyses"} and len(steps) > 2
    first_system = requests[0]["messages"][0]["content"]
    assert all(rq["messages"][1] == requests[0]["messages"][1] for rq in requests), "every call reads the document"
    assert all(rq["messages"][0]["content"] != first_system for rq in requests[1:])


def test_an_analysis_the_model_leaves_out_is_a_marked_placeholder_not_a_failure() -> None:
    events: list[tuple[str, dict]] = []
    telemetry = Telemetry("test")
    telemetry.add_observer(lambda kind, data: events.append((kind, data)))
    wanted = (Analysis("swot", "SWOT", "S/W/O/T | Point", "table"), Analysis("tags", "Tags", "topic tags", "bullets"))

    class OneShot:
        service, model = "openai", "m"

        async def send(self, prompt: Prompt, *, context: dict[str, Any]) -> Reply:
            return Reply(data={
                "summary": "S.", "executive_summary": "E.", "content_type": "Market News",
                "ai_primitives": ["Coding"], "vendor": None, "key_insights": ["k"], "published_date": None,
                "analyses": {"swot": "S/W/O/T | Point\nS | Fast", "tags": ""},
            })

        async def context_tokens(self) -> None:
            return None

        async def close(self) -> None:
            return None

    enricher = LLMEnricher(OneShot(), telemetry, analyses=wanted)
    item = Item(id="i", title="T", source_type=SourceType.RSS)
    result = asyncio.run(enricher.enrich(item, TEXT, Taxonomy()))
    swot, tags = result.analyses
    assert swot.lines == ("S/W/O/T | Point", "S | Fast") and not swot.placeholder
    assert tags.placeholder and tags.lines[0].startswith("[Not available:")
    assert [data["analysis"] for kind, data in events if kind == "analysis_missing"] == ["tags"]


def test_the_local_enricher_writes_what_it_can_and_marks_the_rest() -> None:
    item = Item(id="i", title="Coding agents", source_type=SourceType.RSS)
    result = asyncio.run(LocalEnricher(ORIGINAL).enrich(item, TEXT, Taxonomy()))
    by_name = {a.name: a for a in result.analyses}
    assert [a.name for a in result.analyses] == [a.name for a in ORIGINAL]
    assert {n for n, a in by_name.items() if not a.placeholder} == {"overview", "tags", "metadata"}
    assert by_name["metadata"].lines[0] == "Field | Value" and "OpenAI" in by_name["metadata"].lines[1]
    assert all(a.lines == ("[Not available: the offline local enricher cannot write this analysis; "
                           "use ENRICHER=openai or anthropic]",) for a in result.analyses if a.placeholder)


def test_analyses_survive_the_journal() -> None:
    item = Item(id="i", title="Coding agents", source_type=SourceType.RSS)
    result = asyncio.run(LocalEnricher(ORIGINAL[:5]).enrich(item, TEXT, Taxonomy()))
    assert Enrichment.from_dict(result.to_dict()) == result


# --- configuration ------------------------------------------------------------------------


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "analyses.yaml"
    path.write_text(text)
    return str(path)


def test_a_file_defines_analyses_and_they_run_by_default(tmp_path: Path) -> None:
    path = _file(tmp_path, """
analyses:
  - name: competitors
    title: Competitor Moves
    instruction: Which competitors are named and what they did.
    shape: bullets
  - name: pricing
    instruction: Prices named, as Product | Price.
    shape: table
""")
    settings = load_settings({"ANALYSES_FILE": path}, env_file=None)
    assert [(a.name, a.title, a.shape) for a in settings.analyses] == [
        ("competitors", "Competitor Moves", "bullets"), ("pricing", "Pricing", "table")]
    mixed = load_settings({"ANALYSES_FILE": path, "ANALYSES": "swot, pricing"}, env_file=None)
    assert [a.name for a in mixed.analyses] == ["swot", "pricing"]
    assert load_settings({"ANALYSES_FILE": path, "ANALYSES": "none"}, env_file=None).analyses == ()
    assert len(load_settings({"ANALYSES": "original"}, env_file=None).analyses) == len(ORIGINAL)
    assert load_settings({}, env_file=None).analyses == ()


@pytest.mark.parametrize("text, problem", [
    ("- name: Bad Name\n  instruction: x\n", "name must be lowercase"),
    ("- name: a\n  instruction: x\n  shape: poem\n", "shape must be one of paragraph, bullets, table"),
    ("- name: a\n  instruction: x\n- name: a\n  instruction: y\n", "unique"),
    ("- name: a\n  instruction: x\n  title: Raw\n", "standard toggle"),
    ("- name: a\n", "instruction must be"),
    ("just text", "expected a non-empty list"),
    ("- [unclosed", "expected YAML"),
])
def test_a_bad_analyses_file_is_one_line_naming_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings({"ANALYSES_FILE": path}, env_file=None)
    message = str(info.value)
    assert message.startswith("ANALYSES_FILE=") and problem in message and "\n" not in message


def test_an_unknown_analysis_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="expected none, original or names among .*swot"):
        load_settings({"ANALYSES": "swot,poetry"}, env_file=None)
