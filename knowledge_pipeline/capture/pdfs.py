"""PDF folder capture: each new PDF file in ``PDF_DIR`` becomes an Inbox item.

Only regular files whose real path is inside the folder are taken: a symlink
leading out of it, a FIFO, a device or a folder named ``*.pdf`` is rejected
with its reason (``entry_rejected``, ``errors`` of ``capture_complete``).
Files are deduplicated by the sha256 of their bytes (hashed in a stream), so a
renamed or copied PDF is not added twice. The title is the PDF's own metadata
title when it looks like a title (not "Title", "Binder1.pdf", "Microsoft Word -
Test.docx"...), else the first heading line of its first page, else the file
name (extract/titles.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

from ..config import Settings
from ..errors import ItemError
from ..extract.pdf import pdf_metadata
from ..localfiles import open_regular
from ..models import NewItem, SourceType
from ..sources.base import SourceStore
from ..telemetry import Telemetry
from . import CaptureReport, report_complete, store_new

_HASH_CHUNK = 1024 * 1024


async def capture_pdfs(
    settings: Settings,
    store: SourceStore,
    telemetry: Telemetry,
    *,
    known_hashes: set[str],
    dry_run: bool = False,
) -> CaptureReport:
    """Add the PDFs of ``settings.pdf_dir`` (not its subfolders) that the store does not have."""
    folder = settings.pdf_dir
    report = CaptureReport(source=str(folder) if folder else "PDF_DIR")
    telemetry.event("capture_start", f"scanning PDF folder {report.source}", source=report.source, kind="pdf")
    if folder is None:
        _complete(telemetry, report, configured=False)
        return report
    try:
        files = await asyncio.to_thread(_pdf_files, folder)
    except OSError as exc:
        reason = (
            f"PDF_DIR {folder} does not exist"
            if isinstance(exc, FileNotFoundError)
            else f"PDF_DIR {folder} cannot be read: {exc.strerror or exc}"
        )
        report.errors.append(reason)
        telemetry.event("capture_error", reason, level=logging.ERROR, source=report.source, error=reason)
        _complete(telemetry, report)
        return report
    for path in files:
        report.found += 1
        try:
            item = await asyncio.to_thread(_new_item, path, folder, settings.max_download_bytes, known_hashes)
        except ItemError as exc:
            report.reject(telemetry, path.name, exc.reason, file=path.name)
            continue
        if item.hash in known_hashes:
            report.duplicates += 1
            continue
        await store_new(store, item, report, telemetry, known_hashes=known_hashes, dry_run=dry_run,
                        pdf_path=item.pdf_path)
    _complete(telemetry, report)
    return report


def _pdf_files(folder: Path) -> list[Path]:
    """Every entry of the folder named *.pdf, whatever it is: what is not a plain file is rejected later."""
    if not folder.is_dir():
        if folder.exists():
            raise NotADirectoryError(20, "not a folder", str(folder))
        raise FileNotFoundError(2, "no such folder", str(folder))
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".pdf")


def _new_item(path: Path, folder: Path, metadata_cap: int, known_hashes: set[str] | None = None) -> NewItem:
    """Hash the file in a stream; its title (which may parse the first page) only when the hash is new,
    from the same bytes when they fit ``metadata_cap``."""
    digest = hashlib.sha256()
    kept: list[bytes] | None = []
    size = 0
    with open_regular(path, within=folder) as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if kept is not None and size <= metadata_cap:
                kept.append(chunk)
            else:
                kept = None
    known = known_hashes is not None and digest.hexdigest() in known_hashes
    title, created = pdf_metadata(b"".join(kept)) if kept and not known else (None, None)
    return NewItem(
        title=title or _title_from_name(path),
        source_type=SourceType.PDF,
        hash=digest.hexdigest(),
        pdf_path=os.path.realpath(path),
        created_date=created,
    )


def _title_from_name(path: Path) -> str:
    return " ".join(path.stem.replace("_", " ").split()) or path.name


def _complete(telemetry: Telemetry, report: CaptureReport, *, configured: bool = True) -> None:
    report_complete(
        telemetry, report, "pdf",
        f"PDF folder {report.source}: {report.found} files, {report.added} added, "
        f"{report.duplicates} duplicates, {report.rejected} rejected",
        # a PDF folder that cannot be read at all is a failed source (see runner's exit code)
        source_failed=bool(report.errors) and not report.found if configured else None,
    )


