"""TAXONOMY_FILE: the user's labels reach the SQLite store, the local enricher, OpenAI and `notion setup`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from knowledge_pipeline.config import Settings, load_settings
from knowledge_pipeline.enrichers.local import LocalEnricher
from knowledge_pipeline.enrichers.openai import OpenAIEnricher
from knowledge_pipeline.budget import Budget
from knowledge_pipeline.errors import ConfigError
from knowledge_pipeline.models import DEFAULT_AI_PRIMITIVES, Item, LabelHint, SourceType, Taxonomy
from knowledge_pipeline.services import RetryPolicy, ServiceGateway
from knowledge_pipeline.sources import open_store
from knowledge_pipeline.telemetry import Telemetry
from tests.fakes.openai_server import start_fake_openai

YAML = """\
content_types:
  - Product Launch
  - name: Regulation
    description: laws, rulings and standards that bind AI vendors or users
    keywords: [regulation, regulator, law, act, compliance, ruling]
  - Opinion
ai_primitives:
  - name: Agents
    keywords: [agent, agents, autonomous]
  - Speech
"""
TEXT = ("The European regulator published the final act on Monday. Compliance with the law starts in 2026. "
        "Every provider must document its models. The ruling also covers autonomous agents in public services. "
        "Fines reach six percent of revenue.")
ITEM = Item(id="i1", title="EU AI Act: the final text", source_type=SourceType.WEBSITE, url="https://example.com/act")


def settings_from(tmp_path: Path, name: str, content: str) -> Settings:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return load_settings({"TAXONOMY_FILE": str(path), "SOURCES_DB_PATH": str(tmp_path / "s.db")}, env_file=None)


def test_a_yaml_file_gives_labels_and_hints(tmp_path: Path) -> None:
    taxonomy = settings_from(tmp_path, "taxonomy.yaml", YAML).taxonomy
    assert taxonomy is not None
    assert taxonomy.content_types == ("Product Launch", "Regulation", "Opinion")
    assert taxonomy.ai_primitives == ("Agents", "Speech")
    assert taxonomy.hint("Regulation") == LabelHint(
        "Regulation", "laws, rulings and standards that bind AI vendors or users",
        ("regulation", "regulator", "law", "act", "compliance", "ruling"))


def test_a_json_file_and_a_list_left_out_keeps_the_default(tmp_path: Path) -> None:
    content = json.dumps({"content_types": ["News", {"name": "Paper", "keywords": ["arxiv"]}]})
    taxonomy = settings_from(tmp_path, "taxonomy.json", content).taxonomy
    assert taxonomy is not None
    assert taxonomy.content_types == ("News", "Paper") and taxonomy.ai_primitives == DEFAULT_AI_PRIMITIVES


@pytest.mark.parametrize("name, content, says", [
    ("t.yaml", "content_types: [A, B]\ncolours: [red]\n", "unknown key 'colours'"),
    ("t.yaml", "content_types: [News, news]\n", "lists 'news' twice"),
    ("t.yaml", "content_types: ['Market, News']\n", "no comma"),
    ("t.yaml", "content_types: []\n", "non-empty list"),
    ("t.yaml", "content_types: [A\n", "not valid YAML"),
    ("t.json", '{"content_types": ["A",]}', "not valid JSON"),
    ("t.yaml", "content_types:\n  - name: A\n    keywords: word\n", "keywords must be a list"),
    ("t.yaml", "- just a list\n", "expected an object"),
])
def test_a_bad_file_is_one_configuration_line(tmp_path: Path, name: str, content: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, name, content)
    message = str(caught.value)
    assert message.startswith("TAXONOMY_FILE=") and says in message and "\n" not in message


def test_the_sqlite_store_and_the_local_enricher_use_the_users_labels(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, "taxonomy.yaml", YAML)

    async def main() -> tuple[Taxonomy, object, object]:
        store = open_store(settings, ServiceGateway(Telemetry(), spacing=0))
        await store.open()
        try:
            taxonomy = await store.taxonomy()
        finally:
            await store.close()
        with_file = await LocalEnricher().enrich(ITEM, TEXT, taxonomy)
        default = await LocalEnricher().enrich(ITEM, TEXT, Taxonomy())
        return taxonomy, with_file, default

    taxonomy, with_file, default = asyncio.run(main())
    assert taxonomy == settings.taxonomy
    assert with_file.content_type == "Regulation", "the file's keywords decide the label"
    assert with_file.ai_primitives == ("Agents",)
    assert default.content_type not in taxonomy.content_types


def test_openai_is_asked_for_the_users_labels_with_their_descriptions(tmp_path: Path) -> None:
    taxonomy = settings_from(tmp_path, "taxonomy.yaml", YAML).taxonomy
    assert taxonomy is not None
    with start_fake_openai() as fake:
        settings = Settings(enricher="openai", openai_base_url=fake.url, openai_api_key=fake.api_key, api_timeout=5.0)
        gateway = ServiceGateway(Telemetry(), spacing=0, retry=RetryPolicy(retries=0))

        async def main() -> object:
            enricher = OpenAIEnricher(settings, gateway, Budget())
            try:
                return await enricher.enrich(ITEM, TEXT, taxonomy)
            finally:
                await enricher.close()

        result = asyncio.run(main())
        (request,) = fake.requests()
    assert result.content_type in taxonomy.content_types
    assert set(result.ai_primitives) <= set(taxonomy.ai_primitives)
    system = request["messages"][0]["content"]
    assert "Regulation (laws, rulings and standards that bind AI vendors or users)" in system
    assert "Product Launch" in system and "Market News" not in system
