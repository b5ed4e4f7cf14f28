"""Splitting long texts into chunks that fit one model call.

Tokens are estimated as characters / 4 (no tokenizer download); a chunk
ends at a paragraph boundary when it can, else at a sentence boundary, else
at a space, and only as a last resort in the middle of a word.
"""

from __future__ import annotations

import re

CHARS_PER_TOKEN = 4

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def split_text(text: str, max_chars: int) -> list[str]:
    """Consecutive chunks of at most ``max_chars`` characters covering all of ``text``'s words."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    pieces: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if paragraph:
            pieces.extend(_fit(paragraph, max_chars))
    return _pack(pieces, max_chars, "\n\n")


def _fit(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph as pieces no longer than ``max_chars``: itself, its sentences, or hard cuts."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        pieces.extend(_cut(sentence, max_chars) if len(sentence) > max_chars else [sentence])
    return _pack(pieces, max_chars, " ")


def _cut(text: str, max_chars: int) -> list[str]:
    parts: list[str] = []
    while len(text) > max_chars:
        space = text.rfind(" ", 0, max_chars + 1)
        end = space if space > max_chars // 2 else max_chars
        parts.append(text[:end].strip())
        text = text[end:].strip()
    if text:
        parts.append(text)
    return parts


def _pack(pieces: list[str], max_chars: int, joiner: str) -> list[str]:
    """Greedily join consecutive pieces while the result stays within ``max_chars``."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = current + joiner + piece if current else piece
        if len(candidate) <= max_chars:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def evenly_spaced(chunks: list[str], limit: int) -> list[str]:
    """At most ``limit`` chunks spread over the whole list, first and last included."""
    if len(chunks) <= limit:
        return list(chunks)
    if limit == 1:
        return [chunks[0]]
    step = (len(chunks) - 1) / (limit - 1)
    return [chunks[round(i * step)] for i in range(limit)]
