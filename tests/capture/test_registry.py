"""The source registry: one consistent description per kind, read by the runner, scripts, extractor and Notion."""

from __future__ import annotations

import argparse
import asyncio
import inspect

import pytest

from knowledge_pipeline.capture.registry import SOURCE_KINDS, kinds_of, locator_property, source_types_of
from knowledge_pipeline.commands.notion import handle_setup
from knowledge_pipeline.config import VARIABLES, Settings
from knowledge_pipeline.models import NewItem, SourceType, sha256_text
from knowledge_pipeline.runner import FEED_TYPES, PDF_TYPES
from tests.fakes.notion_server import start_fake_notion
from tests.sources.notion_support import notion_settings, notion_store


def test_each_kind_is_complete_and_kinds_sharing_a_type_agree():
    names = [kind.name for kind in SOURCE_KINDS]
    assert len(names) == len(set(names))
    for kind in SOURCE_KINDS:
        assert kind.script in ("feeds", "pdfs") and set(kind.settings) <= set(VARIABLES), kind.name
        assert kind.configured(Settings()) is False, f"{kind.name} must be off without its settings"
        parameters = inspect.signature(kind.capture_function()).parameters
        assert {"settings", "store", "telemetry", "known_hashes", "dry_run", *kind.needs} <= set(parameters), kind.name
        if kind.reader:
            reader = kind.reader_class()
            assert callable(reader.accepts) and inspect.iscoroutinefunction(reader.read)
        same_type = [k for k in SOURCE_KINDS if k.source_type is kind.source_type]
        assert {(k.locator, k.script) for k in same_type} == {(kind.locator, kind.script)}, kind.source_type


def test_the_scripts_enrich_the_types_their_sources_capture():
    assert FEED_TYPES == source_types_of("feeds") >= {SourceType.RSS, SourceType.WEBSITE}
    assert PDF_TYPES == source_types_of("pdfs") == {SourceType.PDF}
    assert [k.name for k in kinds_of("pdfs")] == ["pdfs", "drive"]
    settings = Settings()
    assert locator_property(SourceType.PDF, settings) == "Drive URL"
    assert locator_property(SourceType.WEBSITE, settings) == "Article URL"


def test_notion_setup_offers_every_source_type(capsys):
    from notion_client import AsyncClient

    with start_fake_notion(rps=None, database=None) as fake:
        code = handle_setup(argparse.Namespace(parent_page=fake.root_page_id), notion_settings(fake, notion_sources_db=None))
        database_id = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("NOTION_SOURCES_DB=")

        async def source_type_options() -> list[str]:
            client = AsyncClient(auth=fake.token, base_url=fake.url, retry=False)
            try:
                database = await client.databases.retrieve(database_id)
                source = await client.data_sources.retrieve(database["data_sources"][0]["id"])
            finally:
                await client.aclose()
            return [o["name"] for o in source["properties"]["Source Type"]["select"]["options"]]

        names = asyncio.run(source_type_options())
    assert code == 0 and names == [t.value for t in SourceType]


@pytest.mark.parametrize("database", ["original", "full"])
def test_the_notion_store_accepts_every_source_type_and_finds_each_in_the_inbox(database):
    """The original database has options RSS, Website and PDF only: Notion adds a new one on first use."""
    with start_fake_notion(database=database, rps=None) as fake:
        store, _ = notion_store(fake)

        async def run():
            await store.open()
            try:
                for source_type in SourceType:
                    location = {"pdf_path": "https://drive.google.com/file/d/1AbCdEfGhIjKlMn/view"} \
                        if source_type is SourceType.PDF else {} if source_type is SourceType.EMAIL \
                        else {"url": f"https://example.com/{source_type.value}"}
                    await store.add(NewItem(title=source_type.value, source_type=source_type,
                                            hash=sha256_text(source_type.value), **location))
                by_script = {}
                for script, types in (("feeds", FEED_TYPES), ("pdfs", PDF_TYPES)):
                    by_script[script] = sorted([i.title async for i in store.inbox(types)])
                everything = sorted([i.title async for i in store.inbox()])
                return by_script, everything
            finally:
                await store.close()

        by_script, everything = asyncio.run(run())
    assert by_script["pdfs"] == ["PDF"]
    assert set(by_script["feeds"]) >= {"RSS", "Website"}
    assert everything == sorted(t.value for t in SourceType)
