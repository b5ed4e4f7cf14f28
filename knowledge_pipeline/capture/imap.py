"""A read-only IMAP mailbox: connect (TLS or STARTTLS), log in, EXAMINE one folder, search, fetch with PEEK.

Blocking :mod:`imaplib` calls, each network step bounded by the socket
timeout (``API_TIMEOUT``); the async capture runs them in a worker thread.
Nothing here changes the mailbox: the folder is opened with EXAMINE, so the
server itself refuses any flag change, move or expunge, and bodies are read
with ``BODY.PEEK`` so no message is marked read.

TLS is verified against the system's CAs (or ``EMAIL_IMAP_CA_FILE``), host
name included; imaplib's own default context verifies nothing, so it is never
used. Without implicit TLS the connection is upgraded with STARTTLS; a
server that does not offer it is used in clear text only on loopback.

Every failure is an :class:`ImapError` with one line naming the cause and
whether a new connection could succeed (``retryable``); a broken connection
is dropped, and the next call reconnects.
"""

from __future__ import annotations

import imaplib
import ipaddress
import re
import socket
import ssl
import time
from base64 import b64decode, b64encode
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from ..config import Settings

HEADER_FIELDS = ("MESSAGE-ID", "FROM", "SUBJECT", "DATE")
FETCH_BATCH = 200
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "[^"]*"')
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')


class ImapError(Exception):
    """One IMAP failure, in one line; ``retryable`` when a new connection may succeed."""

    def __init__(self, message: str, *, retryable: bool = False, code: str = "imap_error") -> None:
        self.retryable = retryable
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    implicit_tls: bool
    user: str
    password: str
    folder: str = "INBOX"
    ca_file: Path | None = None
    timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImapConfig:
        return cls(
            host=settings.email_imap_host or "",
            port=settings.email_imap_port,
            implicit_tls=settings.email_imap_ssl,
            user=settings.email_imap_user or "",
            password=settings.email_imap_password or "",
            folder=settings.email_imap_folder,
            ca_file=settings.email_imap_ca_file,
            timeout=settings.api_timeout,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MessageHeader:
    """What a message costs nothing to know: its UID, size, arrival time and a few header fields."""

    uid: int
    size: int
    internal_date: datetime | None
    header: bytes


class ImapMailbox:
    """One folder of one account, read-only. Not thread-safe: one worker thread at a time."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self._conn: imaplib.IMAP4 | None = None
        self._uidvalidity: bytes | None = None

    # -- connection -------------------------------------------------------------------

    def connect(self) -> None:
        """Connect, secure, log in and EXAMINE the folder (again, after a broken connection)."""
        if self._conn is not None:
            return
        conn = self._open_secured()
        try:
            self._login(conn)
            self._examine(conn)
        except BaseException:
            _shutdown(conn)
            raise
        self._conn = conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            _shutdown(conn)

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ImapError(f"cannot load EMAIL_IMAP_CA_FILE {self.config.ca_file}: {_reason(exc)}") from None

    def _open_secured(self) -> imaplib.IMAP4:
        cfg = self.config
        context = self._tls_context()
        try:
            if cfg.implicit_tls:
                return imaplib.IMAP4_SSL(cfg.host, cfg.port, ssl_context=context, timeout=cfg.timeout)
            conn = imaplib.IMAP4(cfg.host, cfg.port, timeout=cfg.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise _untrusted(cfg, exc) from None
        except ssl.SSLError as exc:
            raise ImapError(
                f"TLS handshake with {cfg.address} failed ({_reason(exc)}); is {cfg.port} an implicit-TLS port? "
                "(993 with EMAIL_IMAP_SSL=true, 143 with EMAIL_IMAP_SSL=false)", code="tls_error") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise _connection_error(cfg, exc) from None
        try:
            if "STARTTLS" in conn.capabilities:
                conn.starttls(ssl_context=context)
            elif not _is_loopback(conn):
                raise ImapError(
                    f"{cfg.address} does not offer STARTTLS: refusing to send the password in clear text "
                    "(plain IMAP is allowed only on loopback; use EMAIL_IMAP_SSL=true and port 993)",
                    code="tls_required")
        except ssl.SSLCertVerificationError as exc:
            _shutdown(conn)
            raise _untrusted(cfg, exc) from None
        except (ssl.SSLError, imaplib.IMAP4.error) as exc:
            _shutdown(conn)
            raise ImapError(f"STARTTLS with {cfg.address} failed: {_reason(exc)}", code="tls_error") from None
        except OSError as exc:
            _shutdown(conn)
            raise _connection_error(cfg, exc) from None
        except BaseException:
            _shutdown(conn)
            raise
        return conn

    def _login(self, conn: imaplib.IMAP4) -> None:
        cfg = self.config
        try:
            if "AUTH=PLAIN" in conn.capabilities:
                token = b"\0" + cfg.user.encode() + b"\0" + cfg.password.encode()
                conn.authenticate("PLAIN", lambda _challenge: token)
            elif "LOGINDISABLED" in conn.capabilities:
                raise ImapError(f"{cfg.address} does not allow logging in on this connection (LOGINDISABLED)")
            else:
                conn.login(cfg.user, cfg.password)
        except imaplib.IMAP4.abort as exc:
            raise _connection_error(cfg, exc) from None
        except imaplib.IMAP4.error as exc:
            detail = _redact(_reason(exc), cfg.password)
            raise ImapError(
                f"IMAP login as {cfg.user} on {cfg.address} failed: {detail} (check EMAIL_IMAP_USER and "
                "EMAIL_IMAP_PASSWORD; Gmail and Outlook need an app password)", code="auth_failed") from None
        except UnicodeEncodeError:
            raise ImapError(f"{cfg.address} accepts only ASCII user names and passwords (no AUTH=PLAIN)") from None
        except OSError as exc:
            raise _connection_error(cfg, exc) from None

    def _examine(self, conn: imaplib.IMAP4) -> None:
        cfg = self.config
        try:
            status, data = conn.select(mailbox_name(cfg.folder), readonly=True)
            if status != "OK":
                folders = ", ".join(_folder_names(conn)[:20]) or "none"
                raise ImapError(
                    f"IMAP folder {cfg.folder!r} not found on {cfg.address} ({_reason(data)}); set "
                    f"EMAIL_IMAP_FOLDER to one of: {folders}", code="folder_not_found")
            _, values = conn.response("UIDVALIDITY")
        except imaplib.IMAP4.abort as exc:
            raise _connection_error(cfg, exc) from None
        except imaplib.IMAP4.error as exc:
            raise ImapError(f"cannot open IMAP folder {cfg.folder!r}: {_reason(exc)}") from None
        except OSError as exc:
            raise _connection_error(cfg, exc) from None
        validity = values[0] if values and values[0] else None
        if self._uidvalidity is not None and validity != self._uidvalidity:
            raise ImapError(f"IMAP folder {cfg.folder!r} was recreated during the capture (UIDVALIDITY changed); "
                            "the next run reads it again")
        self._uidvalidity = validity

    # -- reading ----------------------------------------------------------------------

    def search(self, criteria: str | None, since: date | None = None) -> list[int]:
        """UIDs matching ``criteria`` (IMAP SEARCH syntax) that arrived on or after ``since``, ascending."""
        keys = f"({criteria})" if criteria and criteria.strip() else "ALL"
        if since is not None:
            keys += f" SINCE {since.day}-{_MONTHS[since.month - 1]}-{since.year}"
        status, data = self._command("SEARCH", "UID", "SEARCH", keys)
        if status != "OK":
            raise ImapError(f"EMAIL_SEARCH {criteria!r} rejected by {self.config.address}: {_reason(data)}",
                            code="bad_search")
        return sorted({int(uid) for line in data if line for uid in line.split()})

    def headers(self, uids: Sequence[int]) -> list[MessageHeader]:
        """Size, arrival time and the header fields of ``HEADER_FIELDS`` for each UID (missing ones left out)."""
        if not uids:
            return []
        query = f"(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS ({' '.join(HEADER_FIELDS)})])"
        status, data = self._command("FETCH headers", "UID", "FETCH", _uid_set(uids), query)
        if status != "OK":
            raise ImapError(f"IMAP FETCH failed on {self.config.address}: {_reason(data)}", retryable=True)
        found = []
        for meta, literal in _fetch_parts(data):
            uid, size = _UID.search(meta), _SIZE.search(meta)
            if uid is None or size is None:
                continue
            stamp = _INTERNALDATE.search(meta)
            found.append(MessageHeader(int(uid.group(1)), int(size.group(1)),
                                       _internal_date(stamp.group(0)) if stamp else None, literal or b""))
        return sorted(found, key=lambda h: h.uid)

    def body(self, uid: int, max_bytes: int) -> bytes | None:
        """The message (``BODY.PEEK[]``: not marked read), at most ``max_bytes + 1`` bytes; None when it is gone."""
        query = f"(UID BODY.PEEK[]<0.{max_bytes + 1}>)"
        status, data = self._command("FETCH body", "UID", "FETCH", str(uid), query)
        if status != "OK":
            raise ImapError(f"IMAP FETCH of message {uid} failed on {self.config.address}: {_reason(data)}")
        for meta, literal in _fetch_parts(data):
            match = _UID.search(meta)
            if literal is not None and (match is None or int(match.group(1)) == uid):
                return literal
        return None

    def _command(self, what: str, name: str, *args: str) -> tuple[str, list]:
        """One command on the (re)connected session; a broken connection is dropped for the next call."""
        self.connect()
        assert self._conn is not None
        try:
            return getattr(self._conn, name.lower())(*args)
        except imaplib.IMAP4.abort as exc:
            self._drop()
            raise _connection_error(self.config, exc) from None
        except imaplib.IMAP4.error as exc:
            return "BAD", [str(exc).encode()]
        except OSError as exc:
            self._drop()
            raise _connection_error(self.config, exc, during=what) from None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _shutdown(conn)


def mailbox_name(name: str) -> str:
    """A folder name as an IMAP argument: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    encoded = []
    pending = ""

    def flush() -> None:
        nonlocal pending
        if pending:
            data = b64encode(pending.encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            encoded.append(f"&{data}-")
            pending = ""

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            encoded.append("&-" if char == "&" else char)
        else:
            pending += char
    flush()
    text = "".join(encoded)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _decode_mailbox(raw: bytes) -> str:
    text = raw.decode("ascii", "replace").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])

    def decode(match: re.Match) -> str:
        data = match.group(1)
        if not data:
            return "&"
        data = data.replace(",", "/")
        try:
            return b64decode(data + "=" * (-len(data) % 4)).decode("utf-16-be")
        except ValueError:
            return match.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", decode, text)


def _folder_names(conn: imaplib.IMAP4) -> list[str]:
    try:
        status, data = conn.list()
    except (imaplib.IMAP4.error, OSError):
        return []
    if status != "OK":
        return []
    names = []
    for line in data:
        if isinstance(line, tuple):  # a name sent as a literal
            names.append(_decode_mailbox(line[1]))
            continue
        match = _LIST_LINE.match(line or b"")
        if match and b"\\noselect" not in match.group("flags").lower():
            names.append(_decode_mailbox(match.group("name")))
    return sorted(names, key=lambda n: (n.upper() != "INBOX", n.lower()))


def _fetch_parts(data: list) -> Iterator[tuple[bytes, bytes | None]]:
    """(metadata, literal) per message of a FETCH answer, whatever order the server put the items in."""
    pending: list[bytes] = []
    literal: bytes | None = None
    started = False
    for part in data:
        if isinstance(part, tuple):
            if started:
                yield b" ".join(pending), literal
            pending, literal, started = [part[0]], part[1], True
        elif isinstance(part, bytes):
            if re.match(rb"^\d+ \(", part):
                if started:
                    yield b" ".join(pending), literal
                pending, literal, started = [part], None, True
            elif started:
                pending.append(part)
    if started:
        yield b" ".join(pending), literal


def _uid_set(uids: Sequence[int]) -> str:
    """``1:3,7,9:10`` for [1, 2, 3, 7, 9, 10]."""
    ordered = sorted(set(uids))
    ranges = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            ranges.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    ranges.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(ranges)


def _internal_date(raw: bytes) -> datetime | None:
    parsed = imaplib.Internaldate2tuple(raw)
    if parsed is None:
        return None
    return datetime.fromtimestamp(time.mktime(parsed), tz=timezone.utc)


def _is_loopback(conn: imaplib.IMAP4) -> bool:
    try:
        host = conn.sock.getpeername()[0]
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except (OSError, ValueError, AttributeError):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _shutdown(conn: imaplib.IMAP4) -> None:
    try:
        conn.shutdown()
    except (OSError, imaplib.IMAP4.error):
        pass


def _untrusted(cfg: ImapConfig, exc: ssl.SSLCertVerificationError) -> ImapError:
    trusted = f"EMAIL_IMAP_CA_FILE {cfg.ca_file}" if cfg.ca_file else "the system's CAs"
    return ImapError(
        f"TLS certificate of {cfg.address} is not trusted ({exc.verify_message or _reason(exc)}; checked against "
        f"{trusted}); point EMAIL_IMAP_CA_FILE at the server's CA if it is a private one", code="tls_untrusted")


def _connection_error(cfg: ImapConfig, exc: BaseException, during: str = "") -> ImapError:
    if isinstance(exc, socket.gaierror):
        return ImapError(f"cannot resolve EMAIL_IMAP_HOST {cfg.host}: {exc.strerror or exc}", code="dns_error")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        step = f" during {during}" if during else ""
        return ImapError(f"IMAP server {cfg.address} did not answer within {cfg.timeout:g}s{step}",
                         retryable=True, code="timeout")
    return ImapError(f"IMAP connection to {cfg.address} failed: {_reason(exc)}", retryable=True,
                     code="connection_error")


def _reason(value: object) -> str:
    """One line from an exception or an IMAP answer (list of bytes)."""
    if isinstance(value, list):
        value = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in value if v)
    if isinstance(value, BaseException) and isinstance(getattr(value, "strerror", None), str):
        value = value.strerror
    if isinstance(value, BaseException) and value.args and isinstance(value.args[0], bytes):
        value = value.args[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = " ".join(str(value).split()) or type(value).__name__
    return text[:300]


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "[REDACTED]") if secret else text
