"""Titles: metadata only when it looks like a title, else the first heading line of the text."""

from __future__ import annotations

import pytest

from knowledge_pipeline.extract.titles import best_title, heading_line, looks_like_title

JUNK = ["Title", "title", "Untitled", "Binder1.pdf", "Binder1", "Microsoft Word - Test.docx",
        "Microsoft PowerPoint - Q3 review.pptx", "Model", "Document1", "Presentation 2", "Slide1",
        "C:\\Users\\anna\\Desktop\\report final.doc", "/home/x/out.pdf", "Insert title here", "---", "1234",
        "", None, "  ", "PowerPoint Presentation", "Book1", "Scan_0001", "report_v3_final.docx", "PDF"]
GOOD = ["Board Memo: AI Strategy Roadmap 2027", "Attention Is All You Need", "Kubernetes",
        "Fahrspaß im Winter", "人工知能の安全性に関する報告書", "Q3 2026 Earnings Call Transcript", "GPT-4 System Card"]


@pytest.mark.parametrize("title", JUNK)
def test_junk_is_not_a_title(title):
    assert not looks_like_title(title)


@pytest.mark.parametrize("title", GOOD)
def test_real_titles_are_titles(title):
    assert looks_like_title(title)


def test_the_first_heading_line_skips_page_furniture():
    text = "Page 1\n\n2026-03-01\nhttps://example.com/report\nEnterprise AI Adoption Survey 2026\nBody text follows."
    assert heading_line(text) == "Enterprise AI Adoption Survey 2026"
    assert heading_line("1\n\n" + "a sentence " * 40) is None


def test_metadata_wins_only_when_it_looks_like_a_title():
    text = "Quarterly Inference Cost Review\nSome body."
    assert best_title("Inference costs, 2026", text) == "Inference costs, 2026"
    assert best_title("Microsoft Word - Test.docx", text) == "Quarterly Inference Cost Review"
    assert best_title("Model", "") is None


def test_a_heading_inside_the_metadata_title_drops_the_site_name():
    assert best_title("Agents ship in the enterprise | Example News", "Agents ship in the enterprise\nBody") == \
        "Agents ship in the enterprise"


@pytest.mark.parametrize(
    "title, text",
    [
        ("Fed cuts rates again | Reuters", "Fed cuts rates again\nBody"),
        ("Reuters | Fed cuts rates again", "Fed cuts rates again\nBody"),
        ("Fed cuts rates again - Reuters", "Fed cuts rates again\nBody"),
        ("Fed cuts rates again – The Wall Street Journal", "Fed cuts rates again\nBody"),
        ("Fed cuts rates again: Reuters", "Fed cuts rates again\nBody"),
    ],
)
def test_the_site_name_around_the_heading_is_dropped(title, text):
    assert best_title(title, text) == "Fed cuts rates again"


@pytest.mark.parametrize(
    "title, text",
    [
        ("Kubernetes 1.30 released with sidecar containers", "Kubernetes\nThe release notes follow."),
        ("Fed cuts rates again | Reuters", "Reuters\nWASHINGTON, the Fed said..."),
        ("Reuters: Fed cuts rates again", "Reuters\nWASHINGTON, the Fed said..."),
        ("Kubernetes: sidecar containers ship in 1.30", "Kubernetes\nBody"),
        ("The Fed cuts rates again", "Fed cuts rates\nBody"),
        ("Fed cuts rates again", "Fed\nBody"),
    ],
)
def test_a_heading_that_is_only_a_word_of_the_title_does_not_replace_it(title, text):
    assert best_title(title, text) == title
