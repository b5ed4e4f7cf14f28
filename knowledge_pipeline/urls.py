"""URLs as people see them: without user-info (``alice:pw@``), on one line, of bounded length.

A URL keeps its credentials only where a request needs them (the stored
Article URL, the fetch itself). Everything shown, logged or stored as text
(titles, Failed reasons, events, the console) goes through :func:`shown_url`,
or :func:`strip_userinfo` for free text that may contain URLs; the log
redaction applies the latter to every record as a safety net.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# scheme://user[:password]@ : the user-info part of any URL inside a text, up to the authority's
# last "@" as urlsplit and httpx read it (a password may hold an "@": "alice:p@ss@host")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#]*@")


def strip_userinfo(text: str) -> str:
    """``text`` with the user-info removed from every URL in it."""
    return _USERINFO.sub(r"\1", text) if "@" in text else text


def shown_url(url: str, limit: int | None = 200) -> str:
    """``url`` fit for a message, a title or a log line: no credentials, no newlines, at most ``limit`` chars."""
    text = " ".join(str(url).split())
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        text = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    text = strip_userinfo(text)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
