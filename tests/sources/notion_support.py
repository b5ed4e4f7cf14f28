"""Helpers for tests of the Notion store: settings, a store on the fake, captured events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knowledge_pipeline.config import Settings
from knowledge_pipeline.services import RetryPolicy, ServiceGateway
from knowledge_pipeline.sources.notion import NotionStore
from knowledge_pipeline.telemetry import Telemetry
from tests.fakes.notion_server import FakeNotion


def notion_settings(fake: FakeNotion, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        sources_backend="notion",
        notion_token=fake.token,
        notion_base_url=fake.url,
        notion_sources_db=fake.database_id,
        api_timeout=10.0,
        retry_attempts=2,
        notion_max_rps=1000.0,
        parallel_rate_limit=0.0,
    )
    values.update(overrides)
    return Settings(**values)


@dataclass
class Events:
    """Every telemetry event of a test, in order."""

    records: list[tuple[str, dict]] = field(default_factory=list)

    def __call__(self, event_type: str, data: dict) -> None:
        self.records.append((event_type, data))

    def of(self, event_type: str) -> list[dict]:
        return [data for kind, data in self.records if kind == event_type]

    def notion_calls(self) -> list[str]:
        """Operations of the Notion requests, one per attempt (complete, retry or error)."""
        kinds = ("api_call_complete", "api_call_retry", "api_call_error")
        return [d["operation"] for k, d in self.records if k in kinds and d.get("service") == "notion"]

    def clear(self) -> None:
        self.records.clear()


def notion_store(fake: FakeNotion, *, max_rps: float = 1000.0, retries: int = 2, **overrides: Any
                 ) -> tuple[NotionStore, Events]:
    """A NotionStore (not opened) on the fake, with fast backoff and an event recorder."""
    events = Events()
    telemetry = Telemetry("tests.notion")
    telemetry.add_observer(events)
    gateway = ServiceGateway(
        telemetry, spacing=0, notion_max_rps=max_rps,
        retry=RetryPolicy(retries=retries, backoff_base=0.01, backoff_max=0.05),
    )
    return NotionStore(notion_settings(fake, retry_attempts=retries, **overrides), gateway), events
