"""HTML from templates that escape everything: the reading page and the HTML digest share them.

Jinja2 with autoescape on: every value from the web (titles, summaries, text,
labels) is escaped where it is written. Two filters make the only exceptions
safe by construction: ``web_link`` lets a link through only when it is
``http(s)``, and ``hits`` escapes a search snippet and only then wraps its
matches in ``<mark>``.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from ..sources.search_index import HIT_END, HIT_START
from .records import flatten, safe_text

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")


def web_link(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) link (never ``javascript:``, ``data:`` or a local path)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def hits(snippet: str | None) -> Markup:
    """A search snippet escaped, its matches (between HIT_START and HIT_END) in ``<mark>``."""
    parts = (snippet or "").replace(HIT_END, HIT_START).split(HIT_START)
    return Markup("").join(
        Markup("<mark>") + escape(flatten(part)) + Markup("</mark>") if n % 2 else escape(flatten(part))
        for n, part in enumerate(parts)
    )


def paragraphs(text: str | None) -> list[str]:
    """Text split on blank lines, each paragraph cleaned of control characters."""
    return [p.strip() for p in safe_text(text).split("\n\n") if p.strip()]


def when(moment: datetime | date | None, with_time: bool = False) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")
    return moment.isoformat()


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(web_link=web_link, hits=hits, paragraphs=paragraphs, when=when, clean=flatten)
    return env


def render(template: str, **values: object) -> str:
    return environment().get_template(template).render(**values)


def stylesheet() -> str:
    return (STATIC / "style.css").read_text(encoding="utf-8")
