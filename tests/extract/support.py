"""Helpers shared by the capture and extraction tests: settings, a gateway that records events, a store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from knowledge_pipeline.config import Settings, load_settings
from knowledge_pipeline.errors import ItemError
from knowledge_pipeline.extract import TextExtractor
from knowledge_pipeline.extract.decoding import supported_codings
from knowledge_pipeline.extract.fetch import Fetcher
from knowledge_pipeline.models import Item
from knowledge_pipeline.services import RetryPolicy, ServiceGateway
from knowledge_pipeline.sources.sqlite import SqliteStore
from knowledge_pipeline.telemetry import Telemetry


def coding_param(coding: str) -> Any:
    """A content-coding as a test parameter, skipped unless it is decoded here.

    ``br``/``zstd`` need their optional modules (brotli >= 1.2, zstandard >= 0.22,
    both in requirements-dev.txt); gzip and deflate never skip.
    """
    usable = ("gzip" if coding == "x-gzip" else coding) in supported_codings()
    return pytest.param(coding, marks=pytest.mark.skipif(not usable, reason=f"{coding} needs its optional module"))


def make_settings(**env: Any) -> Settings:
    """Settings from the given variables only (no .env, no process environment)."""
    return load_settings({k.upper(): str(v) for k, v in env.items()}, env_file=None)


class Recorder:
    """A Telemetry observer keeping every event, with helpers to look them up."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        self.events.append((event_type, data))

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [data for kind, data in self.events if kind == event_type]

    def types(self) -> list[str]:
        return [kind for kind, _ in self.events]


def make_telemetry() -> tuple[Telemetry, Recorder]:
    telemetry = Telemetry("knowledge_pipeline.tests")
    telemetry.logger.setLevel(logging.DEBUG)
    recorder = Recorder()
    telemetry.add_observer(recorder)
    return telemetry, recorder


def make_gateway(telemetry: Telemetry, retries: int = 2, sleeps: list[float] | None = None) -> ServiceGateway:
    """A gateway without real waiting between retries (waits are recorded in ``sleeps``)."""

    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return ServiceGateway(telemetry, spacing=0.0, retry=RetryPolicy(retries=retries), sleep=sleep)


@asynccontextmanager
async def fetcher_for(settings: Settings, **options: Any) -> AsyncIterator[tuple[Fetcher, Recorder]]:
    telemetry, recorder = make_telemetry()
    fetcher = Fetcher(settings, make_gateway(telemetry), **options)
    try:
        yield fetcher, recorder
    finally:
        await fetcher.close()


@asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path / "sources.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def all_items(store: SqliteStore) -> list:
    """Every item whole, with the text capture kept (``list_items`` leaves that text out)."""
    return [await store.get(item.id) async for item in store.list_items()]


def extract(target: Item, **env: Any) -> str | ItemError:
    """The text of one item through a real TextExtractor (no retries), or the ItemError it raised."""
    env.setdefault("allow_private_urls", "true")
    settings = make_settings(**env)
    telemetry, _ = make_telemetry()

    async def run() -> str | ItemError:
        extractor = TextExtractor(settings, make_gateway(telemetry, retries=0))
        try:
            return await extractor.extract(target)
        except ItemError as exc:
            return exc
        finally:
            await extractor.close()

    return asyncio.run(run())


@contextmanager
def store_refusing(path: Path, url_like: str) -> Iterator[None]:
    """While open, the SQLite store at ``path`` refuses to insert items whose URL is LIKE ``url_like``.

    A trigger in the database itself, as a constraint or a full disk would refuse a write.
    """
    db = sqlite3.connect(path)
    try:
        pattern = "'" + url_like.replace("'", "''") + "'"  # a trigger takes no bound parameters
        db.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.url LIKE {pattern} "
                   "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        db.commit()
        yield
    finally:
        db.execute("DROP TRIGGER IF EXISTS refuse")
        db.commit()
        db.close()
