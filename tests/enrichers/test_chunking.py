"""Splitting long texts into chunks for map-reduce."""

from __future__ import annotations

from knowledge_pipeline.enrichers.chunking import estimate_tokens, evenly_spaced, split_text


def test_chunks_fit_cover_every_word_and_keep_order() -> None:
    text = "\n\n".join(f"Paragraph {i}. " + "A sentence here. " * (i % 9 + 1) for i in range(400))
    chunks = split_text(text, 1_000)
    assert all(len(c) <= 1_000 for c in chunks)
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split())


def test_chunks_end_at_paragraphs_when_they_can() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 + "end." for i in range(10)]
    chunks = split_text("\n\n".join(paragraphs), 400)
    assert len(chunks) == 5  # two whole paragraphs (2 x 178 chars) per chunk
    assert all(part in paragraphs for c in chunks for part in c.split("\n\n"))


def test_a_long_paragraph_is_cut_at_sentences_then_at_spaces() -> None:
    paragraph = " ".join(f"Sentence number {i} is short." for i in range(100))
    chunks = split_text(paragraph, 120)
    assert all(len(c) <= 120 and c.endswith("short.") for c in chunks)
    words = split_text("x" * 50 + " " + "y" * 50, 60)
    assert words == ["x" * 50, "y" * 50]
    assert split_text("z" * 250, 100) == ["z" * 100, "z" * 100, "z" * 50]


def test_evenly_spaced_keeps_first_and_last() -> None:
    items = [str(i) for i in range(20)]
    assert evenly_spaced(items, 4) == ["0", "6", "13", "19"]
    assert evenly_spaced(items, 1) == ["0"]
    assert evenly_spaced(items[:3], 5) == ["0", "1", "2"]


def test_tokens_are_estimated_as_characters_over_four() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
