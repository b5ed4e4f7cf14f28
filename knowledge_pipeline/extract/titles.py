"""Which title an item gets: a metadata title only when it looks like one, else the text's first heading.

PDF metadata titles are often left by the authoring tool ("Title",
"Binder1.pdf", "Microsoft Word - Test.docx", "Model"), so they win over the
text's first heading line only when they read like a title; the caller's
last resort is the file name or the link.
"""

from __future__ import annotations

import re

from ..errors import one_line

MAX_TITLE_CHARS = 300
_HEADING_LINES = 15
_HEADING_MAX_WORDS = 25
# between a page's title and its site's name: "Title | Site", "Title - Site", "Site: Title"
_SEPARATORS = (" | ", " - ", " – ", " — ", ": ", " · ")
_SITE_MAX_WORDS = 6

_PLACEHOLDERS = frozenset(
    """title untitled document model report paper presentation slide slides draft template default test
    none null unknown pdf print scan image article manuscript abstract contents introduction page cover
    page1 front matter""".split()
) | {
    "untitled document", "new document", "no title", "insert title here", "type title here", "your title here",
    "click to edit master title style", "powerpoint presentation", "microsoft word document", "title page",
    "table of contents", "scanned document", "adobe acrobat document", "confidential", "draft only",
}
_NUMBERED_DEFAULT = re.compile(
    r"(binder|document|doc|book|sheet|presentation|slide|untitled|scan|scanned|image|img|file|new|copy|print)"
    r"[\s_-]*\(?\d*\)?",
    re.IGNORECASE,
)
_FILE_NAME = re.compile(
    r"\.(pdf|docx?|dotx?|pptx?|potx?|xlsx?|odt|odp|ods|rtf|txt|md|indd|tex|dvi|ps|eps|qxd|pages|key|numbers|html?)$",
    re.IGNORECASE,
)
_TOOL_PREFIX = re.compile(r"^(microsoft\s+)?(word|powerpoint|excel|office)\s*-\s*", re.IGNORECASE)
_PATH = re.compile(r"^([a-z]:[\\/]|/|~/|\\\\|file:)", re.IGNORECASE)
_LETTERS = re.compile(r"[^\W\d_]{2}")
_NOT_A_HEADING = re.compile(
    r"^(page\s*\d+|\d+(\s*/\s*\d+)?|(https?://|www\.)\S+|\S+@\S+\.\S+|[\d\s./:-]+|copyright\b.*|©.*)$",
    re.IGNORECASE,
)


def normalize(title: str | None) -> str:
    """One line, no control characters, at most MAX_TITLE_CHARS characters."""
    if not title:
        return ""
    return one_line(re.sub(r"[\x00-\x1f\x7f]", " ", title), MAX_TITLE_CHARS)


def looks_like_title(candidate: str | None) -> bool:
    """False for placeholders, file names, tool prefixes, paths and strings without words."""
    title = normalize(candidate)
    lowered = title.lower().strip(" .:-_")
    if len(lowered) < 3 or not _LETTERS.search(title):
        return False
    if lowered in _PLACEHOLDERS or _NUMBERED_DEFAULT.fullmatch(lowered):
        return False
    return not (_FILE_NAME.search(lowered) or _TOOL_PREFIX.match(lowered) or _PATH.match(lowered))


def heading_line(text: str) -> str | None:
    """The first line near the top of ``text`` that reads like a heading (not a page number, date, URL...)."""
    lines = (line.strip() for line in text.splitlines())
    for line in [line for line in lines if line][:_HEADING_LINES]:
        if _NOT_A_HEADING.match(line) or len(line.split()) > _HEADING_MAX_WORDS:
            continue
        if looks_like_title(line):
            return normalize(line.rstrip(":"))
    return None


def best_title(metadata_title: str | None, text: str | None) -> str | None:
    """The metadata title when it looks like one, else the text's first heading line, else None.

    A heading that is the metadata title with the site's or publisher's name
    around it wins over it ("Agents ship | Example News"); a heading that is
    only a word of the title ("Kubernetes", "Reuters") does not.
    """
    heading = heading_line(text) if text else None
    if looks_like_title(metadata_title):
        title = normalize(metadata_title)
        return heading if heading and _decorated(title, heading) else title
    return heading


def _decorated(title: str, heading: str) -> bool:
    """Whether ``title`` is ``heading`` and a site name, split by a separator ("Heading | Site", "Site - Heading").

    The site name is short, and no longer than the heading: "Reuters: Fed cuts
    rates again" is not the heading "Reuters" decorated.
    """
    if title.startswith(heading):
        rest = title[len(heading):]
        return any(rest.startswith(sep) and _site_name(rest[len(sep):], heading) for sep in _SEPARATORS)
    if title.endswith(heading):
        rest = title[: -len(heading)]
        return any(rest.endswith(sep) and _site_name(rest[: -len(sep)], heading) for sep in _SEPARATORS)
    return False


def _site_name(rest: str, heading: str) -> bool:
    words = len(rest.split())
    return 0 < words <= min(_SITE_MAX_WORDS, len(heading.split()))
