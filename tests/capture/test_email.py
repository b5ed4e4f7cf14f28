"""Email capture from a real Dovecot into the SQLite store and the fake Notion (real notion-client)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from knowledge_pipeline.capture.email import capture_emails, sender_allowed
from knowledge_pipeline.reading.records import item_fields
from knowledge_pipeline.models import Item, SourceType, Status
from knowledge_pipeline.runner import EXIT_OK, FEED_TYPES, RunOptions, run_async
from knowledge_pipeline.telemetry import Telemetry
from tests.capture.conftest import imap_env
from tests.data import newsletters
from tests.extract.support import Recorder, all_items, make_gateway, make_settings, make_telemetry, open_store
from tests.fakes.dovecot import PASSWORD, Dovecot
from tests.fakes.notion_server import sources_schema, start_fake_notion
from tests.sources.notion_support import notion_store


def deliver_the_three(server: Dovecot) -> None:
    server.deliver(newsletters.substack())
    server.deliver(newsletters.beehiiv())
    server.deliver(newsletters.mailchimp(), seen=True)


def capture(tmp_path: Path, server: Dovecot, *, dry_run: bool = False, **env: Any):
    settings = make_settings(**{k.lower(): v for k, v in imap_env(server, **env).items()})
    telemetry, recorder = make_telemetry()

    async def main():
        async with open_store(tmp_path) as store:
            report = await capture_emails(settings, store, telemetry, known_hashes=await store.known_hashes(),
                                          dry_run=dry_run, gateway=make_gateway(telemetry, retries=1))
            return report, await all_items(store)

    report, items = asyncio.run(main())
    return report, {item.title: item for item in items}, recorder


def imap_operations(recorder: Recorder) -> list[str]:
    return [e["operation"] for e in recorder.of("api_call_complete") if e["service"] == "imap"]


def test_newsletters_become_email_items_and_nothing_is_marked_read(tmp_path, dovecot):
    deliver_the_three(dovecot)
    dovecot.deliver(newsletters.plain_text())
    flags = dovecot.flags()
    report, items, recorder = capture(tmp_path, dovecot)
    assert (report.found, report.added, report.duplicates, report.rejected, report.errors) == (4, 4, 0, 0, [])
    substack = items[newsletters.SUBJECTS["substack"]]
    assert substack.source_type is SourceType.EMAIL and substack.status is Status.INBOX
    assert substack.sender == "Lenny's Newsletter <lenny@substack.com>"
    assert substack.url == newsletters.VIEW_URLS["substack"]
    assert substack.created_date == date(2025, 1, 14)
    assert newsletters.ARTICLE["substack"][1] in substack.content and "Unsubscribe" not in substack.content
    cafe = items["Caf\u00e9 Weekly: payments at the counter"]
    assert cafe.sender == "Caf\u00e9 Weekly <news@cafeweekly.example>" and "1.2\u20ac" in cafe.content
    assert items["\u0141\u00f3d\u017a robotics fair"].url is None
    assert dovecot.flags() == flags, "no \\Seen flag set, nothing moved or deleted"
    complete = recorder.of("capture_complete")[0]
    assert (complete["kind"], complete["found"], complete["added"]) == ("email", 4, 4)
    assert imap_operations(recorder) == ["connect", "search", "fetch_headers"] + ["fetch_body"] * 4


def test_a_second_run_adds_nothing_and_downloads_no_body(tmp_path, dovecot):
    deliver_the_three(dovecot)
    capture(tmp_path, dovecot)
    report, items, recorder = capture(tmp_path, dovecot)
    assert (report.found, report.added, report.duplicates) == (3, 0, 3) and len(items) == 3
    assert "fetch_body" not in imap_operations(recorder)


def test_the_same_issue_under_two_message_ids_is_captured_once(tmp_path, dovecot):
    dovecot.deliver(newsletters.substack(message_id="<first@mg.substack.com>"))
    dovecot.deliver(newsletters.substack(message_id="<resent@mg.substack.com>"))
    report, items, recorder = capture(tmp_path, dovecot)
    assert (report.added, report.duplicates) == (1, 1) and len(items) == 1
    assert recorder.of("capture_complete")[0]["same_text"] == 1


def test_sender_lists_by_address_and_domain(tmp_path, dovecot):
    deliver_the_three(dovecot)
    _, items, recorder = capture(tmp_path, dovecot, email_sender_whitelist="substack.com, therundown.ai",
                                 email_sender_blacklist="news@daily.therundown.ai")
    assert list(items) == [newsletters.SUBJECTS["substack"]]
    assert recorder.of("capture_complete")[0]["filtered_senders"] == 2
    assert sender_allowed("a@mail.substack.com", ("@substack.com",), ())
    assert not sender_allowed("a@notsubstack.com", ("substack.com",), ())
    assert not sender_allowed(None, ("substack.com",), ()) and sender_allowed(None, (), ("x.com",))


def test_the_window_keeps_recent_arrivals_only(tmp_path, dovecot):
    dovecot.deliver(newsletters.substack(), received=datetime.now(timezone.utc) - timedelta(days=30))
    dovecot.deliver(newsletters.beehiiv(), received=datetime.now(timezone.utc) - timedelta(hours=2))
    _, items, _ = capture(tmp_path, dovecot, email_window_days=7)
    assert list(items) == [newsletters.SUBJECTS["beehiiv"]]
    _, items, _ = capture(tmp_path, dovecot, email_window_days=0)
    assert len(items) == 2


def test_email_max_messages_takes_the_newest_and_leaves_the_rest_for_later_runs(tmp_path, dovecot):
    now = datetime.now(timezone.utc)
    for hours, message in enumerate([newsletters.plain_text(), newsletters.mailchimp(), newsletters.beehiiv(),
                                     newsletters.substack()]):
        dovecot.deliver(message, received=now - timedelta(hours=4 - hours))  # substack arrives last
    report, items, recorder = capture(tmp_path, dovecot, email_max_messages=2)
    assert list(items) == [newsletters.SUBJECTS["substack"], newsletters.SUBJECTS["beehiiv"]]
    assert (report.found, report.added) == (4, 2)
    assert recorder.of("capture_complete")[0]["over_cap"] == 2
    assert imap_operations(recorder).count("fetch_body") == 2, "a message over the cap is not downloaded"
    report, items, recorder = capture(tmp_path, dovecot, email_max_messages=2)
    assert (report.added, report.duplicates, recorder.of("capture_complete")[0]["over_cap"]) == (2, 2, 0)
    assert len(items) == 4
    dry, _, recorder = capture(tmp_path / "dry", dovecot, dry_run=True, email_max_messages=3)
    assert len(dry.would_add) == 3 and recorder.of("capture_complete")[0]["over_cap"] == 1


def test_email_search_criteria_select_and_bad_criteria_are_one_line(tmp_path, dovecot):
    deliver_the_three(dovecot)
    _, items, _ = capture(tmp_path, dovecot, email_search='FROM "substack.com"')
    assert list(items) == [newsletters.SUBJECTS["substack"]]
    report, _, recorder = capture(tmp_path, dovecot, email_search="FROMM nobody")
    assert len(report.errors) == 1 and "\n" not in report.errors[0]
    assert report.errors[0].startswith("EMAIL_SEARCH 'FROMM nobody' rejected by")
    assert recorder.of("capture_error")[0]["error"] == report.errors[0]


def test_a_message_over_max_download_mb_is_skipped_with_its_reason_and_never_downloaded(tmp_path, dovecot):
    dovecot.deliver(newsletters.with_attachment(300_000))
    dovecot.deliver(newsletters.beehiiv())
    report, items, recorder = capture(tmp_path, dovecot, max_download_mb="0.1")
    assert list(items) == [newsletters.SUBJECTS["beehiiv"]]
    assert report.rejected == 1 and "larger than MAX_DOWNLOAD_MB (0.1 MB)" in report.errors[0]
    assert "'Annual report'" in report.errors[0]
    assert imap_operations(recorder).count("fetch_body") == 1
    complete = recorder.of("capture_complete")[0]
    assert complete["too_large"] == 1 and complete["rejected_reasons"] == {"larger than MAX_DOWNLOAD_MB": 1}
    (rejected,) = recorder.of("entry_rejected")
    assert rejected["kind"] == "email" and "larger than MAX_DOWNLOAD_MB (0.1 MB)" in rejected["reason"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"email_imap_password": "not-the-password"}, "IMAP login as reader on "),
        ({"email_imap_ca_file": ""}, "is not trusted"),
        ({"email_imap_folder": "Newsletters"}, "IMAP folder 'Newsletters' not found"),
    ],
    ids=["wrong password", "untrusted certificate", "missing folder"],
)
def test_an_unusable_mailbox_is_one_line_and_the_capture_ends_cleanly(tmp_path, dovecot, change, expected):
    deliver_the_three(dovecot)
    report, items, recorder = capture(tmp_path, dovecot, **change)
    assert items == {} and report.added == 0
    assert len(report.errors) == 1 and expected in report.errors[0] and "\n" not in report.errors[0]
    error = recorder.of("capture_error")[0]
    assert error["error"] == report.errors[0] and error["kind"] == "email"
    assert recorder.of("capture_complete")[0]["errors"] == report.errors
    assert not any(PASSWORD in repr(data) or "not-the-password" in repr(data) for _, data in recorder.events)
    api_errors = [e for e in recorder.of("api_call_error") if e["service"] == "imap"]
    assert len(api_errors) == 1 and api_errors[0]["operation"] == "connect", "no retry of a hopeless login"


def test_dry_run_lists_what_would_be_captured_and_stores_nothing(tmp_path, dovecot):
    deliver_the_three(dovecot)
    report, items, _ = capture(tmp_path, dovecot, dry_run=True)
    assert items == {} and report.added == 0
    assert sorted(i.title for i in report.would_add) == sorted(newsletters.SUBJECTS.values())


# -- the Notion store ---------------------------------------------------------------------------


def notion_schema_with_sender() -> dict[str, dict]:
    return {**sources_schema("full"), "Sender": {"rich_text": {}}}


def test_capture_into_notion_keeps_sender_link_and_the_text_for_a_later_run(dovecot):
    deliver_the_three(dovecot)
    with start_fake_notion(database=None, rps=None) as fake:
        fake.create_sources_database(properties=notion_schema_with_sender())
        env = imap_env(dovecot)
        store, _ = notion_store(fake, email_imap_host=env["EMAIL_IMAP_HOST"])
        settings = make_settings(**{k.lower(): v for k, v in env.items()})
        telemetry, _ = make_telemetry()

        async def capture_run() -> Any:
            await store.open()
            try:
                known = await store.known_hashes()
                return await capture_emails(settings, store, telemetry, known_hashes=known,
                                            gateway=make_gateway(telemetry, retries=1))
            finally:
                await store.close()

        report = asyncio.run(capture_run())
        assert report.added == 3
        pages = {fake.values(p["id"])["Title"]: p["id"] for p in fake.pages()}
        values = fake.values(pages[newsletters.SUBJECTS["beehiiv"]])
        assert values["Source Type"] == "Email" and values["Status"] == "Inbox"
        assert values["Sender"] == "The Rundown AI <news@daily.therundown.ai>"
        assert values["Article URL"] == newsletters.VIEW_URLS["beehiiv"]
        assert values["Created Date"] == "2025-01-14"
        body = fake.blocks_of(pages[newsletters.SUBJECTS["beehiiv"]])
        assert [b["type"] for b in body] == ["toggle"] and body[0]["toggle"]["rich_text"][0]["plain_text"] == "Email"

        later, events = notion_store(fake)  # another process: the text is read back from the page
        fake.reset_stats()

        async def inbox() -> list[Item]:
            await later.open()
            try:
                return [item async for item in later.inbox(FEED_TYPES)]
            finally:
                await later.close()

        items = {item.title: item for item in asyncio.run(inbox())}
        assert set(items) == set(newsletters.SUBJECTS.values())
        beehiiv = items[newsletters.SUBJECTS["beehiiv"]]
        assert beehiiv.source_type is SourceType.EMAIL and beehiiv.sender.startswith("The Rundown AI")
        assert all(sentence in beehiiv.content for sentence in newsletters.ARTICLE["beehiiv"])
        assert beehiiv.url == newsletters.VIEW_URLS["beehiiv"]
        assert fake.stats()["by_endpoint"].get("blocks.children.list", 0) == 6, "two reads per email"


def test_an_email_whose_text_cannot_be_read_back_fails_alone_with_a_warning():
    from knowledge_pipeline.models import NewItem

    with start_fake_notion(rps=None) as fake:
        first, _ = notion_store(fake)

        async def add() -> None:
            await first.open()
            try:
                for n in (1, 2):
                    await first.add(NewItem(title=f"Issue {n}", source_type=SourceType.EMAIL, hash=f"h{n}",
                                            content=f"Text of issue {n}."))
            finally:
                await first.close()

        asyncio.run(add())
        later, events = notion_store(fake, retries=0)
        fake.fail_next(503, count=1, method="GET", path="/children")

        async def inbox() -> list[Item]:
            await later.open()
            try:
                return [item async for item in later.inbox()]
            finally:
                await later.close()

        items = asyncio.run(inbox())
    assert [(i.title, i.content) for i in items] == [("Issue 1", None), ("Issue 2", "Text of issue 2.")]
    warning = events.of("email_text_unavailable")
    assert len(warning) == 1 and warning[0]["item_id"] == items[0].id and "503" in warning[0]["error"]


def test_without_a_sender_property_or_link_property_notion_still_takes_the_email(dovecot):
    dovecot.deliver(newsletters.substack())
    with start_fake_notion(database="original", rps=None) as fake:
        env = imap_env(dovecot)
        store, _ = notion_store(fake, email_imap_host=env["EMAIL_IMAP_HOST"], email_url_prop="Web version")
        settings = make_settings(**{k.lower(): v for k, v in env.items()})
        telemetry, _ = make_telemetry()

        async def capture_run() -> Any:
            await store.open()
            try:
                return await capture_emails(settings, store, telemetry, known_hashes=set(),
                                            gateway=make_gateway(telemetry, retries=1))
            finally:
                await store.close()

        assert asyncio.run(capture_run()).added == 1
        values = fake.values(fake.pages()[0]["id"])
        assert values["Source Type"] == "Email" and values["Article URL"] is None and "Sender" not in values


# -- one run of enrich_rss*.py, in process ----------------------------------------------------------


def run_feeds_script(tmp_path: Path, env: dict[str, str]) -> tuple[Any, Recorder]:
    settings = make_settings(
        sources_db_path=tmp_path / "sources.db", journal_path=tmp_path / "journal.db", log_dir=tmp_path / "logs",
        **{k.lower(): v for k, v in env.items()})
    telemetry = Telemetry("test.email")
    recorder = Recorder()
    options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="feeds",
                         observers=[recorder])
    return asyncio.run(run_async(settings, options, telemetry)), recorder


def test_the_feeds_script_captures_and_enriches_newsletters(tmp_path, dovecot):
    deliver_the_three(dovecot)
    result, recorder = run_feeds_script(tmp_path, imap_env(dovecot))
    assert result.exit_code == EXIT_OK
    assert result.metrics["items_processed"] == 3 and result.metrics["items_failed"] == 0
    complete = [e for e in recorder.of("capture_complete") if e.get("kind") == "email"]
    assert len(complete) == 1 and complete[0]["added"] == 3

    async def stored() -> list[Item]:
        async with open_store(tmp_path) as store:
            return await all_items(store)

    items = asyncio.run(stored())
    assert {i.status for i in items} == {Status.ENRICHED} and {i.source_type for i in items} == {SourceType.EMAIL}
    listed = {row["title"]: row for row in map(item_fields, items)}
    assert listed[newsletters.SUBJECTS["substack"]]["sender"] == "Lenny's Newsletter <lenny@substack.com>"
    assert listed[newsletters.SUBJECTS["substack"]]["url"] == newsletters.VIEW_URLS["substack"]


def test_without_email_imap_host_the_feeds_script_never_mentions_email(tmp_path):
    result, recorder = run_feeds_script(tmp_path, {})
    assert result.exit_code == EXIT_OK
    assert not [e for e in recorder.events if e[1].get("kind") == "email" or e[1].get("service") == "imap"]


def test_notion_setup_and_check_know_the_email_properties_once_email_is_configured():
    from knowledge_pipeline.sources.notion_schema import creation_properties, schema_problems

    plain = make_settings()
    assert "Sender" not in creation_properties(plain)
    emailing = make_settings(email_imap_host="imap.example.com", email_imap_user="u", email_imap_password="p",
                             email_url_prop="Web version")
    created = creation_properties(emailing)
    assert created["Sender"]["type"] == "rich_text" and created["Web version"]["type"] == "url"
    assert "Email" in [o["name"] for o in created["Source Type"]["select"]["options"]]
    problems = {p.property: p.severity for p in schema_problems(creation_properties(plain), emailing)}
    assert problems == {"Sender": "recommended", "Web version": "recommended"}


def test_the_password_is_a_secret_of_the_settings():
    settings = make_settings(email_imap_host="imap.example.com", email_imap_user="u", email_imap_password=PASSWORD)
    assert PASSWORD in settings.secrets and PASSWORD not in repr(settings)


# -- the scripts end to end ----------------------------------------------------------------------


def test_pipeline_enhanced_sh_captures_newsletters_once_with_their_counts_everywhere(tmp_path, dovecot):
    from tests.conftest import events, pipeline_twice

    deliver_the_three(dovecot)
    done, again, items, report = pipeline_twice(tmp_path, **imap_env(dovecot))
    assert again.returncode == 0 and "captured 0 new" in again.stdout
    assert {(i["source_type"], i["status"]) for i in items} == {("Email", "Enriched")} and len(items) == 3
    assert PASSWORD not in done.stdout + done.stderr + (tmp_path / "logs" / "pipeline.jsonl").read_text()
    completes = [(e["kind"], e["found"], e["added"], e["duplicates"]) for e in events(tmp_path / "logs", "capture_complete")
                 if e["kind"] == "email"]
    assert completes == [("email", 3, 3, 0), ("email", 3, 0, 3)]
    summaries = [e for e in events(tmp_path / "logs", "pipeline_summary") if e["script"] == "enrich_rss_enhanced.py"]
    assert summaries[0]["metrics"]["captured"]["email"] == {"found": 3, "added": 3, "duplicates": 0, "rejected": 0,
                                                             "errors": 0}
    runs = json.loads(report.stdout)["runs"]
    assert any(run.get("captured_by_kind", {}).get("email", {}).get("added") == 3 for run in runs)
    assert dovecot.flags()  # the mailbox is still there, flags checked in the capture tests


@pytest.mark.parametrize("parallel", [False, True])
def test_newsletters_in_notion_are_found_in_the_inbox_and_enriched(tmp_path, dovecot, parallel):
    deliver_the_three(dovecot)
    with start_fake_notion(database="original", rps=None) as notion:
        settings = make_settings(**{k.lower(): v for k, v in imap_env(dovecot).items()},
                                 sources_backend="notion", notion_token=notion.token,
                                 notion_sources_db=notion.database_id, notion_base_url=notion.url,
                                 notion_max_rps="1000", journal_path=tmp_path / "journal.db",
                                 log_dir=tmp_path / "logs")
        options = RunOptions(script="enrich_rss_enhanced.py", source_types=FEED_TYPES, capture="feeds",
                             parallel=parallel)
        result = asyncio.run(run_async(settings, options, Telemetry("test")))
        rows = [notion.values(page["id"]) for page in notion.pages()]
    assert result.exit_code == EXIT_OK, result.error
    assert result.metrics["items_processed"] == 3 and result.metrics["captured"]["email"]["added"] == 3
    assert {(r["Source Type"], r["Status"]) for r in rows} == {("Email", "Enriched")}
    assert {r["Article URL"] for r in rows} == set(newsletters.VIEW_URLS.values())
