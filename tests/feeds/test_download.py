"""Reading a feed cheaply: conditional GET, the body-hash check, a web page instead of a feed."""

from __future__ import annotations

from tests.extract.support import store_refusing
from tests.fakes.feed_server import FakeFeedServer, rss_document
from tests.feeds.support import poll


def test_a_second_run_sends_the_validators_gets_304_and_asks_the_store_nothing(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("news.test", "/rss", rss_document("news.test", 20))
        first = poll(tmp_path, server, [url])
        second = poll(tmp_path, server, [url])
        requests = server.requests_to("news.test")
        statuses = server.stats()["statuses"]
    assert len(first.items) == 20 and first.statuses() == ["ok"]
    assert first.store_calls == {"known_hashes": 1, "add": 20}
    assert requests[0]["if_none_match"] is None
    assert requests[1]["if_none_match"].startswith('"') and requests[1]["if_modified_since"].endswith("GMT")
    assert statuses == {200: 1, 304: 1}
    assert second.statuses() == ["not_modified"] and second.reports[0].found == 0
    assert second.store_calls == {}, "a 304 costs no store request, not even the known hashes"
    assert len(second.items) == 20


def test_a_server_without_validators_costs_a_download_but_no_parse_and_no_store_request(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("plain.test", "/rss", rss_document("plain.test", 5), conditional=False)
        poll(tmp_path, server, [url])
        second = poll(tmp_path, server, [url])
    complete = second.events.of("capture_complete")[0]
    assert (complete["status"], complete["outcome"], complete["found"]) == ("not_modified", "unchanged", 0)
    assert second.store_calls == {}


def test_a_changed_feed_is_read_again_and_only_its_new_entry_is_added(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("news.test", "/rss", rss_document("news.test", 20))
        poll(tmp_path, server, [url])
        server.feed("news.test", "/rss", rss_document("news.test", 20, version=1))
        second = poll(tmp_path, server, [url])
    assert second.statuses() == ["ok"]
    assert (second.reports[0].found, second.reports[0].added, second.reports[0].duplicates) == (20, 1, 19)
    assert len(second.items) == 21


def test_a_web_page_instead_of_a_feed_says_where_its_feed_is(tmp_path):
    with FakeFeedServer() as server:
        feed = server.feed("blog.test", "/feed.xml", rss_document("blog.test", 3))
        page = server.page("blog.test", "/", '<html><head><link rel="alternate" type="application/rss+xml" '
                           'href="/feed.xml"></head><body>Welcome</body></html>')
        result = poll(tmp_path, server, [page])
    assert result.reports[0].errors == [f"this is a web page, not a feed; its feed is at {feed}"]
    error = result.events.of("feed_error")[0]
    assert error["error_kind"] == "permanent" and result.items == []


def test_a_feed_larger_than_the_cap_is_refused_whole(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("big.test", "/rss", rss_document("big.test", 400))
        result = poll(tmp_path, server, [url], max_download_mb="0.05")
    assert result.reports[0].errors == ["feed larger than MAX_DOWNLOAD_MB (0.05 MB)"] and result.items == []


def test_a_recreated_store_gets_every_feed_again_not_a_304(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("news.test", "/rss", rss_document("news.test", 5))
        poll(tmp_path, server, [url])
        (tmp_path / "sources.db").unlink()
        again = poll(tmp_path, server, [url])
        sent = server.requests_to("news.test")[-1]
    assert sent["if_none_match"] is None, "the validators belonged to the deleted store"
    assert len(again.items) == 5 and again.statuses() == ["ok"]
    assert len(again.events.of("feed_state_reset")) == 1


def test_entries_beyond_feed_max_entries_are_read_again_next_run_not_lost_to_a_304(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("news.test", "/rss", rss_document("news.test", 30))
        first = poll(tmp_path, server, [url], feed_max_entries="20")
        second = poll(tmp_path, server, [url], feed_max_entries="20")
        third = poll(tmp_path, server, [url], feed_max_entries="20")
        sent = [r["if_none_match"] for r in server.requests_to("news.test")]
    assert (first.reports[0].added, len(first.items)) == (20, 20)
    assert sent[1] is None, "the feed was not complete: its validators were not kept"
    assert (second.reports[0].added, len(second.items)) == (10, 30)
    assert sent[2] is not None and third.statuses() == ["not_modified"]


def test_an_entry_the_store_refused_is_tried_again_next_run(tmp_path):
    with FakeFeedServer() as server:
        url = server.feed("news.test", "/rss", rss_document("news.test", 5))
        poll(tmp_path, server, [], sources_db_path=str(tmp_path / "sources.db"))  # creates the store file
        with store_refusing(tmp_path / "sources.db", "%/posts/3"):
            first = poll(tmp_path, server, [url])
        second = poll(tmp_path, server, [url])
        sent = [r["if_none_match"] for r in server.requests_to("news.test")]
    assert first.reports[0].added == 4 and first.reports[0].rejected == 1
    assert sent[1] is None and second.reports[0].added == 1 and len(second.items) == 5
