"""Full-text search of the SQLite store: FTS5 queries, ranking, snippets, and an index kept in step."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from knowledge_pipeline.errors import SearchQueryError
from knowledge_pipeline.models import Enrichment, NewItem, SourceType, Status
from knowledge_pipeline.sources import search_index
from knowledge_pipeline.sources.base import ItemQuery
from knowledge_pipeline.sources.search_index import HIT_END, HIT_START
from knowledge_pipeline.sources.sqlite import MIGRATIONS, SqliteStore
from tests.conftest import with_store


def run(path: Path, scenario: Callable[[SqliteStore], Awaitable[Any]]) -> Any:
    return with_store(SqliteStore(path), scenario)


def new(n: int, title: str) -> NewItem:
    return NewItem(title=title, source_type=SourceType.RSS, hash=f"h{n}", url=f"https://example.com/{n}",
                   created_date=date(2024, 1, n))


def enrichment(executive: str, insights: tuple[str, ...] = ("Costs fell by 30%.",), **extra: Any) -> Enrichment:
    values: dict[str, Any] = dict(summary="A short summary of the piece.", executive_summary=executive,
                                  content_type="Market News", ai_primitives=("Research",), vendor="Acme",
                                  key_insights=insights)
    values.update(extra)
    return Enrichment(**values)


async def corpus(store: SqliteStore) -> dict[str, str]:
    ids = {}
    routers = await store.add(new(1, "Model routers in production"))
    await store.write_enrichment(routers, enrichment("Acme ships a router that picks a model per request."),
                                 "Routing sends easy prompts to small models. The café naïve test sits here.")
    body_only = await store.add(new(2, "Quarterly notes"))
    await store.write_enrichment(body_only, enrichment("Notes from the quarter.", vendor="Globex"),
                                 "Deep inside the full text, one paragraph mentions routers once.")
    agents = await store.add_enriched(new(3, "Agents that write code"),
                                      enrichment("Coding agents open pull requests.", ("Agents cut review time.",),
                                                 ai_primitives=("Coding",)),
                                      "Agentic coding tools plan, edit and test. They also route tasks.")
    inbox = await store.add(new(4, "Pasta recipes for routers"))
    ids.update(routers=routers.id, body_only=body_only.id, agents=agents.id, inbox=inbox.id)
    return ids


def titles(page: search_index.SearchPage) -> list[str]:
    return [hit.item.title for hit in page.hits]


def test_ranked_by_bm25_with_the_title_weighing_most_and_snippets_highlighted(tmp_path: Path) -> None:
    async def scenario(store: SqliteStore) -> Any:
        await corpus(store)
        return await store.search("routers")

    page = run(tmp_path / "s.db", scenario)
    assert page.total == 3
    assert titles(page)[-1] == "Quarterly notes", "a word deep in the full text ranks below title matches"
    assert set(titles(page)[:2]) == {"Model routers in production", "Pasta recipes for routers"}
    scores = [hit.score for hit in page.hits]
    assert scores == sorted(scores), "best (lowest bm25) first"
    snippet = page.hits[-1].snippet
    assert f"{HIT_START}routers{HIT_END}" in snippet and "full text" in snippet


@pytest.mark.parametrize("query, expected", [
    ('"model per request"', {"Model routers in production"}),
    ("agent*", {"Agents that write code"}),
    ("route", {"Model routers in production", "Agents that write code"}),  # stemmed: routing, route
    ("routers NOT pasta", {"Model routers in production", "Quarterly notes"}),
    ("pasta OR quarter", {"Pasta recipes for routers", "Quarterly notes"}),
    ("cafe naive", {"Model routers in production"}),  # accents ignored
    ("title: agents", {"Agents that write code"}),
    ("NEAR(small models, 2)", {"Model routers in production"}),
    ("nothingmatchesthis", set()),
])
def test_fts5_query_syntax(tmp_path: Path, query: str, expected: set[str]) -> None:
    async def scenario(store: SqliteStore) -> Any:
        await corpus(store)
        return await store.search(query)

    assert set(titles(run(tmp_path / "s.db", scenario))) == expected


@pytest.mark.parametrize("query", ["routers AND", "GPT-4", '"unclosed', "(a OR", "*"])
def test_a_query_fts5_rejects_is_one_clear_line(tmp_path: Path, query: str) -> None:
    async def scenario(store: SqliteStore) -> Any:
        await corpus(store)
        return await store.search(query)

    with pytest.raises(SearchQueryError) as caught:
        run(tmp_path / "s.db", scenario)
    message = str(caught.value)
    assert "\n" not in message and repr(query) in message and "double quotes" in message


def test_filters_limit_and_offset_apply_to_search(tmp_path: Path) -> None:
    async def scenario(store: SqliteStore) -> Any:
        await corpus(store)
        return (
            await store.search("routers", ItemQuery(status=Status.ENRICHED)),
            await store.search("routers", ItemQuery(vendor="globex")),
            await store.search("route", ItemQuery(primitive="coding")),
            await store.search("routers OR route", ItemQuery(limit=2, offset=1)),
            await store.search("routers OR route", ItemQuery(limit=2)),
        )

    enriched, globex, coding, second_page, first_page = run(tmp_path / "s.db", scenario)
    assert set(titles(enriched)) == {"Model routers in production", "Quarterly notes"} and enriched.total == 2
    assert titles(globex) == ["Quarterly notes"]
    assert titles(coding) == ["Agents that write code"]
    assert len(second_page.hits) == 2 and second_page.total == 4
    assert titles(second_page)[0] == titles(first_page)[1]


def test_every_write_keeps_the_index_in_step(tmp_path: Path) -> None:
    async def scenario(store: SqliteStore) -> Any:
        ids = await corpus(store)
        search_index.check(store.db)
        item = await store.get(ids["routers"])
        await store.write_enrichment(item, enrichment("Now about gardening."), "Tomatoes and basil.", repair=True)
        await store.mark_failed(await store.get(ids["inbox"]), "HTTP 404")
        await store.retry_failed()
        search_index.check(store.db)
        return (await store.search("tomatoes"), await store.search('"model per request"'),
                await store.search("pasta"))

    tomatoes, old_words, pasta = run(tmp_path / "s.db", scenario)
    assert titles(tomatoes) == ["Model routers in production"]
    assert old_words.total == 0, "the text an item no longer has is no longer found"
    assert titles(pasta) == ["Pasta recipes for routers"]


def test_a_write_that_fails_midway_leaves_text_and_index_as_before(tmp_path: Path) -> None:
    async def scenario(store: SqliteStore) -> Any:
        ids = await corpus(store)
        item = await store.get(ids["routers"])
        broken = enrichment("Half written.", insights=(None,))  # type: ignore[arg-type]
        with pytest.raises(sqlite3.IntegrityError):
            await store.write_enrichment(item, broken, "A text about zeppelins.")
        search_index.check(store.db)
        return await store.search("zeppelins"), await store.search('"model per request"')

    zeppelins, kept = run(tmp_path / "s.db", scenario)
    assert zeppelins.total == 0 and kept.total == 1


def test_the_migration_indexes_a_database_made_before_search_existed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    name, initial = MIGRATIONS[0]
    initial(db)
    db.execute("INSERT INTO _migrations VALUES (?, '2024-01-01T00:00:00+00:00')", (name,))
    db.execute("""INSERT INTO items (id, title, status, source_type, url, hash, summary, ai_primitives,
                  added_at, updated_at) VALUES ('old1', 'Zeppelin logistics', 'Enriched', 'RSS',
                  'https://example.com/z', 'hz', 'Airships move freight.', '[]', '2024-01-01T00:00:00+00:00',
                  '2024-01-01T00:00:00+00:00')""")
    db.execute("INSERT INTO blocks VALUES ('old1', 'Raw', 3, 'Helium supply limits the fleet.')")
    db.close()

    async def scenario(store: SqliteStore) -> Any:
        search_index.check(store.db)
        applied = [r[0] for r in store.db.execute("SELECT name FROM _migrations ORDER BY name")]
        return applied, await store.search("helium"), await store.search("airships")

    applied, helium, airships = run(path, scenario)
    assert "m005_search_index" in applied
    assert titles(helium) == ["Zeppelin logistics"] and titles(airships) == ["Zeppelin logistics"]


def test_only_the_newest_matches_are_ranked_beyond_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_index, "RANKED_MATCHES", 3)

    async def scenario(store: SqliteStore) -> Any:
        await store.add_enriched(new(1, "Routers routers routers"), enrichment("Routers everywhere."), "routers")
        for n in range(2, 6):
            await store.add_enriched(new(n, f"Item {n}"), enrichment("Plain."), "one mention of routers")
        return await store.search("routers"), await store.search("routers", ItemQuery(limit=2, offset=2))

    ranked, last_page = run(tmp_path / "s.db", scenario)
    assert ranked.total == 5 and not ranked.more, "the count is of every match"
    assert sorted(h.item.title for h in ranked.hits) == ["Item 3", "Item 4", "Item 5"], (
        "the oldest match, the best one, is past the cap")
    assert ranked.reachable == 3 and len(last_page.hits) == 1


def test_a_filtered_count_stops_at_its_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_index, "COUNTED_MATCHES", 2)

    async def scenario(store: SqliteStore) -> Any:
        await corpus(store)
        return await store.search("summary", ItemQuery(status=Status.ENRICHED)), await store.search("summary")

    filtered, plain = run(tmp_path / "s.db", scenario)
    assert (filtered.total, filtered.more) == (2, True) and len(filtered.hits) == 3
    assert (plain.total, plain.more) == (3, False), "without filters the count is exact and cheap"
