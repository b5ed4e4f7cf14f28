"""The OPML feed list: what readers export is read, what we write reads back the same."""

from __future__ import annotations

import pytest

from knowledge_pipeline.feeds.opml import NAMESPACE, FeedSpec, OpmlError, parse_opml, render_opml

READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0" xmlns:other="urn:example:other">
  <head><title>Miniflux</title></head>
  <body>
    <outline text="Tech" title="Tech">
      <outline text="AI" title="AI">
        <outline type="rss" text="Chips Weekly" title="Chips Weekly" xmlUrl="https://chips.example/feed"
                 htmlUrl="https://chips.example/" other:priority="high" description="weekly"/>
      </outline>
      <outline type="rss" text="Gadgets" xmlUrl="https://gadgets.example/rss"/>
    </outline>
    <outline type="rss" text="Loose" xmlUrl="https://loose.example/atom.xml" category="/Science/Physics,/Other"/>
    <outline type="rss" text="Twice" xmlUrl="https://GADGETS.example/rss#x"/>
  </body>
</opml>"""


def test_a_reader_export_is_read_with_folders_as_categories():
    feeds = parse_opml(READER_EXPORT)
    assert [(f.url, f.title, f.category) for f in feeds] == [
        ("https://chips.example/feed", "Chips Weekly", "Tech/AI"),
        ("https://gadgets.example/rss", "Gadgets", "Tech"),
        ("https://loose.example/atom.xml", "Loose", "Science/Physics"),
    ]
    assert feeds[0].html_url == "https://chips.example/"


def test_what_we_write_reads_back_the_same_options_and_foreign_attributes_included():
    feeds = parse_opml(READER_EXPORT) + [
        FeedSpec("https://quiet.example/feed", title="Quiet", window_days=7, paused=True, category="News"),
        FeedSpec("/srv/feeds/local.xml", window_days=0),
    ]
    written = render_opml(feeds)
    assert f'xmlns:kp="{NAMESPACE}"'.encode() in written
    again = parse_opml(written)
    assert again == feeds
    assert dict(again[0].extra) == dict(feeds[0].extra)
    assert ("{urn:example:other}priority", "high") in again[0].extra
    assert render_opml(again, now=None).count(b"<outline") == written.count(b"<outline")


@pytest.mark.parametrize(
    "document, message",
    [
        (b"<opml version='2.0'><body><outline", "is not well-formed XML"),
        (b"<html><body/></html>", "is not an OPML file (its root element is <html>, not <opml>)"),
        (b"<opml version='2.0'><head/></opml>", "has no <body>"),
        (b"<opml><body><outline xmlUrl='javascript:alert(1)'/></body></opml>", "only http(s) URLs and local files"),
        (b"<opml><body><outline xmlUrl=''/></body></opml>", "a feed without a URL"),
        (f"<opml xmlns:kp='{NAMESPACE}'><body><outline xmlUrl='https://a.example/f' kp:windowDays='ten'/>"
         "</body></opml>".encode(), "kp:windowDays='ten' is not a whole number of days"),
        (f"<opml xmlns:kp='{NAMESPACE}'><body><outline xmlUrl='https://a.example/f' kp:paused='maybe'/>"
         "</body></opml>".encode(), "kp:paused='maybe' is not true or false"),
    ],
)
def test_a_bad_list_is_one_line_naming_the_problem(document, message):
    with pytest.raises(OpmlError) as info:
        parse_opml(document, source="feeds.opml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_entity_bomb_is_refused_not_expanded():
    entities = ['<!ENTITY a0 "lol">'] + [f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)]
    bomb = ("<?xml version='1.0'?><!DOCTYPE opml [" + "".join(entities) + "]>"
            "<opml version='2.0'><body><outline text='&a9;' xmlUrl='https://a.example/f'/></body></opml>")
    with pytest.raises(OpmlError) as info:
        parse_opml(bomb.encode())
    assert "not well-formed XML" in str(info.value)
