"""``list``: newest first, filters, columns that fit the terminal, errors in their own column, "N of M items"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.commands.conftest import Cli
from tests.reading.library import LONG_TITLE, build_library


@pytest.fixture
def library(tmp_path: Path) -> dict[str, str]:
    return {"SOURCES_DB_PATH": str(tmp_path / "sources.db"), **{"_ids": build_library(tmp_path / "sources.db")}}


def env(library: dict) -> dict[str, str]:
    return {"SOURCES_DB_PATH": library["SOURCES_DB_PATH"]}


def titles_in(out: str) -> list[str]:
    return [line for line in out.splitlines()[1:-1]]


def test_a_wide_terminal_shows_whole_titles_and_every_line_fits(cli: Cli, library: dict) -> None:
    done = cli("list", columns=200, **env(library))
    assert done.code == 0, done.err
    assert LONG_TITLE in done.out, "no title cut at 58 characters on a 200-column terminal"
    assert all(len(line) <= 200 for line in done.out.splitlines())


@pytest.mark.parametrize("columns", [80, 100, 140])
def test_every_line_fits_narrower_terminals(cli: Cli, library: dict, columns: int) -> None:
    done = cli("list", columns=columns, **env(library))
    lines = done.out.splitlines()
    assert all(len(line) <= columns for line in lines), [line for line in lines if len(line) > columns]
    assert "…" in done.out, "what does not fit is cut with an ellipsis"


def test_newest_first_with_the_error_of_a_failed_item_in_its_own_column(cli: Cli, library: dict) -> None:
    done = cli("list", columns=200, **env(library))
    header, *rows, footer = done.out.splitlines()
    assert header.split()[:5] == ["ID", "Status", "Type", "Added", "Content-Type"]
    assert header.rstrip().endswith("Error")
    assert [r.split()[3] for r in rows] == ["2024-06-06", "2024-06-05", "2024-06-04", "2024-06-03", "2024-06-02",
                                            "2024-06-01"]
    failed = next(r for r in rows if " Failed " in r)
    error_at = header.index("Error")
    assert failed[error_at:].startswith("HTTP 404 from example.com")
    assert "HTTP 404" not in failed[:error_at], "the error is not squeezed into the content-type cell"
    assert footer == "6 items: 4 Enriched, 1 Failed, 1 Inbox"


def test_a_limited_list_says_how_many_there_are(cli: Cli, library: dict) -> None:
    done = cli("list", "--limit", "3", **env(library))
    assert done.out.splitlines()[-1] == "3 of 6 items: 1 Enriched, 1 Failed, 1 Inbox"
    assert "Error" in done.out.splitlines()[0]
    assert cli("list", "--limit", "3", "--status", "enriched", **env(library)).out.splitlines()[-1] == (
        "3 of 4 items: 3 Enriched")
    assert cli("list", "--limit", "10", **env(library)).out.splitlines()[-1].startswith("6 items:")


def test_one_item_is_counted_in_the_singular(cli: Cli, library: dict) -> None:
    assert cli("list", "--vendor", "acme", **env(library)).out.splitlines()[-1] == "1 item: 1 Enriched"
    assert cli("list", "--limit", "1", **env(library)).out.splitlines()[-1] == "1 of 6 items: 1 Enriched"


@pytest.mark.parametrize("args, expected", [
    (["--type", "market news"], ["xss", "agents"]),
    (["--vendor", "acme"], ["router"]),
    (["--primitive", "Coding"], ["agents", "router"]),
    (["--source-type", "pdf"], ["report"]),
    (["--status", "Failed"], ["failed"]),
    (["--since", "2024-06-04"], ["xss", "inbox", "failed"]),
    (["--since", "2024-06-02T12:00", "--status", "enriched"], ["xss", "report"]),
    (["--oldest-first", "--limit", "2"], ["router", "agents"]),
])
def test_filters(cli: Cli, library: dict, args: list[str], expected: list[str]) -> None:
    done = cli("list", "--json", *args, **env(library))
    assert done.code == 0, done.err
    ids = {v: k for k, v in library["_ids"].items()}
    assert [ids[item["id"]] for item in json.loads(done.out)] == expected


def test_json_has_the_readme_keys_and_the_new_ones(cli: Cli, library: dict) -> None:
    (item,) = json.loads(cli("list", "--json", "--vendor", "Acme", **env(library)).out)
    assert {"id", "title", "status", "source_type", "url", "content_type", "ai_primitives", "vendor",
            "created_date", "summary", "error"} <= set(item)
    assert item["added_at"] == "2024-06-01T09:00:00+00:00" and item["warnings"] == []
    assert item["summary"].startswith("Acme ships a model router")


def test_no_match_and_bad_filters(cli: Cli, library: dict) -> None:
    assert cli("list", "--vendor", "Nobody", **env(library)).out.strip() == "no items"
    bad = cli("list", "--since", "last tuesday", **env(library))
    assert bad.code == 2 and "'last tuesday' is not a duration such as 90m" in bad.err
    assert cli("list", "--status", "Done", **env(library)).code == 2
    for since, says in (("9999999d", "reaches back before the year 1"), ("99999999999w", "reaches back before"),
                        ("0001-01-01T00:00+05:00", "is before the year 1 in UTC")):
        too_far = cli("list", "--since", since, **env(library))
        assert too_far.code == 2 and f"{since!r} {says}" in too_far.err and "Traceback" not in too_far.err
        assert cli("digest", "--since", since, **env(library)).code == 2


def test_a_duplicate_shows_what_it_duplicates_in_the_error_column(cli: Cli, tmp_path: Path) -> None:
    """Issue 15: an Inbox copy of an enriched article is marked Duplicate, with the original named."""
    import asyncio

    from knowledge_pipeline.models import NewItem, SourceType
    from knowledge_pipeline.sources.sqlite import SqliteStore

    async def build() -> None:
        store = SqliteStore(tmp_path / "dup.db")
        await store.open()
        copy = await store.add(NewItem("A mirror of the story", SourceType.RSS, "h-copy", url="https://m.e.com/1"))
        await store.mark_duplicate(copy, 'Duplicate of "The story" (https://e.com/1): same canonical URL')
        await store.close()

    asyncio.run(build())
    done = cli("list", columns=160, SOURCES_DB_PATH=str(tmp_path / "dup.db"))
    header, row, footer = done.out.splitlines()
    assert row[header.index("Status"):].startswith("Duplicate ")
    assert row[header.index("Error"):].startswith('Duplicate of "The story"')
    assert footer.endswith(": 1 Duplicate")


def test_a_bad_setting_is_one_line_naming_the_command_and_the_variable(cli: Cli, library: dict) -> None:
    done = cli("list", OPENAI_BATCH="maybe", **env(library))
    assert done.code == 2 and done.out == ""
    assert done.err.strip() == ("list: configuration error: OPENAI_BATCH='maybe' is invalid: "
                                "expected one of auto, always, never")


def test_reading_md_says_what_the_commands_do() -> None:
    """The --json keys, the statuses --status takes and the marker of an interrupted copy, as the code has them."""
    from knowledge_pipeline.models import Item, SourceType, Status
    from knowledge_pipeline.reading.records import item_fields
    from knowledge_pipeline.sources.base import INCOMPLETE_BODY

    text = " ".join((Path(__file__).parents[2] / "docs" / "reading.md").read_text(encoding="utf-8").split())
    json_keys = text.split("`--json` prints an array of objects with", 1)[1].split("With Notion", 1)[0]
    named = set(re.findall(r"\w+", " ".join(re.findall(r"`([^`]+)`", json_keys))))
    assert named == set(item_fields(Item(id="x", title="t", source_type=SourceType.RSS)))
    status_row = next(row for row in text.split("| `--") if row.startswith("status S`"))
    assert all(status.value in status_row for status in Status)
    marker = INCOMPLETE_BODY.split(" (")[0]
    assert f"reason `{marker} ...`" in text
