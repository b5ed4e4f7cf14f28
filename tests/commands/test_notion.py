"""``notion setup`` and ``notion check`` against the fake Notion server."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from knowledge_pipeline.commands.notion import handle_check, handle_setup
from knowledge_pipeline.models import Taxonomy
from tests.conftest import clean_env, run_script, with_store
from tests.fakes.notion_server import FakeNotion, sources_schema, start_fake_notion
from tests.sources.notion_support import notion_settings, notion_store


def check(fake: FakeNotion, capsys: pytest.CaptureFixture[str], **settings: object) -> tuple[int, str]:
    code = handle_check(argparse.Namespace(), notion_settings(fake, **settings))
    return code, capsys.readouterr().out


def test_check_passes_on_the_full_schema(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None) as fake:
        code, out = check(fake, capsys)
        assert code == 0 and "has every property the pipeline needs" in out


def test_check_on_the_original_schema_recommends_the_error_property(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(database="original", rps=None) as fake:
        code, out = check(fake, capsys)
        assert code == 0
        assert '[recommended] Error: missing; fix: add a rich_text property named "Error"' in out
        assert '[recommended] Category: missing; fix: add a select property named "Category"' in out


def test_check_fails_on_missing_and_mistyped_properties_and_says_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.set_property("Hash", None)
        fake.set_property("Summary", {"type": "select", "select": {}})
        fake.set_property("Article URL", None)
        fake.set_property("Title", {"name": "Name"})
        code, out = check(fake, capsys)
        assert code == 1
        assert '[error] Hash: missing; fix: add a rich_text property named "Hash"' in out
        assert '[error] Summary: is select, expected rich_text; fix: change the type of "Summary" to rich_text' in out
        assert "set RSS_URL_PROP to the name of your url property" in out
        assert '[recommended] Title: the title property is called "Name"' in out
        assert "3 required properties wrong, 1 recommended" in out


def test_check_follows_renamed_properties(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None) as fake:
        fake.set_property("Article URL", {"name": "Link"})
        assert check(fake, capsys)[0] == 1
        assert check(fake, capsys, rss_url_prop="Link")[0] == 0


def test_check_reports_missing_status_options(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None, database=None) as fake:
        schema = sources_schema("full", status_type="status")
        schema["Status"] = {"status": {"options": [{"name": "Inbox"}]}}
        fake.create_sources_database(properties=schema)
        code, out = check(fake, capsys)
        assert code == 1 and "status options missing: Enriched, Failed" in out


def test_check_with_a_bad_token_fails_without_showing_it(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None) as fake:
        code = handle_check(argparse.Namespace(), notion_settings(fake, notion_token="ntn_secret_123"))
        captured = capsys.readouterr()
        assert code == 1 and "unauthorized" in captured.err
        assert "ntn_secret_123" not in captured.err + captured.out


def test_setup_creates_a_database_the_store_and_check_accept(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None, database=None) as fake:
        settings = notion_settings(fake, notion_sources_db=None)
        code = handle_setup(argparse.Namespace(parent_page=fake.root_page_id), settings)
        out = capsys.readouterr().out
        assert code == 0
        database_id = out.strip().splitlines()[-1].removeprefix("NOTION_SOURCES_DB=")
        assert f"Created the Sources database {database_id}" in out
        fake.database_id = database_id
        assert check(fake, capsys) == (0, f"The Sources database {database_id} has every property the pipeline "
                                          "needs.\n")
        store, events = notion_store(fake)

        async def taxonomy() -> Taxonomy:
            await store.open()
            try:
                return await store.taxonomy()
            finally:
                await store.close()

        assert asyncio.run(taxonomy()) == Taxonomy()
        assert not events.of("notion_schema_warning") and not events.of("taxonomy_fallback")
        source = asyncio.run(_data_source(fake, database_id))
        status = source["properties"]["Status"]
        assert [o["name"] for o in status["select"]["options"]] == ["Inbox", "Enriched", "Failed", "Duplicate"]
        assert source["properties"]["Error"]["type"] == "rich_text"


async def _data_source(fake: FakeNotion, database_id: str) -> dict:
    from notion_client import AsyncClient

    client = AsyncClient(auth=fake.token, base_url=fake.url, retry=False)
    try:
        database = await client.databases.retrieve(database_id)
        return await client.data_sources.retrieve(database["data_sources"][0]["id"])
    finally:
        await client.aclose()


def test_setup_creates_the_options_of_the_taxonomy_file(capsys: pytest.CaptureFixture[str]) -> None:
    mine = Taxonomy(content_types=("Regulation", "Product Launch"), ai_primitives=("Agents", "Speech"))
    with start_fake_notion(rps=None, database=None) as fake:
        code = handle_setup(argparse.Namespace(parent_page=fake.root_page_id),
                            notion_settings(fake, notion_sources_db=None, taxonomy=mine))
        assert code == 0
        fake.database_id = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("NOTION_SOURCES_DB=")
        assert with_store(notion_store(fake, taxonomy=mine)[0], lambda store: store.taxonomy()) == mine


def test_setup_needs_a_parent_page(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None, database=None) as fake:
        code = handle_setup(argparse.Namespace(parent_page=None), notion_settings(fake))
        assert code == 2 and "NOTION_PARENT_PAGE" in capsys.readouterr().err


def test_the_commands_run_from_the_command_line(tmp_path) -> None:
    with start_fake_notion(rps=None, database=None) as fake:
        env = clean_env(NOTION_TOKEN=fake.token, NOTION_BASE_URL=fake.url, NOTION_PARENT_PAGE=fake.root_page_id)
        setup = run_script(["-m", "knowledge_pipeline", "notion", "setup"], tmp_path, env)
        assert setup.returncode == 0, setup.stderr
        env_line = setup.stdout.strip().splitlines()[-1]
        assert env_line.startswith("NOTION_SOURCES_DB=")
        (tmp_path / ".env").write_text(env_line + "\n")
        checked = run_script(["-m", "knowledge_pipeline", "notion", "check"], tmp_path, env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "has every property the pipeline needs" in checked.stdout


def test_check_names_every_data_source_and_the_one_it_checks(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None) as fake:
        archive = fake.add_data_source("Archive", kind="original")
        code, out = check(fake, capsys)
        assert code == 0 and "has every property the pipeline needs" in out
        assert f"has 2 data sources: \"Sources\" ({fake.data_source_id}), \"Archive\" ({archive})" in out
        assert f"using the first, \"Sources\" ({fake.data_source_id})" in out
        assert "set NOTION_SOURCES_DB to its data source id" in out
        code, out = check(fake, capsys, notion_sources_db=archive)
        assert code == 0 and "[recommended] Error: missing" in out and "data sources" not in out


def test_setup_does_not_make_a_second_database_when_one_is_configured(capsys: pytest.CaptureFixture[str]) -> None:
    with start_fake_notion(rps=None) as fake:
        before = fake.stats()
        code = handle_setup(argparse.Namespace(parent_page=fake.root_page_id), notion_settings(fake))
        captured = capsys.readouterr()
        assert code == 2 and captured.out == ""
        assert f"NOTION_SOURCES_DB is already set ({fake.database_id})" in captured.err
        assert "notion check" in captured.err and len(captured.err.strip().splitlines()) == 1
        assert fake.stats()["requests"] == before["requests"], "nothing was sent"
