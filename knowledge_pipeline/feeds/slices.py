"""A feed parsed in slices of entries, so memory follows the slice, not the feed.

feedparser builds a dictionary per entry: a valid 9 MB feed of 200,000
entries took over 400 MB parsed whole. A feed of up to ``SLICE`` entries is
parsed whole, as it always was. A longer one is cut at its entry boundaries
(``<item>``/``<entry>``, with or without a namespace prefix; CDATA sections
and comments are skipped) and each slice is parsed as the feed's own header,
those entries and its tail, so encoding declaration, namespaces and channel
stay as they are. Parsing is lazy: one slice is in memory at a time.
"""

from __future__ import annotations

import io
import re
from array import array
from typing import Iterator

import feedparser

SLICE = 500
_TOKENS = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->|<(/?)(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?=[\s/>])[^>]*?(/?)>",
    re.S | re.I,
)


def parse_whole(data: bytes, headers: dict[str, str]) -> feedparser.FeedParserDict:
    # A stream, never bytes or str: feedparser would treat those as a file name or URL to open.
    return feedparser.parse(io.BytesIO(data), response_headers=headers, sanitize_html=True)


def entry_spans(data: bytes) -> tuple[array, array]:
    """Start and end offsets of the top-level entries; an entry cut off by the end of the data ends there."""
    starts, ends = array("q"), array("q")
    depth = 0
    for token in _TOKENS.finditer(data):
        closing, self_closing = token.group(1), token.group(2)
        if closing is None:
            continue  # CDATA or a comment
        if closing:
            if depth:
                depth -= 1
                if not depth:
                    ends.append(token.end())
        elif self_closing:
            if not depth:
                starts.append(token.start())
                ends.append(token.end())
        else:
            if not depth:
                starts.append(token.start())
            depth += 1
    if len(ends) < len(starts):
        ends.append(len(data))
    return starts, ends


def slices(data: bytes, headers: dict[str, str], *, size: int = SLICE) -> Iterator[feedparser.FeedParserDict]:
    """The feed parsed whole when it has at most ``size`` entries, else one parse per ``size`` entries."""
    starts, ends = entry_spans(data)
    if len(starts) <= size:
        yield parse_whole(data, headers)
        return
    header, tail = data[: starts[0]], data[ends[-1]:]
    for first in range(0, len(starts), size):
        last = min(first + size, len(starts)) - 1
        yield parse_whole(header + data[starts[first]: ends[last]] + tail, headers)
