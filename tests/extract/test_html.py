"""HTML to text: the article's words, without navigation, scripts or markup."""

from __future__ import annotations

from knowledge_pipeline.extract.html import html_to_text
from tests.data.generate import ARTICLE_HTML, NO_TEXT_HTML


def test_the_article_text_is_kept_and_the_page_chrome_dropped():
    text = html_to_text(ARTICLE_HTML, url="https://example.com/chips")
    assert "NVIDIA said on Tuesday that new export rules" in text
    assert "lowers the cost of\nswitching" in text or "lowers the cost of switching" in text
    assert "Subscribe" not in text
    assert "All rights reserved" not in text
    assert "<p>" not in text


def test_paragraphs_stay_separate():
    text = html_to_text("<p>First paragraph here.</p><p>Second paragraph here.</p>")
    assert text.splitlines() == ["First paragraph here.", "Second paragraph here."]


def test_bytes_are_decoded_with_the_declared_charset():
    page = (
        b"<html><head><meta charset='iso-8859-1'></head><body><article>"
        b"<p>Caf\xe9 cr\xe8me and na\xefve r\xe9sum\xe9s are common in this longer paragraph of text.</p>"
        b"</article></body></html>"
    )
    assert "Café crème and naïve résumés" in html_to_text(page)


def test_a_short_fragment_still_gives_its_text():
    assert html_to_text("<p>Hello <b>world</b> &amp; friends</p>") == "Hello world & friends"


def test_scripts_and_styles_never_leak_into_the_text():
    text = html_to_text(
        "<html><head><style>.x{color:red}</style></head><body><p>Visible words only.</p>"
        "<script>alert('stolen cookie')</script></body></html>"
    )
    assert text == "Visible words only."


def test_a_page_without_article_text_gives_nothing():
    assert html_to_text(NO_TEXT_HTML) == ""
    assert html_to_text("   ") == ""
    assert html_to_text(b"") == ""


def test_broken_markup_still_gives_its_text():
    text = html_to_text("<html><body><div><p>Unclosed paragraph about OpenAI models<div><p>and another one")
    assert "Unclosed paragraph about OpenAI models" in text and "and another one" in text
