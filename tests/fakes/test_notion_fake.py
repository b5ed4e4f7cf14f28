"""The fake Notion server is faithful: recorded interactions replay with the same shapes, limits hold.

Fidelity: every interaction of the real recordings in
tests/fakes/reference/notion-cassettes (copied from
/work/shared/reference/notion-cassettes) is sent to the fake through the real
``notion_client.AsyncClient``; the answer must have the recorded status and
the same keys and value types (ids and timestamps differ).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import yaml
from notion_client import AsyncClient
from notion_client.errors import APIResponseError, HTTPResponseError, UnknownHTTPResponseError

from tests.fakes.notion_server import NOTION_VERSION, FakeNotion, start_fake_notion

CASSETTES = Path(__file__).parent / "reference" / "notion-cassettes"
RECORDED_PARENT_PAGE = "393abc1eedcd80f3813be205934558c6"
UUID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")
ROOT = Path(__file__).resolve().parents[2]


def client_for(fake: FakeNotion, token: str | None = None) -> AsyncClient:
    return AsyncClient(auth=token or fake.token, base_url=fake.url, retry=False,
                       logger=logging.getLogger("tests.notion_client"), log_level=logging.ERROR)


def call(fake: FakeNotion, path: str, method: str, *, body: dict | None = None, query: dict | None = None,
         token: str | None = None) -> tuple[int, dict, httpx.Headers | None]:
    """One request through the real client: (status, JSON answer, error headers)."""
    async def main() -> tuple[int, dict, httpx.Headers | None]:
        client = client_for(fake, token)
        try:
            return 200, await client.request(path, method, query=query, body=body), None
        except HTTPResponseError as error:
            answer = json.loads(error.body) if error.body.startswith("{") else {"raw": error.body}
            return error.status, answer, error.headers
        finally:
            await client.aclose()

    return asyncio.run(main())


# -- fidelity -------------------------------------------------------------------------------


def shape_differences(recorded: Any, actual: Any, path: str = "$") -> list[str]:
    """Where ``actual`` differs from ``recorded`` in keys or value types."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        problems = [f"{path}: missing key {k!r}" for k in recorded if k not in actual]
        problems += [f"{path}: extra key {k!r}" for k in actual if k not in recorded]
        for key in recorded.keys() & actual.keys():
            problems += shape_differences(recorded[key], actual[key], f"{path}.{key}")
        return problems
    if isinstance(recorded, list) and isinstance(actual, list):
        if len(recorded) != len(actual):
            return [f"{path}: {len(actual)} items, recorded {len(recorded)}"]
        return [p for n, (r, a) in enumerate(zip(recorded, actual)) for p in shape_differences(r, a, f"{path}[{n}]")]
    if type(recorded) is not type(actual):
        return [f"{path}: {type(actual).__name__}, recorded {type(recorded).__name__} ({recorded!r})"]
    return []


def learn_ids(recorded: Any, actual: Any, ids: dict[str, str]) -> None:
    """Map each recorded id to the fake's id found at the same place in the answer."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        for key in recorded.keys() & actual.keys():
            learn_ids(recorded[key], actual[key], ids)
    elif isinstance(recorded, list) and isinstance(actual, list):
        for r, a in zip(recorded, actual):
            learn_ids(r, a, ids)
    elif isinstance(recorded, str) and isinstance(actual, str) and UUID.fullmatch(recorded):
        ids.setdefault(recorded.replace("-", ""), actual)


def swap_ids(text: str, ids: dict[str, str]) -> str:
    return UUID.sub(lambda m: ids.get(m.group(0).replace("-", ""), m.group(0)), text)


def cassette_names() -> list[str]:
    return sorted(p.name for p in CASSETTES.glob("test_*.yaml"))


@pytest.mark.parametrize("name", cassette_names())
def test_recorded_interactions_replay_with_the_same_shapes(name: str) -> None:
    interactions = yaml.safe_load((CASSETTES / name).read_text())["interactions"]
    with start_fake_notion(database=None, rps=None, integration_name="notion-sdk-py") as fake:
        ids = {RECORDED_PARENT_PAGE: fake.root_page_id}
        problems: list[str] = []
        for n, interaction in enumerate(interactions):
            request, response = interaction["request"], interaction["response"]
            assert request["headers"]["notion-version"] == [NOTION_VERSION]
            url = urlsplit(swap_ids(request["uri"], ids))
            body = json.loads(swap_ids(request["body"], ids)) if request["body"] else None
            status = response["status"]["code"]
            token = "ntn_not_the_token" if status == 401 else None
            actual_status, actual, _ = call(fake, url.path.removeprefix("/v1/"), request["method"], body=body,
                                            query=dict(parse_qsl(url.query, keep_blank_values=True)) or None,
                                            token=token)
            recorded = json.loads(response["body"]["string"])
            where = f"#{n} {request['method']} {url.path}"
            assert actual_status == status, f"{where}: {actual}"
            problems += [f"{where} {p}" for p in shape_differences(recorded, actual)]
            if status >= 400:
                assert (actual["code"], actual["message"]) == (recorded["code"], swap_ids(recorded["message"], ids))
            learn_ids(recorded, actual, ids)
        assert problems == []


def test_error_answers_are_recognised_by_the_client() -> None:
    with start_fake_notion(rps=None) as fake:
        async def main() -> list[BaseException]:
            good, bad = client_for(fake), client_for(fake, "ntn_wrong")
            errors = []
            for coroutine in (good.pages.retrieve("0" * 32), bad.users.me(), good.request("nope", "GET")):
                try:
                    await coroutine
                except Exception as exc:  # noqa: BLE001 - the test looks at what the client raised
                    errors.append(exc)
            await good.aclose()
            await bad.aclose()
            return errors

        not_found, unauthorized, invalid = asyncio.run(main())
        assert isinstance(not_found, APIResponseError) and not_found.code == "object_not_found"
        assert not_found.status == 404 and not_found.request_id
        assert isinstance(unauthorized, APIResponseError) and unauthorized.code == "unauthorized"
        assert str(unauthorized) == "API token is invalid."
        assert isinstance(invalid, APIResponseError) and invalid.code == "invalid_request_url"


def test_the_notion_version_header_is_required() -> None:
    with start_fake_notion(rps=None) as fake:
        headers = {"Authorization": f"Bearer {fake.token}"}
        missing = httpx.get(f"{fake.url}/v1/databases/{fake.database_id}", headers=headers)
        other = httpx.get(f"{fake.url}/v1/databases/{fake.database_id}",
                          headers=headers | {"Notion-Version": "2022-06-28"})
        good = httpx.get(f"{fake.url}/v1/databases/{fake.database_id}",
                         headers=headers | {"Notion-Version": NOTION_VERSION})
        assert (missing.status_code, missing.json()["code"]) == (400, "missing_version")
        assert other.status_code == 400
        assert good.status_code == 200 and good.json()["object"] == "database"


# -- request limits -------------------------------------------------------------------------


def paragraph(text: str) -> dict:
    return {"paragraph": {"rich_text": [{"text": {"content": text}}]}}


def page(fake: FakeNotion) -> str:
    return fake.seed_inbox(1)[0]


@pytest.mark.parametrize("children, message", [
    ([paragraph("x" * 2001)], "body failed validation: body.children[0].paragraph.rich_text[0].text.content.length "
                              "should be \u2264 `2000`, instead was `2001`."),
    ([paragraph("x")] * 124, "body failed validation: body.children.length should be \u2264 `100`, instead was "
                             "`124`."),
    ([{"paragraph": {"rich_text": [{"text": {"content": "x"}}] * 101}}],
     "body failed validation: body.children[0].paragraph.rich_text.length should be \u2264 `100`, instead was `101`."),
    ([{"toggle": {"rich_text": [], "children": [paragraph("x")] * 101}}],
     "body failed validation: body.children[0].toggle.children.length should be \u2264 `100`, instead was `101`."),
])
def test_appends_over_the_limits_are_refused_with_notions_message(children: list, message: str) -> None:
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        status, answer, _ = call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": children})
        assert (status, answer["object"], answer["code"], answer["message"]) == (400, "error", "validation_error",
                                                                                 message)
        assert fake.blocks_of(page_id) == []


def test_text_length_is_counted_in_utf16_units_like_notion() -> None:
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        fits = call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": [paragraph("\U0001F680" * 1000)]})
        over = call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": [paragraph("\U0001F680" * 1001)]})
        assert fits[0] == 200 and over[0] == 400 and "instead was `2002`" in over[1]["message"]


def test_more_than_two_levels_of_nesting_are_refused() -> None:
    nested = {"toggle": {"rich_text": [], "children": [{"toggle": {"rich_text": [], "children": [paragraph("x")]}}]}}
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        status, answer, _ = call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": [nested]})
        assert status == 400 and answer["code"] == "validation_error"
        two_levels = {"toggle": {"rich_text": [], "children": [paragraph("x")]}}
        assert call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": [two_levels]})[0] == 200


def test_a_request_over_500_kb_is_refused() -> None:
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        children = [{"paragraph": {"rich_text": [{"text": {"content": "é" * 2000}}] * 100}}] * 2
        status, answer, _ = call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": children})
        assert status == 400 and answer["code"] == "validation_error" and "too large" in answer["message"]


def test_property_limits_and_select_rules() -> None:
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        cases = {
            "Vendor": {"select": {"name": "Acme, Inc."}},
            "Article URL": {"url": "https://e.com/" + "a" * 2000},
            "Summary": {"rich_text": [{"text": {"content": "s" * 2001}}]},
            "Nope": {"rich_text": []},
            "Status": {"rich_text": []},
        }
        messages = {}
        for name, value in cases.items():
            status, answer, _ = call(fake, f"pages/{page_id}", "PATCH", body={"properties": {name: value}})
            assert status == 400 and answer["code"] == "validation_error"
            messages[name] = answer["message"]
        assert messages["Vendor"] == "Invalid select option, commas not allowed: Acme, Inc."
        assert messages["Nope"] == "Nope is not a property that exists."
        assert "text.content.length should be \u2264 `2000`, instead was `2001`" in messages["Summary"]


def test_writing_an_unknown_select_name_adds_the_option() -> None:
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        status, _, _ = call(fake, f"pages/{page_id}", "PATCH", body={"properties": {
            "Vendor": {"select": {"name": "NewCo"}}, "AI-Primitive": {"multi_select": [{"name": "Agents"}]}}})
        assert status == 200
        _, source, _ = call(fake, f"data_sources/{fake.data_source_id}", "GET")
        assert "NewCo" in [o["name"] for o in source["properties"]["Vendor"]["select"]["options"]]
        assert "Agents" in [o["name"] for o in source["properties"]["AI-Primitive"]["multi_select"]["options"]]


def test_status_options_cannot_be_added_through_the_api() -> None:
    with start_fake_notion(rps=None, status_type="status") as fake:
        page_id = page(fake)
        status, answer, _ = call(fake, f"pages/{page_id}", "PATCH",
                                 body={"properties": {"Status": {"status": {"name": "Someday"}}}})
        assert status == 400 and answer["code"] == "validation_error"


def test_editing_a_trashed_page_is_refused_until_it_is_restored() -> None:
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        assert call(fake, f"blocks/{page_id}", "DELETE")[1]["in_trash"] is True
        status, answer, _ = call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": [paragraph("x")]})
        assert (status, answer["message"]) == (
            400, "Can't edit block that is archived. You must unarchive the block before editing.")
        assert call(fake, f"pages/{page_id}", "PATCH", body={"archived": False})[1]["in_trash"] is False
        assert call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": [paragraph("x")]})[0] == 200


# -- queries ---------------------------------------------------------------------------------


def query(fake: FakeNotion, body: dict) -> tuple[int, dict]:
    status, answer, _ = call(fake, f"data_sources/{fake.data_source_id}/query", "POST", body=body)
    return status, answer


def titles(answer: dict) -> list[str]:
    return [p["properties"]["Title"]["title"][0]["plain_text"] for p in answer["results"]]


def test_query_filters() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed([
            {"Title": "a", "Status": "Inbox", "Source Type": "RSS", "Summary": "About Agents", "Article URL": "https://a"},
            {"Title": "b", "Status": "Failed", "Source Type": "PDF", "Summary": "pdf"},
            {"Title": "c", "Status": "Inbox", "Source Type": "PDF", "Drive URL": "file:///c.pdf",
             "AI-Primitive": ["Research"]},
            {"Title": "d"},
        ])
        cases = [
            ({"property": "Status", "select": {"equals": "Inbox"}}, ["a", "c"]),
            ({"property": "Status", "select": {"does_not_equal": "Inbox"}}, ["b", "d"]),
            ({"property": "Status", "select": {"is_empty": True}}, ["d"]),
            ({"property": "Summary", "rich_text": {"contains": "agents"}}, ["a"]),
            ({"property": "Summary", "rich_text": {"is_not_empty": True}}, ["a", "b"]),
            ({"property": "Title", "title": {"starts_with": "c"}}, ["c"]),
            ({"property": "Article URL", "url": {"is_empty": True}}, ["b", "c", "d"]),
            ({"property": "AI-Primitive", "multi_select": {"contains": "Research"}}, ["c"]),
            ({"and": [{"property": "Status", "select": {"equals": "Inbox"}},
                      {"or": [{"property": "Article URL", "url": {"is_not_empty": True}},
                              {"property": "Drive URL", "url": {"is_not_empty": True}}]}]}, ["a", "c"]),
            ({"or": [{"property": "Source Type", "select": {"equals": "PDF"}},
                     {"property": "Title", "title": {"equals": "d"}}]}, ["b", "c", "d"]),
        ]
        for filter, expected in cases:
            status, answer = query(fake, {"filter": filter})
            assert (status, titles(answer)) == (200, expected), filter


def test_timestamp_filters_and_sorts() -> None:
    with start_fake_notion(rps=None) as fake:
        ids = fake.seed([{"Title": "old"}, {"Title": "mid"}, {"Title": "new"}])
        for page_id, stamp in zip(ids, ("2024-01-01T10:00:00.000Z", "2024-03-01T10:00:00.000Z",
                                        "2024-03-01T12:30:00.000Z")):
            fake.set_times(page_id, created_time=stamp, last_edited_time=stamp)
        cases = [
            ({"timestamp": "created_time", "created_time": {"on_or_after": "2024-03-01T11:00:00Z"}}, ["new"]),
            ({"timestamp": "created_time", "created_time": {"before": "2024-03-01T10:00:00+00:00"}}, ["old"]),
            ({"timestamp": "last_edited_time", "last_edited_time": {"equals": "2024-03-01"}}, ["mid", "new"]),
            ({"timestamp": "last_edited_time", "last_edited_time": {"after": "2024-01-01"}}, ["mid", "new"]),
        ]
        for filter, expected in cases:
            status, answer = query(fake, {"filter": filter})
            assert (status, titles(answer)) == (200, expected), filter
        newest = {"sorts": [{"timestamp": "created_time", "direction": "descending"}]}
        assert titles(query(fake, newest)[1]) == ["new", "mid", "old"]
        bad = {"filter": {"timestamp": "created_time", "created_time": {"on_or_after": "yesterday"}}}
        status, answer = query(fake, bad)
        assert status == 400 and answer["code"] == "validation_error"


def test_query_filter_errors() -> None:
    with start_fake_notion(rps=None) as fake:
        status, answer = query(fake, {"filter": {"property": "Nope", "select": {"equals": "x"}}})
        assert (status, answer["message"]) == (400, "Could not find property with name or id: Nope")
        status, answer = query(fake, {"filter": {"property": "Status", "status": {"equals": "Inbox"}}})
        assert status == 400 and answer["code"] == "validation_error"
        deep = {"and": [{"or": [{"and": [{"property": "Status", "select": {"equals": "Inbox"}}]}]}]}
        assert query(fake, {"filter": deep})[0] == 400
        assert query(fake, {"page_size": 101})[0] == 400


def test_query_pagination_and_filter_properties() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.seed_inbox(5)
        seen: list[str] = []
        body: dict = {"page_size": 2}
        while True:
            status, answer = query(fake, body)
            assert answer["object"] == "list" and answer["type"] == "page_or_data_source"
            seen += titles(answer)
            if not answer["has_more"]:
                assert answer["next_cursor"] is None
                break
            body = {"page_size": 2, "start_cursor": answer["next_cursor"]}
        assert seen == [f"Item {n}" for n in range(5)]
        status, slim, _ = call(fake, f"data_sources/{fake.data_source_id}/query", "POST", body={},
                               query={"filter_properties": "title"})
        assert [list(p["properties"]) for p in slim["results"]] == [["Title"]] * 5


def test_trashed_pages_leave_query_results() -> None:
    with start_fake_notion(rps=None) as fake:
        kept, gone = fake.seed_inbox(2)
        fake.trash_page(gone)
        assert [p["id"] for p in query(fake, {})[1]["results"]] == [kept]


def test_children_list_paginates_with_the_next_block_id_as_cursor() -> None:
    with start_fake_notion(rps=None) as fake:
        page_id = page(fake)
        call(fake, f"blocks/{page_id}/children", "PATCH", body={"children": [paragraph(str(n)) for n in range(5)]})
        status, first, _ = call(fake, f"blocks/{page_id}/children", "GET", query={"page_size": 2})
        ids = [b["id"] for b in fake.blocks_of(page_id)]
        assert first["has_more"] and first["next_cursor"] == ids[2]
        status, last, _ = call(fake, f"blocks/{page_id}/children", "GET",
                               query={"page_size": 2, "start_cursor": ids[4]})
        assert [b["id"] for b in last["results"]] == [ids[4]] and last["next_cursor"] is None
        assert call(fake, f"blocks/{page_id}/children", "GET", query={"page_size": 101})[0] == 400


# -- faults, rate limit, stats -----------------------------------------------------------------


def burst(fake: FakeNotion, count: int) -> list[tuple[int, dict, httpx.Headers | None]]:
    async def main() -> list:
        client = client_for(fake)
        results = []
        for _ in range(count):
            try:
                results.append((200, await client.databases.retrieve(fake.database_id), None))
            except HTTPResponseError as error:
                body = json.loads(error.body) if error.body.startswith("{") else {"raw": error.body}
                results.append((error.status, body, error.headers))
        await client.aclose()
        return results

    return asyncio.run(main())


def test_over_its_rate_the_fake_answers_429_with_a_whole_second_retry_after() -> None:
    with start_fake_notion(rps=3, burst=3) as fake:
        results = burst(fake, 8)
        limited = [r for r in results if r[0] == 429]
        assert [r[0] for r in results[:3]] == [200, 200, 200]
        assert limited and all(r[1]["code"] == "rate_limited" for r in limited)
        assert all(re.fullmatch(r"[1-9]\d*", r[2]["retry-after"]) for r in limited)
        stats = fake.stats()
        assert stats["rate_limited"] == len(limited) and stats["requests"] == 8
        assert stats["max_in_1s"] == 8 and stats["by_endpoint"] == {"databases.retrieve": 8}


def test_faults_can_be_chosen_per_run() -> None:
    with start_fake_notion(rps=None, seed=1) as fake:
        fake.configure(error_share=1.0)
        statuses = {r[0] for r in burst(fake, 12)}
        assert statuses <= {500, 502, 503, 504} and len(statuses) > 1
        fake.configure(error_share=0.0, rate_limit_share=1.0, retry_after=2)
        assert {(r[0], r[2]["retry-after"]) for r in burst(fake, 3)} == {(429, "2")}
        fake.configure(rate_limit_share=0.0)
        assert {r[0] for r in burst(fake, 3)} == {200}


def test_a_502_is_not_json_as_from_a_proxy() -> None:
    with start_fake_notion(rps=None) as fake:
        fake.fail_next(502)

        async def main() -> BaseException:
            client = client_for(fake)
            try:
                with pytest.raises(UnknownHTTPResponseError) as caught:
                    await client.databases.retrieve(fake.database_id)
            finally:
                await client.aclose()
            return caught.value

        assert asyncio.run(main()).status == 502


def test_latency_is_added() -> None:
    with start_fake_notion(rps=None, latency=0.2) as fake:
        started = asyncio.run(_timed(fake))
        assert started >= 0.2


async def _timed(fake: FakeNotion) -> float:
    loop = asyncio.get_running_loop()
    client = client_for(fake)
    begin = loop.time()
    await client.databases.retrieve(fake.database_id)
    await client.aclose()
    return loop.time() - begin


def test_control_endpoints_drive_a_fake_in_another_process() -> None:
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.notion_server", "--port", "0", "--rps", "0",
                                "--seed-inbox", "3"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(process.stdout.readline())
        headers = {"Authorization": f"Bearer {info['token']}", "Notion-Version": NOTION_VERSION}
        with httpx.Client(base_url=info["url"]) as http:
            assert http.post("/__control", json={"error_share": 1.0, "seed": 3}).json() == {"ok": True}
            assert http.get(f"/v1/databases/{info['database_id']}", headers=headers).status_code >= 500
            http.post("/__control", json={"error_share": 0.0})
            answer = http.post(f"/v1/data_sources/{info['data_source_id']}/query", json={}, headers=headers)
            assert len(answer.json()["results"]) == 3
            stats = http.get("/__stats").json()
            assert stats["requests"] == 2 and stats["by_endpoint"]["data_sources.query"] == 1
            assert [v["Status"] for v in http.get("/__pages").json()["values"]] == ["Inbox"] * 3
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_a_database_with_two_data_sources_lists_both_as_recorded() -> None:
    """``data_sources`` holds ``{id, name}`` per source (test_databases_retrieve.yaml); a database parent is refused."""
    recorded = json.loads(yaml.safe_load((CASSETTES / "test_databases_retrieve.yaml").read_text())
                          ["interactions"][1]["response"]["body"]["string"])
    with start_fake_notion(rps=None) as fake:
        second = fake.add_data_source("Archive")
        status, database, _ = call(fake, f"databases/{fake.database_id}", "GET")
        assert status == 200
        assert [s["name"] for s in database["data_sources"]] == ["Sources", "Archive"]
        assert [s["id"] for s in database["data_sources"]] == [fake.data_source_id, second]
        assert all(shape_differences(recorded["data_sources"][0], s) == [] for s in database["data_sources"])
        status, source, _ = call(fake, f"data_sources/{second}", "GET")
        assert status == 200 and source["parent"] == {"type": "database_id", "database_id": fake.database_id}
        status, answer, _ = call(fake, "pages", "POST", body={"parent": {"database_id": fake.database_id},
                                                              "properties": {"Title": {"title": []}}})
        assert status == 400 and answer["code"] == "validation_error"
