"""Feed capture into a real SQLite store: entries become Inbox items once, with full text when the feed has it."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from knowledge_pipeline.feeds import slices
from knowledge_pipeline.capture.feeds import capture_feeds
from knowledge_pipeline.capture.links import canonical_link, link_hash
from knowledge_pipeline.extract.fetch import Fetcher
from knowledge_pipeline.models import SourceType, Status
from tests.data.generate import rss_feed, rss_item
from tests.extract.support import all_items, make_gateway, make_settings, make_telemetry, open_store
from tests.fakes.web_server import FakeWebServer

ROOT = Path(__file__).resolve().parents[2]
RSS = ROOT / "examples" / "feeds" / "ai_markets_daily.rss.xml"
ATOM = ROOT / "examples" / "feeds" / "research_notes.atom.xml"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def capture(tmp_path: Path, feeds: list[str], *, dry_run: bool = False, now: datetime = NOW, **env):
    """Run capture_feeds once; returns (reports, stored items, recorder)."""
    env.setdefault("rss_window_days", "0")
    env.setdefault("allow_private_urls", "true")
    env.setdefault("feed_state_path", str(tmp_path / "feeds.db"))
    settings = make_settings(rss_feeds=",".join(feeds), **env)
    telemetry, recorder = make_telemetry()

    async def run():
        async with open_store(tmp_path) as store:
            fetcher = Fetcher(settings, make_gateway(telemetry, retries=0))
            try:
                known = await store.known_hashes()
                reports = await capture_feeds(
                    settings, store, fetcher, telemetry, known_hashes=known, dry_run=dry_run, now=now
                )
            finally:
                await fetcher.close()
            return reports, await all_items(store)

    reports, items = asyncio.run(run())
    return reports, items, recorder


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(path)


def test_example_feeds_become_inbox_items_with_full_text(tmp_path):
    reports, items, recorder = capture(tmp_path, [str(RSS), str(ATOM)])
    assert [(r.found, r.added, r.duplicates, r.rejected, r.errors) for r in reports] == [
        (7, 7, 0, 0, []),
        (6, 6, 0, 0, []),
    ]
    assert len(items) == 13
    assert {i.source_type for i in items} == {SourceType.RSS}
    assert {i.status for i in items} == {Status.INBOX}
    assert all(i.content and len(i.content) > 500 for i in items)
    first = next(i for i in items if i.title.startswith("OpenAI expands enterprise agent platform"))
    assert first.url == "https://example.com/ai-markets/2026/openai-enterprise-agents?utm_source=rss&utm_medium=feed"
    assert first.hash == link_hash("https://example.com/ai-markets/2026/openai-enterprise-agents")
    assert first.created_date == date(2026, 11, 24)
    assert first.content.startswith("OpenAI announced on November 24, 2026")
    assert "<p>" not in first.content
    complete = recorder.of("capture_complete")
    assert sorted((c["found"], c["added"], c["duplicates"], c["rejected"]) for c in complete) == [
        (6, 6, 0, 0), (7, 7, 0, 0)
    ]
    assert len(recorder.of("capture_start")) == 2 and len(recorder.of("item_captured")) == 13


def test_a_second_run_adds_nothing_and_does_not_even_parse_unchanged_feeds(tmp_path):
    capture(tmp_path, [str(RSS), str(ATOM)])
    reports, items, recorder = capture(tmp_path, [str(RSS), str(ATOM)])
    assert [(r.found, r.added, r.duplicates) for r in reports] == [(0, 0, 0), (0, 0, 0)]
    assert [(c["status"], c["outcome"]) for c in recorder.of("capture_complete")] == [("not_modified", "unchanged")] * 2
    assert len(items) == 13


def test_without_the_feed_state_the_store_still_deduplicates(tmp_path):
    capture(tmp_path, [str(RSS), str(ATOM)])
    (tmp_path / "feeds.db").unlink()
    reports, items, _ = capture(tmp_path, [str(RSS), str(ATOM)])
    assert [(r.added, r.duplicates) for r in reports] == [(0, 7), (0, 6)]
    assert len(items) == 13


def test_the_same_link_in_two_feeds_is_added_once(tmp_path):
    shared = "https://Example.com/shared-story?utm_campaign=x#comments"
    one = write(tmp_path, "one.xml", rss_feed([rss_item(1, link=shared), rss_item(2)]))
    two = write(tmp_path, "two.xml", rss_feed([rss_item(3, link="https://example.com/shared-story"), rss_item(4)]))
    reports, items, _ = capture(tmp_path, [one, two])
    assert sum(r.added for r in reports) == 3 and sum(r.duplicates for r in reports) == 1
    assert len(items) == 3


def test_only_entries_inside_the_window_are_kept(tmp_path):
    feed = write(
        tmp_path,
        "window.xml",
        rss_feed(
            [
                rss_item(1, when=NOW - timedelta(days=2)),
                rss_item(2, when=NOW - timedelta(days=29)),
                rss_item(3, when=NOW - timedelta(days=31)),
                rss_item(4, when=NOW - timedelta(days=400)),
            ]
        ),
    )
    reports, items, recorder = capture(tmp_path, [feed], rss_window_days="30")
    assert sorted(i.title for i in items) == ["Entry 1", "Entry 2"]
    assert reports[0].found == 4 and reports[0].added == 2
    assert recorder.of("capture_complete")[0]["too_old"] == 2


def test_entries_without_a_date_are_kept(tmp_path):
    feed = write(
        tmp_path,
        "nodate.xml",
        rss_feed(["<item><title>Undated</title><link>https://example.com/undated</link></item>"]),
    )
    _, items, _ = capture(tmp_path, [feed], rss_window_days="7")
    assert [(i.title, i.created_date) for i in items] == [("Undated", None)]


def test_the_example_dates_fall_outside_a_short_window(tmp_path):
    reports, items, _ = capture(tmp_path, [str(RSS)], rss_window_days="7")
    assert len(items) == 1 and reports[0].found == 7


def test_entries_without_links_or_with_unsafe_links_are_rejected(tmp_path):
    feed = write(
        tmp_path,
        "links.xml",
        rss_feed(
            [
                rss_item(1, link=None),
                rss_item(2, link="javascript:alert(1)"),
                rss_item(3, link="data:text/html,hi"),
                rss_item(4, link="file:///etc/passwd"),
                rss_item(5, link="ftp://example.com/x"),
                rss_item(6),
            ]
        ),
    )
    reports, items, recorder = capture(tmp_path, [feed])
    assert [i.title for i in items] == ["Entry 6"]
    assert (reports[0].found, reports[0].added, reports[0].rejected) == (6, 1, 5)
    reasons = recorder.of("capture_complete")[0]["rejected_reasons"]
    assert reasons["entry without a link"] == 1
    assert sum(n for reason, n in reasons.items() if reason.startswith("unsupported link scheme")) == 4
    assert len(recorder.of("entry_rejected")) == 5


def test_an_entry_without_a_title_is_named_after_its_link(tmp_path):
    feed = write(tmp_path, "untitled.xml", rss_feed([rss_item(7, title=None), rss_item(8, title="   ")]))
    _, items, _ = capture(tmp_path, [feed])
    assert sorted(i.title for i in items) == ["example.com/posts/7", "example.com/posts/8"]


def test_a_teaser_is_not_taken_for_the_full_article(tmp_path):
    teaser = (
        "<item><title>Teaser</title><link>https://example.com/teaser</link>"
        "<description>Short.</description>"
        "<content:encoded><![CDATA[<p>Only a couple of sentences here.</p>]]></content:encoded></item>"
    )
    body = rss_feed([teaser]).replace('<rss version="2.0">', '<rss version="2.0" '
                                      'xmlns:content="http://purl.org/rss/1.0/modules/content/">')
    _, items, _ = capture(tmp_path, [write(tmp_path, "teaser.xml", body)])
    assert items[0].content is None


def test_feeds_are_fetched_by_url_and_their_links_are_not(tmp_path):
    with FakeWebServer() as web:
        web.route("/rss", body=RSS.read_bytes(), content_type="application/rss+xml; charset=utf-8")
        web.route("/atom", body=ATOM.read_bytes(), content_type="application/atom+xml")
        reports, items, recorder = capture(tmp_path, [web.url + "/rss", web.url + "/atom"])
        assert sorted(web.paths()) == ["/atom", "/rss"]
    assert [r.added for r in reports] == [7, 6] and len(items) == 13
    assert [e["service"] for e in recorder.of("api_call_complete")] == ["web", "web"]


def test_an_unreadable_feed_is_reported_and_the_others_go_on(tmp_path):
    with FakeWebServer() as web:
        web.page("/not-a-feed", "<html><body><p>Just a page.</p></body></html>")
        sources = [web.url + "/missing", str(tmp_path / "nowhere.xml"), web.url + "/not-a-feed", str(RSS)]
        reports, items, recorder = capture(tmp_path, sources)
    assert [r.errors for r in reports] == [
        [f"HTTP 404 for {web.url}/missing"],
        [f"feed file not found: {tmp_path / 'nowhere.xml'}"],
        ["this is a web page, not a feed, and it announces no feed (try `feeds add` with the site's address)"],
        [],
    ]
    assert reports[3].added == 7 and len(items) == 7
    assert sorted(e["source"] for e in recorder.of("feed_error")) == sorted(sources[:3])


def test_a_feed_that_trickles_is_cut_at_item_timeout_and_the_others_go_on(tmp_path):
    with FakeWebServer() as web:
        web.stream("/drip.xml", lambda: (b"<rss>" for _ in range(1000)), chunk_delay=0.1,
                   content_type="application/rss+xml")
        started = time.monotonic()
        reports, items, _ = capture(tmp_path, [web.url + "/drip.xml", str(RSS)], api_timeout="30", item_timeout="1")
        elapsed = time.monotonic() - started
    assert reports[0].errors == ["feed took longer than ITEM_TIMEOUT=1s"]
    assert reports[1].added == 7 and elapsed < 5


def test_feed_urls_are_checked_for_safety_by_default(tmp_path):
    with FakeWebServer() as web:
        web.route("/rss", body=RSS.read_bytes(), content_type="application/rss+xml")
        reports, items, _ = capture(tmp_path, [web.url + "/rss"], allow_private_urls="false")
        assert web.paths() == []
    assert items == [] and "loopback" in reports[0].errors[0]


def test_a_feed_with_xml_errors_but_entries_is_still_captured(tmp_path):
    broken = rss_feed([rss_item(1), rss_item(2)]).replace("</channel></rss>", "<item><title>cut")
    reports, items, recorder = capture(tmp_path, [write(tmp_path, "broken.xml", broken)])
    assert len(items) == 2 and reports[0].errors == []
    assert len(recorder.of("feed_warning")) == 1


def test_dry_run_adds_nothing_and_lists_what_it_would_add(tmp_path):
    copy = write(tmp_path, "copy.xml", RSS.read_bytes())
    reports, items, _ = capture(tmp_path, [str(RSS), copy], dry_run=True)
    assert items == []
    would_add = [item for r in reports for item in r.would_add]
    assert len(would_add) == 7 and sum(r.duplicates for r in reports) == 7
    assert all(i.source_type is SourceType.RSS and i.content for i in would_add)
    assert not (tmp_path / "feeds.db").exists()


@pytest.mark.parametrize(
    "link, canonical",
    [
        ("HTTPS://Example.COM/Path?b=2&utm_source=x&a=1#top", "https://example.com/Path?b=2&a=1"),
        ("http://example.com:80", "http://example.com/"),
        ("https://example.com:8443/x?fbclid=abc&gclid=1", "https://example.com:8443/x"),
        ("https://example.com./x", "https://example.com/x"),
    ],
)
def test_canonical_links(link, canonical):
    assert canonical_link(link) == canonical


# --- relative entry links ---------------------------------------------------------------------------

def atom(entries: str, head: str = "", base: str = "") -> str:
    base_attr = f' xml:base="{base}"' if base else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{base_attr}>'
            f"<title>Blog</title><id>urn:blog</id><updated>2013-01-30T00:00:00Z</updated>{head}{entries}</feed>")


def atom_entry(n: int, href: str) -> str:
    return (f"<entry><title>Post {n}</title><id>urn:post:{n}</id><updated>2013-01-30T00:00:00Z</updated>"
            f'<link href="{href}"/></entry>')


PLEX = atom_entry(1, "/blog/2013/01/30/Plex") + atom_entry(2, "2013/02/01/Kodi")


@pytest.mark.parametrize("feed, expected", [
    (atom(PLEX, base="https://blog.example.org/"),
     ["https://blog.example.org/2013/02/01/Kodi", "https://blog.example.org/blog/2013/01/30/Plex"]),
    (atom(PLEX, head='<link rel="self" href="https://blog.example.org/feeds/atom.xml"/>'),
     ["https://blog.example.org/blog/2013/01/30/Plex", "https://blog.example.org/feeds/2013/02/01/Kodi"]),
    (atom(PLEX, head='<link rel="alternate" href="https://blog.example.org/"/>'),
     ["https://blog.example.org/2013/02/01/Kodi", "https://blog.example.org/blog/2013/01/30/Plex"]),
    (atom(PLEX, head='<link rel="alternate" href="https://blog.example.org/"/>', base="/archive/"),
     ["https://blog.example.org/archive/2013/02/01/Kodi", "https://blog.example.org/blog/2013/01/30/Plex"]),
    (rss_feed([rss_item(1, link="/posts/one"), rss_item(2, link="posts/two")]),
     ["https://example.com/posts/one", "https://example.com/posts/two"]),
], ids=["xml-base", "self", "alternate", "relative-xml-base", "rss-channel-link"])
def test_relative_links_of_a_feed_file_are_resolved(tmp_path, feed, expected):
    reports, items, _ = capture(tmp_path, [write(tmp_path, "feed.xml", feed)])
    assert sorted(i.url for i in items) == expected
    assert reports[0].rejected == 0


def test_relative_links_of_a_feed_over_http_fall_back_to_the_feed_url(tmp_path):
    with FakeWebServer() as web:
        web.route("/blog/feed.atom", body=atom(PLEX), content_type="application/atom+xml")
        _, items, _ = capture(tmp_path, [web.url + "/blog/feed.atom"])
    assert sorted(i.url for i in items) == [f"{web.url}/blog/2013/01/30/Plex", f"{web.url}/blog/2013/02/01/Kodi"]


def test_a_feed_losing_most_entries_is_a_warning_with_counts_per_reason(tmp_path):
    feed = write(tmp_path, "nobase.xml", atom(PLEX + atom_entry(3, "javascript:alert(1)")
                                             + atom_entry(4, "https://example.net/kept")))
    reports, items, recorder = capture(tmp_path, [feed])
    assert [i.url for i in items] == ["https://example.net/kept"]
    assert (reports[0].found, reports[0].added, reports[0].rejected) == (4, 1, 3)
    [complete] = recorder.of("capture_complete")
    assert complete["rejected_reasons"] == {"relative link and no base to resolve it": 2,
                                            "unsupported link scheme javascript:": 1}
    [warning] = [e for e in recorder.of("feed_warning") if "rejected" in e["warning"]]
    assert warning["warning"] == ("3 of 4 entries rejected (relative link and no base to resolve it: 2, "
                                  "unsupported link scheme javascript:: 1)")
    assert warning["rejected_reasons"] == complete["rejected_reasons"]


def test_losing_half_or_fewer_entries_is_no_warning(tmp_path):
    feed = write(tmp_path, "half.xml", atom(atom_entry(1, "/relative") + atom_entry(2, "https://example.net/ok")))
    reports, _, recorder = capture(tmp_path, [feed])
    assert reports[0].rejected == 1
    assert not recorder.of("feed_warning")


def test_malformed_links_are_counted_under_one_reason(tmp_path):
    feed = write(tmp_path, "hosts.xml", rss_feed([rss_item(1, link="http://:80/x"), rss_item(2, link="https://user@/x"),
                                                  rss_item(3, link="http://[::1/broken")]))
    _, _, recorder = capture(tmp_path, [feed])
    assert recorder.of("capture_complete")[0]["rejected_reasons"] == {"link without a host": 2, "malformed link": 1}


def test_a_malformed_self_link_or_xml_base_is_no_base(tmp_path):
    feed = write(tmp_path, "odd.xml", atom(atom_entry(1, "/x"), head='<link rel="self" href="http://[::1/feed"/>',
                                           base="http://[bad"))
    reports, items, _ = capture(tmp_path, [feed])
    assert (reports[0].rejected, items) == (1, [])
def dated(n: int, newest: int) -> str:
    """An entry ``n`` published ``newest`` minutes after a fixed date (larger is newer)."""
    return rss_item(n, when=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=newest))


def test_feed_max_entries_keeps_the_newest_and_counts_the_rest_for_the_next_runs(tmp_path):
    feed = write(tmp_path, "f.xml", rss_feed([dated(0, 3), dated(1, 5), dated(2, 1), dated(3, 4), dated(4, 2)]))
    [report], items, recorder = capture(tmp_path, [feed], feed_max_entries="2")
    assert sorted(i.title for i in items) == ["Entry 1", "Entry 3"]
    [complete] = recorder.of("capture_complete")
    assert (complete["found"], complete["added"], complete["over_cap"]) == (5, 2, 3)
    [capped] = recorder.of("feed_entries_capped")
    assert (capped["kept"], capped["over_cap"], capped["limit"]) == (2, 3, 2)
    _, items, recorder = capture(tmp_path, [feed], feed_max_entries="2")
    assert sorted(i.title for i in items) == ["Entry 0", "Entry 1", "Entry 3", "Entry 4"]
    assert recorder.of("capture_complete")[0]["over_cap"] == 1


def test_undated_entries_count_as_the_newest_in_feed_order(tmp_path):
    undated = [f"<item><title>Entry {n}</title><link>https://example.com/posts/{n}</link></item>" for n in range(3)]
    feed = write(tmp_path, "f.xml", rss_feed([dated(9, 100), *undated]))
    _, items, _ = capture(tmp_path, [feed], feed_max_entries="2")
    assert sorted(i.title for i in items) == ["Entry 0", "Entry 1"]


TRICKY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
    "<channel><title>Tricky</title><link>https://example.com/</link><description>d</description>"
    "<!-- <item><link>https://example.com/commented</link></item> -->"
    "<item><title>One</title><link>https://example.com/1</link>"
    "<content:encoded><![CDATA[<p>An </item> inside CDATA <item></p>]]></content:encoded></item>"
    '<item id="x"><title>Two</title><link>https://example.com/2</link></item>'
    "<item><title>Three</title><link>https://example.com/3</link></item>"
    "<item><title>Four</title><link>https://example.com/4</link></item>"
    "<item><title>Five</title><link>https://example.com/5</link></item>"
    "</channel></rss>"
)
TRICKY_ATOM = (
    '<?xml version="1.0" encoding="utf-8"?><a:feed xmlns:a="http://www.w3.org/2005/Atom"><a:title>T</a:title>'
    + "".join(f'<a:entry><a:title>E{n}</a:title><a:link href="https://example.com/e{n}"/>'
              f"<a:id>urn:e{n}</a:id><a:updated>2026-01-0{n + 1}T00:00:00Z</a:updated></a:entry>" for n in range(5))
    + "<a:entry><a:title>cut"
)


@pytest.mark.parametrize("text", [TRICKY, TRICKY_ATOM], ids=["rss-cdata-comment", "atom-prefixed-truncated"])
def test_a_feed_read_in_slices_gives_the_entries_of_the_whole(text):
    data = text.encode()
    whole = [e.get("link") for e in slices.parse_whole(data, {}).entries]
    sliced = [e.get("link") for part in slices.slices(data, {}, size=2) for e in part.entries]
    assert sliced == whole and len(whole) >= 5
