"""One URL added by hand ("save it for later"): ``enrich_rss.py --add URL``."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from ..models import NewItem, SourceType, sha256_text
from ..sources.base import SourceStore
from ..telemetry import Telemetry
from ..urls import shown_url, strip_userinfo
from . import CaptureReport, report_complete, store_new
from .links import LinkError, canonical_link

_MAX_TITLE = 300


async def add_url(
    url: str,
    store: SourceStore,
    telemetry: Telemetry,
    *,
    known_hashes: set[str],
    title: str | None = None,
    dry_run: bool = False,
) -> CaptureReport:
    """Add ``url`` to the Inbox unless its canonical link is already known.

    The item is a Website, or a PDF when the URL's path ends in ``.pdf``. An
    invalid URL, or one the store cannot take, is not added: ``rejected`` is 1
    and ``errors`` says why. With ``dry_run`` nothing is added and
    ``would_add`` holds the item.
    """
    report = CaptureReport(source="manual", found=1)
    url = url.strip()
    try:
        canonical = canonical_link(url)
    except LinkError as exc:
        report.reject(telemetry, "not added", str(exc), counted_as=exc.kind, level=logging.ERROR,
                      url=shown_url(url, limit=None))
        _complete(telemetry, report)
        return report
    digest = sha256_text(canonical)
    if digest in known_hashes:
        report.duplicates = 1
        _complete(telemetry, report)
        return report
    is_pdf = urlsplit(url).path.lower().endswith(".pdf")
    shown_title = strip_userinfo(" ".join((title or "").split()))[:_MAX_TITLE] or shown_url(url, _MAX_TITLE)
    item = NewItem(
        title=shown_title,
        source_type=SourceType.PDF if is_pdf else SourceType.WEBSITE,
        hash=digest,
        url=url,
        pdf_path=url if is_pdf else None,
    )
    await store_new(store, item, report, telemetry, known_hashes=known_hashes, dry_run=dry_run,
                    url=shown_url(url, limit=None))
    _complete(telemetry, report)
    return report


def _complete(telemetry: Telemetry, report: CaptureReport) -> None:
    report_complete(telemetry, report, "manual",
                    f"manual add: {report.added} added, {report.duplicates} duplicate, {report.rejected} rejected")
