"""``search QUERY``: FTS5 results in the terminal and as JSON; a rejected query is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.conftest import Cli
from tests.reading.library import build_library


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    build_library(tmp_path / "sources.db")
    return {"SOURCES_DB_PATH": str(tmp_path / "sources.db")}


def test_results_best_first_with_highlighted_snippets_and_a_count(cli: Cli, env: dict[str, str]) -> None:
    done = cli("search", "routers", **env)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].startswith("1. A long headline on model routers")
    assert "[Enriched · Vendor Capability · Acme · 2024-06-01]" in lines[0]
    assert "**routers**" in done.out, "matches are marked when the output is not a terminal"
    assert "\x1b[" not in done.out
    assert lines[-1] == "1 result for 'routers'"


def test_phrase_prefix_boolean_and_filters(cli: Cli, env: dict[str, str]) -> None:
    def found(*args: str) -> list[str]:
        done = cli("search", *args, "--json", **env)
        assert done.code == 0, done.err
        return [r["title"] for r in json.loads(done.out)]

    assert found('"pull requests"') == ["Agents that open pull requests"]
    assert found("agent*") == ["Agents that open pull requests", "A long headline on model routers and agent "
                               "platforms that no table should cut at fifty-eight chars"]
    assert found("budgets NOT survey") == []
    assert found("budgets OR zeppelin") == ["State of enterprise AI", "A long headline on model routers and agent "
                                            "platforms that no table should cut at fifty-eight chars"]
    assert found("agent*", "--vendor", "globex") == ["Agents that open pull requests"]
    assert found("agent*", "--since", "2024-06-02") == ["Agents that open pull requests"]


def test_json_snippet_and_limit(cli: Cli, env: dict[str, str]) -> None:
    results = json.loads(cli("search", "full OR text", "--json", "--limit", "2", **env).out)
    assert len(results) == 2
    assert all("**" in r["snippet"] and isinstance(r["score"], float) for r in results)
    more = cli("search", "full OR text", "--limit", "2", **env).out.splitlines()[-1]
    assert more == "2 of 4 results for 'full OR text'"


@pytest.mark.parametrize("query", ["GPT-4", "routers AND", '"unclosed'])
def test_a_query_fts5_rejects_is_one_line_and_exit_2(cli: Cli, env: dict[str, str], query: str) -> None:
    done = cli("search", query, **env)
    assert done.code == 2 and done.out == ""
    (line,) = done.err.strip().splitlines()
    assert line.startswith(f"search: cannot search for {query!r}") and "double quotes" in line


def test_nothing_found(cli: Cli, env: dict[str, str]) -> None:
    done = cli("search", "nonexistentword", **env)
    assert done.code == 0 and done.out.strip() == "no results for 'nonexistentword'"


def test_notion_users_are_told_to_sync_first(cli: Cli, tmp_path: Path) -> None:
    done = cli("search", "agents", NOTION_TOKEN="secret_x", NOTION_SOURCES_DB="abc",
               SOURCES_DB_PATH=str(tmp_path / "missing.db"))
    assert done.code == 1
    assert "run `python3 -m knowledge_pipeline sync --from notion` first" in done.err
    assert not (tmp_path / "missing.db").exists()
