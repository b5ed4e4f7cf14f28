"""The feed list in a run: OPML options, RSS_FEEDS merged in, a moved feed, a broken list."""

from __future__ import annotations

from datetime import timedelta

import pytest

from knowledge_pipeline.feeds.feed_list import read_feed_file
from knowledge_pipeline.feeds.opml import FeedSpec
from knowledge_pipeline.feeds.state import FeedStateStore
from tests.fakes.feed_server import FakeFeedServer, rss_document
from tests.feeds.support import NOW, poll, write_list


def test_the_list_and_rss_feeds_are_merged_and_each_feed_read_once(tmp_path):
    with FakeFeedServer() as server:
        one = server.feed("one.test", "/rss", rss_document("one.test", 2))
        two = server.feed("two.test", "/rss", rss_document("two.test", 3))
        write_list(tmp_path, [FeedSpec(one, title="One")])
        result = poll(tmp_path, server, [two, one.replace("one.test", "ONE.test")])
        assert len(server.requests_to("one.test")) == 1
    assert len(result.items) == 5 and sorted(result.statuses()) == ["ok", "ok"]


def test_per_feed_category_and_window_are_applied(tmp_path):
    with FakeFeedServer() as server:
        news = server.feed("news.test", "/rss", rss_document("news.test", 20, newest=NOW))
        other = server.feed("other.test", "/rss", rss_document("other.test", 20, newest=NOW))
        write_list(tmp_path, [FeedSpec(news, category="AI/Chips", window_days=2), FeedSpec(other)])
        result = poll(tmp_path, server, rss_window_days="90")
    by_host = {}
    for item in result.items:
        by_host.setdefault(item.url.split("/")[2], []).append(item)
    assert len(by_host["news.test"]) == 9, "an entry every 6 hours: the last 48 hours hold 9"
    assert {i.category for i in by_host["news.test"]} == {"AI/Chips"}
    assert len(by_host["other.test"]) == 20 and {i.category for i in by_host["other.test"]} == {None}


def test_a_feed_paused_in_the_list_is_not_read_and_is_not_a_failed_source(tmp_path):
    with FakeFeedServer() as server:
        quiet = server.feed("quiet.test", "/rss", rss_document("quiet.test", 2))
        write_list(tmp_path, [FeedSpec(quiet, paused=True)])
        result = poll(tmp_path, server)
        assert server.requests_to("quiet.test") == []
    complete = result.events.of("capture_complete")[0]
    assert (complete["status"], complete["source_failed"]) == ("paused", None)


def test_a_permanent_redirect_updates_the_feed_list_and_keeps_the_feed_state(tmp_path):
    with FakeFeedServer() as server:
        new = server.feed("new.test", "/feed.xml", rss_document("new.test", 2))
        old = server.moved("old.test", "/rss", new)
        path = write_list(tmp_path, [FeedSpec(old, title="Moving", category="News")])
        first = poll(tmp_path, server)
        assert [f.url for f in read_feed_file(path)] == [new]
        assert read_feed_file(path)[0].category == "News" and read_feed_file(path)[0].title == "Moving"
        moved = first.events.of("feed_moved")
        assert len(moved) == 1 and moved[0]["moved_to"] == new and moved[0]["origin"] == "list"
        second = poll(tmp_path, server, now=NOW + timedelta(hours=1))
        assert len(server.requests_to("old.test")) == 1, "the next run asks the new address directly"
        assert server.requests_to("new.test")[-1]["if_none_match"] is not None
    assert second.statuses() == ["not_modified"] and len(second.items) == 2
    with FeedStateStore(tmp_path / "feeds.db", read_only=True) as state:
        assert list(state.all()) == [new]


def test_a_temporary_redirect_changes_nothing(tmp_path):
    with FakeFeedServer() as server:
        new = server.feed("cdn.test", "/feed.xml", rss_document("cdn.test", 2))
        old = server.moved("site.test", "/rss", new, status=302)
        path = write_list(tmp_path, [FeedSpec(old)])
        result = poll(tmp_path, server)
    assert [f.url for f in read_feed_file(path)] == [old] and result.events.of("feed_moved") == []


def test_a_moved_rss_feeds_feed_is_read_from_its_new_address_and_the_user_told(tmp_path):
    with FakeFeedServer() as server:
        new = server.feed("new.test", "/feed.xml", rss_document("new.test", 2))
        old = server.moved("old.test", "/rss", new, status=308)
        first = poll(tmp_path, server, [old])
        poll(tmp_path, server, [old], now=NOW + timedelta(hours=1))
        assert len(server.requests_to("old.test")) == 1
    moved = first.events.of("feed_moved")[0]
    assert (moved["origin"], moved["moved_to"]) == ("env", new)


def test_a_broken_feed_list_is_one_clear_error_and_rss_feeds_still_run(tmp_path):
    with FakeFeedServer() as server:
        ok = server.feed("news.test", "/rss", rss_document("news.test", 2))
        (tmp_path / "feeds.opml").write_text("<opml version='2.0'><body><outline xmlUrl='x")
        result = poll(tmp_path, server, [ok])
    errors = result.events.of("capture_error")
    assert len(errors) == 1 and "is not well-formed XML" in errors[0]["error"]
    assert "\n" not in errors[0]["error"] and len(result.items) == 2


def test_a_dry_run_changes_neither_the_list_nor_the_state(tmp_path):
    with FakeFeedServer() as server:
        new = server.feed("new.test", "/feed.xml", rss_document("new.test", 2))
        old = server.moved("old.test", "/rss", new)
        path = write_list(tmp_path, [FeedSpec(old)])
        before = path.read_bytes()
        result = poll(tmp_path, server, dry_run=True)
    assert path.read_bytes() == before and not (tmp_path / "feeds.db").exists()
    assert len(result.reports[0].would_add) == 2 and result.items == []


def test_a_feed_list_broken_during_the_run_keeps_a_moved_feed_on_its_new_address(tmp_path, caplog):
    path = tmp_path / "feeds.opml"

    class Editing(FakeFeedServer):
        def answer(self, host, req_path, headers):
            if host == "old.test":
                path.write_text("<opml><bad")  # someone editing the list by hand while the run reads it
            return super().answer(host, req_path, headers)

    with Editing() as server:
        new = server.feed("new.test", "/feed.xml", rss_document("new.test", 2))
        other = server.feed("other.test", "/rss", rss_document("other.test", 3))
        old = server.moved("old.test", "/rss", new)
        write_list(tmp_path, [FeedSpec(old), FeedSpec(other)])
        first = poll(tmp_path, server, feed_concurrency="1")
        assert path.read_text() == "<opml><bad", "a list that cannot be read is not overwritten"
        write_list(tmp_path, [FeedSpec(old)])
        poll(tmp_path, server, now=NOW + timedelta(hours=1))
        assert len(server.requests_to("old.test")) == 1, "the move was kept in the feed state"
    assert sorted(first.statuses()) == ["ok", "ok"] and len(first.items) == 5
    (moved,) = first.events.of("feed_moved")
    assert moved["moved_to"] == new
    assert any("the feed list was not updated" in r.message and "not well-formed XML" in r.message
               for r in caplog.records)


class Private(FakeFeedServer):
    """private.test answers only with alice's basic credentials."""

    def answer(self, host, req_path, headers):
        if host == "private.test" and headers.get("Authorization") != "Basic YWxpY2U6czNjcmV0LXB3":
            return 401, {"WWW-Authenticate": 'Basic realm="feeds"', "Content-Type": "text/plain"}, b"who?"
        return super().answer(host, req_path, headers)


@pytest.mark.parametrize("origin", ["env", "list"])
def test_a_moved_feed_with_credentials_keeps_them_for_its_host_but_never_stores_them(tmp_path, caplog, origin):
    with Private() as server:
        new = server.feed("private.test", "/new.xml", rss_document("private.test", 2))
        server.moved("private.test", "/rss", "/new.xml")
        old = server.url("private.test", "/rss").replace("http://", "http://alice:s3cret-pw@")
        rss_feeds = [old] if origin == "env" else []
        if origin == "list":  # the user's own file: the new address is written there with its credentials
            write_list(tmp_path, [FeedSpec(old, title="Private")])
        first = poll(tmp_path, server, rss_feeds)
        for hour in (1, 2):
            later = poll(tmp_path, server, rss_feeds, now=NOW + timedelta(hours=hour))
            assert later.statuses() == ["not_modified"], later.events.of("capture_complete")
        assert len(server.requests_to("private.test", "/rss")) == 1
    assert first.statuses() == ["ok"] and len(first.items) == 2
    assert b"s3cret-pw" not in (tmp_path / "feeds.db").read_bytes()
    assert not any("s3cret-pw" in record.getMessage() for record in caplog.records)
    assert new in first.events.of("feed_moved")[0]["moved_to"]
