"""Email newsletter capture: messages of one IMAP folder become Inbox items (Source Type Email), once each.

One connection per run, read-only (EXAMINE, ``BODY.PEEK``: nothing is marked
read, moved or deleted). One SEARCH (``EMAIL_SEARCH`` and the window's
SINCE), then the headers of the matches in batches (size, arrival time,
Message-ID, From, Subject, Date: no body), and only for a message that passes
the sender lists and the window and is not known yet, its body, unless it is
over ``MAX_DOWNLOAD_MB``. Messages are taken newest first (highest UID), at
most ``EMAIL_MAX_MESSAGES`` new ones per run; the rest are counted
(``over_cap``) and taken by later runs. A message is known by the hash of its normalised
Message-ID (in the store), then by the exact fingerprint of its text (within
the run: the same issue sent twice under two Message-IDs). Its text is kept
as the item's content, so enrichment needs no fetch; the "view in browser"
link, when there is one, is the item's URL.

Every IMAP command goes through the service gateway (service ``imap``): one
``api_call_*`` event per attempt, retries on a dropped connection or a
timeout (the session reconnects), none on a wrong password, an untrusted
certificate or a missing folder: those stop the email capture with one line,
and the run goes on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, TypeVar

from ..config import Settings
from ..errors import ServiceError
from ..extract.email import EmailHeader, parse_header, read_email, text_fingerprint
from ..models import NewItem, SourceType
from ..services import ServiceGateway
from ..sources.base import SourceStore
from ..telemetry import Telemetry
from . import CaptureReport, report_complete, store_new
from .imap import FETCH_BATCH, ImapConfig, ImapError, ImapMailbox, MessageHeader

SERVICE = "imap"
T = TypeVar("T")


@dataclass
class _Tally:
    too_old: int = 0
    filtered: int = 0
    too_large: int = 0
    same_text: int = 0
    over_cap: int = 0
    texts: set[str] = field(default_factory=set)


def mailbox_label(settings: Settings) -> str:
    """The capture's ``source``: host and folder (never the password)."""
    return f"imap:{settings.email_imap_host or 'EMAIL_IMAP_HOST'}/{settings.email_imap_folder}"


def sender_allowed(address: str | None, whitelist: tuple[str, ...], blacklist: tuple[str, ...]) -> bool:
    """Blacklist first, then (when set) the whitelist; entries are addresses, ``@domain`` or ``domain``."""
    if address and any(_sender_matches(address, entry) for entry in blacklist):
        return False
    if not whitelist:
        return True
    return bool(address) and any(_sender_matches(address or "", entry) for entry in whitelist)


def _sender_matches(address: str, entry: str) -> bool:
    if "@" in entry and not entry.startswith("@"):
        return address == entry
    domain = entry.lstrip("@")
    own = address.rpartition("@")[2]
    return own == domain or own.endswith("." + domain)


def classify(exc: BaseException) -> ServiceError:
    if isinstance(exc, ImapError):
        return ServiceError(SERVICE, str(exc), code=exc.code, retryable=exc.retryable)
    return ServiceError(SERVICE, f"IMAP call failed ({type(exc).__name__}): {exc}", code=type(exc).__name__)


class _Session:
    """The mailbox's blocking calls, each in a worker thread, through the gateway."""

    def __init__(self, settings: Settings, gateway: ServiceGateway) -> None:
        self.mailbox = ImapMailbox(ImapConfig.from_settings(settings))
        self.gateway = gateway

    async def call(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        def attempt() -> Awaitable[T]:
            return asyncio.to_thread(fn, *args)

        return await self.gateway.call(SERVICE, operation, attempt, classify=classify)

    async def close(self) -> None:
        await asyncio.to_thread(self.mailbox.close)


async def capture_emails(
    settings: Settings,
    store: SourceStore,
    telemetry: Telemetry,
    *,
    known_hashes: set[str],
    dry_run: bool = False,
    gateway: ServiceGateway | None = None,
    now: datetime | None = None,
) -> CaptureReport:
    """Capture the new newsletters of ``EMAIL_IMAP_FOLDER``; one report (``errors`` says why it stopped)."""
    report = CaptureReport(source=mailbox_label(settings))
    tally = _Tally()
    telemetry.event("capture_start", f"reading mailbox {report.source}", source=report.source, kind="email")
    if not settings.email_imap_host:
        _complete(telemetry, report, tally)
        return report
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=settings.email_window_days) if settings.email_window_days else None
    session = _Session(settings, gateway or ServiceGateway.from_settings(settings, telemetry))
    try:
        mailbox = session.mailbox
        await session.call("connect", mailbox.connect)
        since = (cutoff - timedelta(days=1)).date() if cutoff else None  # SINCE is a date in the server's zone
        uids = await session.call("search", mailbox.search, settings.email_search, since)
        for end in range(len(uids), 0, -FETCH_BATCH):  # newest first (UIDs ascend with arrival): the cap keeps them
            batch = uids[max(0, end - FETCH_BATCH):end]
            for header in reversed(await session.call("fetch_headers", mailbox.headers, batch)):
                report.found += 1
                await _capture_message(settings, session, store, telemetry, header, report, tally, cutoff,
                                       known_hashes, dry_run)
    except ServiceError as exc:
        if exc.service != SERVICE:
            raise
        reason = str(exc)
        report.errors.append(reason)
        telemetry.event("capture_error", f"email capture from {report.source} stopped: {reason}",
                        level=logging.ERROR, source=report.source, kind="email", error=reason)
    finally:
        await session.close()
    _complete(telemetry, report, tally)
    return report


async def _capture_message(
    settings: Settings,
    session: _Session,
    store: SourceStore,
    telemetry: Telemetry,
    header: MessageHeader,
    report: CaptureReport,
    tally: _Tally,
    cutoff: datetime | None,
    known_hashes: set[str],
    dry_run: bool,
) -> None:
    info = parse_header(header.header)
    if not sender_allowed(info.address, settings.email_sender_whitelist, settings.email_sender_blacklist):
        tally.filtered += 1
        return
    arrived = header.internal_date or info.sent
    if cutoff is not None and arrived is not None and arrived < cutoff:
        tally.too_old += 1
        return
    if info.key in known_hashes:
        report.duplicates += 1
        return
    if report.added + len(report.would_add) >= settings.email_max_messages:
        tally.over_cap += 1  # left for a later run: not downloaded, not known, so taken when its turn comes
        return
    cap = settings.max_download_bytes
    if header.size > cap:
        tally.too_large += 1
        _reject(telemetry, report, info, f"{header.size / 1048576:.1f} MB, larger than MAX_DOWNLOAD_MB "
                f"({settings.max_download_mb:g} MB)", "larger than MAX_DOWNLOAD_MB")
        return
    try:
        raw = await session.call("fetch_body", session.mailbox.body, header.uid, cap)
    except ServiceError as exc:
        if exc.service != SERVICE or exc.retryable:
            raise  # the connection is gone: the rest of the folder waits for the next run
        _reject(telemetry, report, info, str(exc))
        return
    if raw is None:
        _reject(telemetry, report, info, "the message left the folder during the capture")
        return
    if len(raw) > cap:
        tally.too_large += 1
        _reject(telemetry, report, info, f"larger than MAX_DOWNLOAD_MB ({settings.max_download_mb:g} MB)")
        return
    body = await asyncio.to_thread(read_email, raw, info.subject)
    if not body.text:
        _reject(telemetry, report, info, "no text in the message")
        return
    fingerprint = text_fingerprint(body.text)
    if fingerprint in tally.texts:
        tally.same_text += 1
        report.duplicates += 1
        telemetry.event("entry_duplicate", f"email {info.subject[:80]!r}: same text as a message captured before",
                        level=logging.DEBUG, source=report.source, reason="same text")
        return
    tally.texts.add(fingerprint)
    sent = info.sent or header.internal_date
    item = NewItem(
        title=info.subject or f"Email from {info.sender or 'an unknown sender'}",
        source_type=SourceType.EMAIL,
        hash=info.key,
        url=body.view_url,
        content=body.text,
        created_date=sent.date() if sent else None,
        sender=info.sender,
    )
    await store_new(store, item, report, telemetry, known_hashes=known_hashes, dry_run=dry_run, url=item.url,
                    sender=item.sender)


def _reject(telemetry: Telemetry, report: CaptureReport, info: EmailHeader, reason: str,
            counted_as: str | None = None) -> None:
    report.reject(telemetry, f"email {info.subject[:80]!r} from {info.address or 'unknown sender'}", reason,
                  counted_as=counted_as, kind="email")


def _complete(telemetry: Telemetry, report: CaptureReport, tally: _Tally) -> None:
    report_complete(
        telemetry, report, "email",
        f"mailbox {report.source}: {report.found} messages, {report.added} added, {report.duplicates} duplicates, "
        f"{report.rejected} skipped, {tally.filtered} filtered by sender, {tally.too_old} older than the window"
        + (f", {tally.over_cap} beyond EMAIL_MAX_MESSAGES" if tally.over_cap else ""),
        too_old=tally.too_old,
        filtered_senders=tally.filtered,
        too_large=tally.too_large,
        same_text=tally.same_text,
        over_cap=tally.over_cap,
    )
