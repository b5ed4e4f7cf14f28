"""The page body as Notion blocks, cut to Notion's request limits.

Limits (developers.notion.com/reference/request-limits): a rich-text
``text.content`` holds at most 2,000 characters (counted in UTF-16 code units,
as JavaScript does), a rich-text array at most 100 objects, a ``children``
array at most 100 blocks, one append at most two levels of nesting, 1,000
blocks and 500 KB. :func:`plan_body` packs the four toggles and their
children into as few requests as these allow: normally one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from ..enrichers.analyses import body_lines
from ..models import AnalysisResult
from .base import PARAGRAPH_SEPARATOR

MAX_TEXT = 2000
MAX_RICH_TEXT_ITEMS = 100
MAX_CHILDREN = 100
MAX_BLOCKS_PER_REQUEST = 1000
REQUEST_BYTES_BUDGET = 400_000  # under Notion's 500 KB with room for the envelope
BLOCK_CAPACITY = MAX_TEXT * 50  # one paragraph block stays far below the byte budget, whatever the script


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Consecutive pieces of ``text`` (joined they give it back), each at most ``limit`` UTF-16 units.

    Cuts after a newline or a space where one is near the limit, so words stay whole.
    """
    pieces: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _fit(rest, limit)
        window = rest[:cut]
        for mark in ("\n", " "):
            at = window.rfind(mark)
            if at >= cut // 2:
                cut = at + 1
                break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _fit(text: str, limit: int) -> int:
    """The longest prefix length (in code points) within ``limit`` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def cut_words(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` UTF-16 units at a word boundary (with an ellipsis when cut)."""
    text = text.strip()
    if utf16_len(text) <= limit:
        return text
    head = text[: _fit(text, limit - 1)]
    space = head.rfind(" ")
    if space >= len(head) // 2:
        head = head[:space]
    return head.rstrip() + "\u2026"


def rich_text(text: str) -> list[dict]:
    if not text:
        return []
    return [{"type": "text", "text": {"content": piece}} for piece in split_text(text)]


def text_block(kind: str, text: str) -> dict:
    return {"object": "block", "type": kind, kind: {"rich_text": rich_text(text)}}


def paragraph_blocks(text: str) -> list[dict]:
    """Paragraph blocks whose texts, joined with a blank line, give ``text`` back exactly.

    Short paragraphs are packed together (up to one rich-text object's worth)
    to keep the block count, and so the number of requests, low; a longer
    paragraph becomes one block of several rich-text objects. Only a single
    paragraph over ``BLOCK_CAPACITY`` is split across blocks (then the join
    adds a blank line that was not there).
    """
    if not text:
        return []
    blocks: list[str] = []
    for paragraph in text.split(PARAGRAPH_SEPARATOR):
        if blocks and utf16_len(blocks[-1]) + 2 + utf16_len(paragraph) <= MAX_TEXT:
            blocks[-1] += PARAGRAPH_SEPARATOR + paragraph
        elif utf16_len(paragraph) <= BLOCK_CAPACITY:
            blocks.append(paragraph)
        else:
            blocks.extend(split_text(paragraph, BLOCK_CAPACITY))
    return [text_block("paragraph", block) for block in blocks]


def analysis_blocks(result: AnalysisResult) -> list[dict]:
    """One analysis's toggle children: paragraphs, and bullets for lists and table rows."""
    blocks: list[dict] = []
    for kind, line in body_lines(result):
        blocks += paragraph_blocks(line) if kind == "paragraph" else [text_block("bulleted_list_item", line)]
    return blocks


def block_text(block: dict) -> str:
    data = block.get(block.get("type", ""), {}) or {}
    return "".join(part.get("plain_text") or part.get("text", {}).get("content", "") for part in data.get("rich_text", []))


def request_size(value: object) -> int:
    """Bytes of ``value`` as httpx sends it (compact JSON, UTF-8)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


@dataclass
class FollowUp:
    """Children appended to toggle ``index`` (of the first request) after it exists."""

    index: int
    children: list[dict]


@dataclass
class BodyPlan:
    first: list[dict]
    follow_ups: list[FollowUp] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return 1 + len(self.follow_ups)


def plan_body(toggles: Iterable[tuple[str, list[dict]]], budget: int = REQUEST_BYTES_BUDGET) -> BodyPlan:
    """The toggles with as many children as fit in one append; the rest as follow-up appends."""
    toggles = list(toggles)
    first: list[dict] = []
    rest: list[list[dict]] = []
    used = 64
    blocks = len(toggles)
    for title, children in toggles:
        block = text_block("toggle", title)
        used += request_size(block)
        first.append(block)
    for block, (_, children) in zip(first, toggles):
        taken: list[dict] = []
        for child in children:
            size = request_size(child) + 1
            if len(taken) >= MAX_CHILDREN or used + size > budget or blocks + 1 > MAX_BLOCKS_PER_REQUEST:
                break
            taken.append(child)
            used += size
            blocks += 1
        if taken:
            block["toggle"]["children"] = taken
        rest.append(children[len(taken):])
    plan = BodyPlan(first)
    for index, remaining in enumerate(rest):
        plan.follow_ups.extend(FollowUp(index, batch) for batch in _batches(remaining, budget))
    return plan


def _batches(children: list[dict], budget: int) -> list[list[dict]]:
    batches: list[list[dict]] = []
    current: list[dict] = []
    used = 32
    for child in children:
        size = request_size(child) + 1
        if current and (len(current) >= MAX_CHILDREN or used + size > budget):
            batches.append(current)
            current, used = [], 32
        current.append(child)
        used += size
    if current:
        batches.append(current)
    return batches
