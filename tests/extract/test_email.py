"""Reading a newsletter: decoded headers, the article's text without its wrapping, the web-version link."""

from __future__ import annotations

import quopri
import time
from datetime import datetime, timezone

import pytest

from knowledge_pipeline.extract.email import (
    newsletter_text,
    normalize_message_id,
    parse_header,
    read_email,
    text_fingerprint,
)
from knowledge_pipeline.extract.html import html_to_text
from tests.data import newsletters

PLATFORMS = ("substack", "beehiiv", "mailchimp")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_newsletter_keeps_its_article_and_loses_its_wrapping(platform):
    raw = getattr(newsletters, platform)()
    header = parse_header(raw)
    body = read_email(raw, header.subject)
    for sentence in newsletters.ARTICLE[platform]:
        assert sentence in body.text
    left = [phrase for phrase in newsletters.FOOTER if phrase.lower() in body.text.lower()]
    assert not left, f"wrapping left in the text: {left}"
    assert "\u200c" not in body.text and "\u034f" not in body.text and "|" not in body.text
    assert body.view_url == newsletters.VIEW_URLS[platform]
    assert header.subject == newsletters.SUBJECTS[platform]


def test_without_the_cleanup_the_web_extractor_alone_keeps_the_footer():
    """What the cleanup is for: the same HTML through the web extractor keeps the unsubscribe footer."""
    raw = newsletters.mailchimp()
    html = raw.split(b'text/html; charset="iso-8859-1"')[1]
    text = html_to_text(quopri.decodestring(html.split(b"\r\n\r\n", 1)[1]).decode("cp1252"))
    assert "unsubscribe" in text.lower() or "mailing address" in text.lower()


def test_headers_are_decoded_rfc2047_and_the_sender_is_name_and_address():
    header = parse_header(newsletters.mailchimp())
    assert header.subject == "Caf\u00e9 Weekly: payments at the counter"
    assert header.sender == "Caf\u00e9 Weekly <news@cafeweekly.example>"
    assert header.address == "news@cafeweekly.example"
    assert header.sent == datetime(2025, 1, 14, 13, 5, tzinfo=timezone.utc)


def test_iso_8859_1_label_on_windows_1252_bytes_reads_curly_quotes_and_euro():
    text = read_email(newsletters.mailchimp()).text
    assert "\u201cthe espresso machine is the new point of sale\u201d" in text
    assert "1.2\u20ac" in text and "\u2018tap to pay\u2019" in text
    assert not any("\x80" <= c <= "\x9f" for c in text), "C1 controls: windows-1252 bytes read as latin-1"


def test_plain_text_in_a_legacy_charset_base64_with_signature_and_bracketed_link():
    raw = newsletters.plain_text()
    header = parse_header(raw)
    body = read_email(raw, header.subject)
    assert header.subject == "\u0141\u00f3d\u017a robotics fair"
    assert body.text == ("Dzie\u0144 dobry! \u0141\u00f3d\u017a hosts the robotics fair on Friday.\n\n"
                         "Read the schedule at https://fair.example/schedule.")
    assert body.view_url is None


def test_an_unknown_charset_falls_back_to_utf8_then_windows_1252():
    lying = newsletters.plain_text(charset="utf-8", text="caf\u00e9\n").replace(
        b"charset=utf-8", b"charset=x-unheard-of")
    assert read_email(lying).text == "caf\u00e9"
    unlabelled = (b"From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain\r\n"
                  b"Content-Transfer-Encoding: 8bit\r\n\r\nsmart \x93quotes\x94\r\n")
    assert read_email(unlabelled).text == "smart \u201cquotes\u201d"


@pytest.mark.parametrize("subtype", ["plain", "html"])
def test_utf8_bytes_labelled_iso_8859_1_are_read_as_utf8_like_a_web_page(subtype):
    """Mail programs label UTF-8 as ISO-8859-1 as often as servers do: the same guard as for web pages."""
    body = "<p>Die Gr\u00f6\u00dfe z\u00e4hlt.</p>" if subtype == "html" else "Die Gr\u00f6\u00dfe z\u00e4hlt."
    raw = (f"From: a@b.example\r\nSubject: x\r\nContent-Type: text/{subtype}; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body.encode("utf-8")
    assert read_email(raw).text == "Die Gr\u00f6\u00dfe z\u00e4hlt."


def test_the_message_id_is_normalised_so_the_same_message_has_one_key():
    assert normalize_message_id(" <Abc.123@Mail.Example.COM> ") == "Abc.123@mail.example.com"
    first = parse_header(newsletters.substack(message_id="<X1@MG.substack.com>"))
    second = parse_header(newsletters.substack(message_id="<X1@mg.substack.com>"))
    other = parse_header(newsletters.substack(message_id="<X2@mg.substack.com>"))
    assert first.key == second.key != other.key


def test_without_a_message_id_the_key_comes_from_sender_date_and_subject():
    one = parse_header(newsletters.plain_text(message_id=None))
    again = parse_header(newsletters.plain_text(message_id=None))
    later = parse_header(newsletters.plain_text(message_id=None, when=datetime(2025, 2, 1, tzinfo=timezone.utc)))
    assert one.message_id is None and one.key == again.key != later.key


def test_the_text_fingerprint_ignores_case_and_spacing_only():
    assert text_fingerprint("The  Habit\nLoop") == text_fingerprint("the habit loop")
    assert text_fingerprint("the habit loop") != text_fingerprint("the habit loops")


def test_garbage_headers_never_raise():
    header = parse_header(b"From: =?bogus?Q?x?= <<<\r\nDate: yesterday-ish\r\nSubject: =?utf-8?B?@@@?=\r\n\r\n")
    assert header.sent is None and header.address is None
    assert read_email(b"Subject: empty\r\n\r\n").text == ""


def test_an_article_that_talks_about_unsubscribing_keeps_that_sentence():
    html = ("<html><body><p>Streaming services made it harder to unsubscribe, and regulators noticed.</p>"
            "<p>You are receiving this email because you signed up. <a href='https://x.example/unsub'>"
            "Unsubscribe</a></p></body></html>")
    raw = (b"From: n@x.example\r\nSubject: s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode())
    text = read_email(raw).text
    assert text == "Streaming services made it harder to unsubscribe, and regulators noticed."


@pytest.mark.parametrize("source_type", ["Email", "RSS"])
def test_captured_text_reaches_the_enricher_as_it_was_captured(source_type):
    """Captured content that is text is never re-parsed as HTML because it holds a "<" and a ">"."""
    from knowledge_pipeline.models import Item, SourceType
    from tests.extract.support import extract

    text = "Revenue grew >20% while costs stayed <5% of sales.\n\nSecond paragraph: a<b and c>d.\n\nThird."
    item = Item(id="e1", title="Numbers", source_type=SourceType(source_type), content=text)
    assert extract(item) == text


def _one_cell(n: int, kind: str) -> str:
    if kind == "click-here links":
        cell = "".join(f'<a href="https://x.example/{i}">click here</a> words words ' for i in range(n))
    elif kind == "unsubscribe links":
        cell = "".join(f'<a href="https://x.example/unsubscribe/{i}">x</a> words words ' for i in range(n))
    else:  # a long text, then the links
        cell = "word " * (8 * n) + "".join(f'<a href="https://x.example/{i}">here</a>' for i in range(n))
    return f"<html><body><table><tr><td>{cell}</td></tr></table></body></html>"


@pytest.mark.parametrize("kind", ["click-here links", "unsubscribe links", "links after a long text"])
def test_a_large_hostile_newsletter_is_read_in_time_linear_in_its_size(kind):
    """8,000 links in one table cell (about 0.5 MB): each link's line was read whole, 26 s; now well under a second.

    The bound is generous (a slow, shared machine): a quadratic reading takes
    tens of seconds here, and a mailed 10 MB message would stall capture.
    """
    html = _one_cell(8000, kind)
    started = time.process_time()
    text = newsletter_text(html, "s").text
    assert time.process_time() - started < 8
    assert text.count("word") >= 8000
