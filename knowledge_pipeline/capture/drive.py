"""Google Drive folder capture (``DRIVE_FOLDER_ID``) and the reader of Drive files at enrichment.

Each PDF of the folder (and of its subfolders with ``DRIVE_RECURSIVE``; Google
Docs exported as PDF with ``DRIVE_EXPORT_DOCS``) becomes a PDF item whose
``Drive URL`` (``PDF_URL_PROP``) is the file's ``webViewLink``, as the
original ``ingest_drive.py`` stored them. A file already captured is
recognised from the listing alone: the item's hash is made of the Drive file
id and its ``md5Checksum``, so nothing is downloaded at capture and a new
version of a file (new content) is captured again. Enrichment downloads the
file by id (``alt=media``, or ``files.export`` for a Doc) within
``MAX_DOWNLOAD_MB``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..config import Settings
from ..errors import ExtractionError, ServiceError
from ..extract.pdf import pdf_to_text
from ..models import Item, NewItem, SourceType, sha256_text
from ..services import ServiceGateway
from ..sources.base import SourceStore
from ..telemetry import Telemetry
from . import CaptureReport, report_complete, store_new
from .drive_api import FOLDER, GOOGLE_DOC, PDF, DriveApi, DriveError

_DRIVE_HOSTS = ("drive.google.com", "docs.google.com")
_LINK_PATH = re.compile(r"^/(file|document)/d/([A-Za-z0-9_-]{10,200})(?:/|$)")
_MAX_FOLDERS = 10_000


def drive_file(location: str | None) -> tuple[str, bool] | None:
    """``(file id, is a Google Doc)`` of a Drive link (a ``webViewLink``), or None for any other location."""
    if not location:
        return None
    try:
        parts = urlsplit(location.strip())
    except ValueError:
        return None
    if parts.scheme != "https" or (parts.hostname or "") not in _DRIVE_HOSTS:
        return None
    match = _LINK_PATH.match(parts.path)
    if match:
        return match.group(2), match.group(1) == "document"
    ids = parse_qs(parts.query).get("id")
    if parts.path in ("/open", "/uc") and ids and re.fullmatch(r"[A-Za-z0-9_-]{10,200}", ids[0]):
        return ids[0], False
    return None


def web_view_link(file: dict) -> str:
    link = file.get("webViewLink")
    if isinstance(link, str) and drive_file(link):
        return link
    kind = "document" if file.get("mimeType") == GOOGLE_DOC else "file"
    suffix = "edit" if kind == "document" else "view"
    return f"https://{_DRIVE_HOSTS[kind == 'document']}/{kind}/d/{file['id']}/{suffix}"


async def capture_drive(
    *,
    settings: Settings,
    store: SourceStore,
    telemetry: Telemetry,
    known_hashes: set[str],
    dry_run: bool = False,
    gateway: ServiceGateway,
) -> CaptureReport:
    """Add the folder's new PDFs (and Docs); a Drive failure is one line in ``errors``, never an exception."""
    folder_id = settings.drive_folder_id or ""
    report = CaptureReport(source=f"drive:{folder_id}")
    telemetry.event("capture_start", f"listing Google Drive folder {folder_id}", source=report.source, kind="drive")
    api: DriveApi | None = None
    try:
        api = DriveApi(settings, gateway)
        await _walk(api, settings, folder_id, report, store, telemetry, known_hashes, dry_run)
    except ServiceError as exc:
        reason = _folder_reason(exc, folder_id, api)
        report.errors.append(reason)
        telemetry.event("capture_error", f"Google Drive: {reason}", level=logging.ERROR, source=report.source,
                        kind="drive", error=reason)
    finally:
        if api is not None:
            await api.close()
    _complete(telemetry, report)
    return report


async def _walk(
    api: DriveApi,
    settings: Settings,
    folder_id: str,
    report: CaptureReport,
    store: SourceStore,
    telemetry: Telemetry,
    known_hashes: set[str],
    dry_run: bool,
) -> None:
    root = await api.get_file(folder_id, fields="id,name,mimeType,driveId")
    if root.get("mimeType") != FOLDER:
        raise DriveError(f"DRIVE_FOLDER_ID {folder_id} is a file ({str(root.get('name'))[:80]!r}), not a folder: "
                         "use the id in the folder's URL (.../drive/folders/<id>)", reason="notAFolder")
    wanted = (PDF,) + ((GOOGLE_DOC,) if settings.drive_export_docs else ()) + ((FOLDER,) if settings.drive_recursive else ())
    queue, seen = [folder_id], {folder_id}
    while queue:
        current = queue.pop(0)
        async for files in api.list_children(current, wanted):
            for file in files:
                if file.get("mimeType") == FOLDER:
                    if file.get("id") not in seen and len(seen) < _MAX_FOLDERS:
                        seen.add(file["id"])
                        queue.append(file["id"])
                    continue
                report.found += 1
                item = _new_item(file)
                if item.hash in known_hashes:
                    report.duplicates += 1
                    continue
                await store_new(store, item, report, telemetry, known_hashes=known_hashes, dry_run=dry_run,
                                pdf_path=item.pdf_path, drive_file_id=file["id"])


def _new_item(file: dict) -> NewItem:
    version = file.get("md5Checksum") or "google-doc"
    return NewItem(
        title=_title(str(file.get("name") or file["id"])),
        source_type=SourceType.PDF,
        hash=sha256_text(f"drive:{file['id']}:{version}"),
        pdf_path=web_view_link(file),
    )


def _title(name: str) -> str:
    stem = PurePosixPath(name).stem if name.lower().endswith(".pdf") else name
    return " ".join(stem.replace("_", " ").split())[:300] or name[:300]


def _folder_reason(exc: ServiceError, folder_id: str, api: DriveApi | None) -> str:
    if isinstance(exc, DriveError) and exc.google_reason == "notFound" and api is not None:
        return (f"folder {folder_id} not found, or not shared with the service account: share it with "
                f"{api.client_email} (Viewer is enough), or check DRIVE_FOLDER_ID")
    return str(exc)


def _complete(telemetry: Telemetry, report: CaptureReport) -> None:
    report_complete(telemetry, report, "drive", f"Google Drive {report.source}: {report.found} files, "
                    f"{report.added} added, {report.duplicates} duplicates"
                    + (", not listed (see the error above)" if report.errors else ""))


class DriveReader:
    """Reads the text of a Drive item: the file downloaded by id (a Doc exported as PDF), then pypdf.

    After an error that every Drive request would repeat (key refused, API not
    enabled) the next Drive items fail at once with the same line, without a request.
    """

    def __init__(self, settings: Settings, gateway: ServiceGateway, fetcher: Any = None) -> None:
        self.settings = settings
        self.gateway = gateway
        self._api: DriveApi | None = None
        self._broken: DriveError | None = None

    @staticmethod
    def accepts(item: Item) -> bool:
        return item.source_type is SourceType.PDF and drive_file(item.pdf_path or item.url) is not None

    async def read(self, item: Item) -> str:
        if self._broken is not None:
            raise self._broken
        found = drive_file(item.pdf_path or item.url)
        assert found is not None
        file_id, is_doc = found
        cap = self.settings.max_download_bytes
        try:
            if self._api is None:
                self._api = DriveApi(self.settings, self.gateway)
            data, truncated = await (self._api.export_pdf(file_id, cap) if is_doc else self._api.download(file_id, cap))
        except DriveError as exc:
            if exc.is_configuration:
                self._broken = exc
            if exc.google_reason == "notFound":
                email = self._api.client_email if self._api else "the service account"
                raise DriveError(f"Drive file {file_id} not found, or no longer shared with {email}",
                                 reason="notFound", status_code=404) from None
            if exc.google_reason == "fileNotDownloadable":
                raise DriveError(f"Drive file {file_id} is a Google Workspace file: it can only be exported "
                                 "(DRIVE_EXPORT_DOCS=true captures Docs as PDF)", reason="fileNotDownloadable") from None
            raise
        if truncated:
            raise ExtractionError(f"PDF larger than MAX_DOWNLOAD_MB ({self.settings.max_download_mb:g} MB)")
        return await asyncio.to_thread(pdf_to_text, data, self.settings.max_pdf_pages)

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
