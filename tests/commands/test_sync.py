"""``sync`` from the command line: counts, exit codes, the lock, and a sync killed midway run again."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from knowledge_pipeline.config import load_settings
from knowledge_pipeline.journal import RunLock
from knowledge_pipeline.run_locks import notion_lock_path
from knowledge_pipeline.sources.sqlite import SqliteStore
from tests.commands.conftest import Cli
from tests.conftest import ROOT, clean_env, events
from tests.fakes.notion_server import FakeNotion, start_fake_notion
from tests.sources.test_sync import fill_local


def fill(path: Path, enriched: int = 3) -> None:
    async def main() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await fill_local(store, enriched=enriched)
        finally:
            await store.close()

    asyncio.run(main())


def notion_env(fake: FakeNotion, tmp_path: Path, db: str = "sources.db") -> dict[str, str]:
    return dict(NOTION_TOKEN=fake.token, NOTION_SOURCES_DB=fake.database_id, NOTION_BASE_URL=fake.url,
                SOURCES_DB_PATH=str(tmp_path / db), NOTION_MAX_RPS="1000", PARALLEL_RATE_LIMIT="0")


def test_to_and_from_notion_print_their_counts(cli: Cli, tmp_path: Path) -> None:
    fill(tmp_path / "sources.db")
    with start_fake_notion(rps=None) as fake:
        to = cli("sync", "--to", "notion", **notion_env(fake, tmp_path))
        assert to.code == 0, to.err
        assert to.out.strip() == ("sync --to notion: 5 copied (3 Enriched, 1 Failed, 1 Inbox), 0 already there "
                                  "(to the Notion database)")
        again = cli("sync", "--to", "notion", **notion_env(fake, tmp_path))
        assert again.out.strip() == "sync --to notion: 0 copied, 5 already there (to the Notion database)"
        back = cli("sync", "--from", "notion", **notion_env(fake, tmp_path, "copy.db"))
        assert back.code == 0, back.err
        assert back.out.startswith("sync --from notion: 5 copied (3 Enriched, 1 Failed, 1 Inbox), 0 already there")
        found = cli("search", "zeppelins", "--json", **notion_env(fake, tmp_path, "copy.db"))
        assert len(json.loads(found.out)) == 3, "Notion users search their local copy"
    done = events(tmp_path / "logs", "sync_complete")
    assert [(e["direction"], e["copied"]) for e in done] == [("to_notion", 5), ("to_notion", 0), ("from_notion", 5)]


def test_settings_missing_or_the_store_busy(cli: Cli, tmp_path: Path) -> None:
    missing = cli("sync", "--to", "notion", SOURCES_DB_PATH=str(tmp_path / "s.db"))
    assert missing.code == 2 and "set NOTION_TOKEN and NOTION_SOURCES_DB" in missing.err
    assert cli("sync").code == 2
    with start_fake_notion(rps=None) as fake:
        env = notion_env(fake, tmp_path)
        settings = load_settings(env, env_file=None)
        with RunLock(notion_lock_path(settings, settings.notion_sources_db or "")):
            busy = cli("sync", "--to", "notion", **env)
        assert busy.code == 75 and "nothing was done" in busy.err
        assert fake.stats()["requests"] == 0


def test_to_notion_also_holds_the_lock_of_the_data_source_the_id_resolves_to(cli: Cli, tmp_path: Path) -> None:
    """As a run does: a sync given the database id and a run given its data source id exclude each other."""
    fill(tmp_path / "sources.db")
    with start_fake_notion(rps=None) as fake:
        env = notion_env(fake, tmp_path)
        settings = load_settings(env, env_file=None)
        with RunLock(notion_lock_path(settings, fake.data_source_id)):
            busy = cli("sync", "--to", "notion", **env)
        assert busy.code == 75 and "nothing was done" in busy.err, busy.err
        assert fake.pages() == []
        by_data_source = cli("sync", "--to", "notion", **{**env, "NOTION_SOURCES_DB": fake.data_source_id})
        assert by_data_source.code == 0, by_data_source.err
        assert len(fake.pages()) == 5, "given the data source id, its one lock is taken once"


def test_a_failed_item_is_exit_1_and_the_others_are_copied(cli: Cli, tmp_path: Path) -> None:
    fill(tmp_path / "sources.db")
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(400, method="POST", path="/v1/pages", skip=2, message="body failed validation")
        done = cli("sync", "--to", "notion", **notion_env(fake, tmp_path))
        assert done.code == 1 and "1 failed" in done.out
        assert "1 item failed" in done.err and len(fake.pages()) == 4
        assert cli("sync", "--to", "notion", **notion_env(fake, tmp_path)).code == 0
        assert len(fake.pages()) == 5


@pytest.mark.parametrize("direction", ["--to", "--from"])
def test_a_sync_killed_midway_finishes_on_the_next_run_with_nothing_twice(tmp_path: Path, direction: str) -> None:
    items = 30
    with start_fake_notion(rps=None) as fake:
        if direction == "--to":
            fill(tmp_path / "sources.db", enriched=items)
            db = "sources.db"
        else:
            fill(tmp_path / "mine.db", enriched=items)
            subprocess.run([sys.executable, "-m", "knowledge_pipeline", "sync", "--to", "notion"], cwd=tmp_path,
                           env=clean_env(**notion_env(fake, tmp_path, "mine.db"), PYTHONPATH=str(ROOT)),
                           check=True, capture_output=True, timeout=120)
            db = "copy.db"

        async def local() -> tuple[int, int]:
            store = SqliteStore(tmp_path / db)
            await store.open()
            try:
                enriched = [i async for i in store.list_items()]
                with_body = [bool((await store.body(i.id)).get("Raw")) for i in enriched].count(True)
                return len(enriched), with_body
            finally:
                await store.close()

        fake.configure(latency=0.05)
        env = clean_env(**notion_env(fake, tmp_path, db), PYTHONPATH=str(ROOT), LOG_DIR=str(tmp_path / "logs"))
        command = [sys.executable, "-m", "knowledge_pipeline", "sync", direction, "notion"]
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        endpoint = "pages.create" if direction == "--to" else "blocks.children.list"
        deadline = time.monotonic() + 60
        while fake.stats()["by_endpoint"].get(endpoint, 0) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        fake.configure(latency=0)
        if direction == "--to":
            assert 10 <= len(fake.pages()) < items + 2, "killed midway"
        else:
            assert asyncio.run(local())[0] < items + 2, "killed midway"
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        hashes = Counter(fake.values(p["id"])["Hash"] for p in fake.pages())
        assert len(hashes) == items + 2 and set(hashes.values()) == {1}, "every item once in Notion"

        count, with_body = asyncio.run(local())
    assert count == items + 2 and with_body == items
    if direction == "--to":
        assert all(fake.values(p["id"])["Status"] in ("Enriched", "Inbox", "Failed") for p in fake.pages())
