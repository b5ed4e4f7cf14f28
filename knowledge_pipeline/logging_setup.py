"""Logging setup: one JSONL file for machines, short console lines for people.

Every line of ``$LOG_DIR/pipeline.jsonl`` is one JSON object with exactly the
keys ``timestamp`` (UTC, milliseconds, ``Z``), ``level``, ``logger``,
``message`` and ``extra_fields`` (the event data, ``{}`` when empty). The file
rotates by size without splitting a line. Secrets (the configured tokens and
keys, any ``Authorization``/``Bearer`` value) are replaced by ``[REDACTED]``
in every record, exception text included, before it reaches any handler, and the
user-info of every URL (``https://alice:pw@host``) is removed.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, TextIO

from pythonjsonlogger.json import JsonFormatter

from .config import Settings
from .errors import ConfigError
from .urls import strip_userinfo

LOG_FILE_NAME = "pipeline.jsonl"
REDACTED = "[REDACTED]"
_BEARER = re.compile(r"(?i)\b(bearer|authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)\s*([A-Za-z0-9._~+/=\-]{6,})")
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|secret_[A-Za-z0-9]{8,}|ntn_[A-Za-z0-9]{8,})")
_CONFIGURED = False
_TAIL_STEP = 65536
_MAX_FRAGMENT = 20000


class Redactor:
    """Replaces known secret values and credential-looking strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                variants.add(secret)
                variants.add(json.dumps(secret)[1:-1])
        self.secrets = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}" if m.group(2) != REDACTED else m.group(0), text)
        return strip_userinfo(_KEYLIKE.sub(REDACTED, text))

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """Scrubs message, event fields and exception text of every record in place."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self.redactor(message)
        record.args = None
        fields = getattr(record, "extra_fields", None)
        if fields is not None:
            record.extra_fields = self.redactor.scrub(fields)
        if record.exc_info:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = self.redactor(text)
            record.exc_info = None
        return True


class ConsoleNoiseFilter(logging.Filter):
    """Keeps per-request events off the console unless LOG_LEVEL=DEBUG (the file has them all)."""

    QUIET = frozenset({"api_call_complete", "item_start"})

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return True
        fields = getattr(record, "extra_fields", None) or {}
        return fields.get("event_type") not in self.QUIET


class PipelineJsonFormatter(JsonFormatter):
    """Exactly five top-level keys; event data under ``extra_fields``."""

    def add_fields(self, log_record: dict, record: logging.LogRecord, message_dict: dict) -> None:
        log_record.clear()
        stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        log_record["timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record["message"] = record.getMessage()
        fields = dict(getattr(record, "extra_fields", None) or {"event_type": "log"})
        if record.exc_text:
            fields.setdefault("traceback", record.exc_text)
        log_record["extra_fields"] = fields

    def format(self, record: logging.LogRecord) -> str:
        record.exc_info = None  # traceback text already moved into extra_fields by the filter
        record.stack_info = None
        return super().format(record)


class ConsoleFormatter(logging.Formatter):
    """``15:30:00 INFO  message`` (enhanced) or just the message (original scripts).

    ``dated`` (the stream is a file or a pipe, e.g. cron's log) puts the local
    date and time first, ``2026-01-15 15:30:00``, in both formats.
    """

    def __init__(self, plain: bool, dated: bool = False) -> None:
        super().__init__()
        self.plain = plain
        self.dated = dated

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        when = datetime.fromtimestamp(record.created)
        if self.plain:
            line = message if record.levelno < logging.WARNING else f"{record.levelname}: {message}"
            return f"{when:%Y-%m-%d %H:%M:%S} {line}" if self.dated else line
        stamp = f"{when:%Y-%m-%d %H:%M:%S}" if self.dated else f"{when:%H:%M:%S}"
        return f"{stamp} {record.levelname:<7} {message}"


class _Below(logging.Filter):
    """Passes records under a level (the stdout handler leaves warnings and errors to stderr)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


class ConsoleHandler(logging.StreamHandler):
    """A console stream; once its reader has gone (``| head``) it stays silent instead of a traceback per line.

    The run goes on: the JSONL file still gets every record.
    """

    reader_gone = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.reader_gone:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            self.reader_gone = True
            return
        super().handleError(record)


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console_line(text: str, stream: TextIO | None = None) -> str:
    """A line a CLI prints: dated like the log lines when ``stream`` (default stdout) is not a terminal."""
    if is_terminal(stream or sys.stdout):
        return text
    return f"{datetime.now():%Y-%m-%d %H:%M:%S} {text}"


class SafeRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotates by size; creates files 0600; reports a write failure once, not per record.

    A record cut short (disk full, a kill mid-write) would glue the next
    record onto it and stop every ``jq`` query there. So before the first
    record after opening the file or after a failed write, a last line
    without its newline is cut off and kept, quoted, in a ``log_repaired``
    record.
    """

    _reported = False
    _check_tail = True

    def _open(self):  # noqa: ANN202 - signature of the stdlib
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._check_tail = True
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        if self._check_tail:
            self._check_tail = False
            try:
                fragment = cut_torn_tail(Path(self.baseFilename))
            except OSError:
                fragment = None
            if fragment is not None:
                self._emit_repaired(fragment, record)
        super().emit(record)

    def _emit_repaired(self, fragment: str, before: logging.LogRecord) -> None:
        shown = fragment if len(fragment) <= _MAX_FRAGMENT else fragment[:_MAX_FRAGMENT] + "…"
        repaired = logging.LogRecord(
            before.name, logging.WARNING, __file__, 0,
            f"The log's last line was cut short ({len(fragment)} characters, e.g. by a full disk); "
            "it was moved into this record", None, None,
        )
        repaired.created = before.created
        repaired.extra_fields = {"event_type": "log_repaired", "fragment": shown, "fragment_chars": len(fragment)}
        if self.filter(repaired):
            super().emit(repaired)

    def handleError(self, record: logging.LogRecord) -> None:
        self._check_tail = True
        if not SafeRotatingFileHandler._reported:
            SafeRotatingFileHandler._reported = True
            error = sys.exc_info()[1]
            sys.stderr.write(
                f"error: cannot write log file {self.baseFilename}: {error}; "
                "further log write errors are not shown\n"
            )


def cut_torn_tail(path: Path) -> str | None:
    """Remove a last line that lacks its newline; return it (None when the file ends cleanly)."""
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return None
        start = size
        while start > 0:
            step = min(_TAIL_STEP, start)
            block = os.pread(fd, step, start - step)
            newline = block.rfind(b"\n")
            if newline >= 0:
                start = start - step + newline + 1
                break
            start -= step
        fragment = os.pread(fd, size - start, start)
        os.ftruncate(fd, start)
        return fragment.decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def log_path(settings: Settings) -> Path:
    return settings.log_dir / LOG_FILE_NAME


def _check_log_dir(log_dir: Path) -> None:
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("LOG_DIR", str(log_dir), f"expected a writable directory ({exc.strerror})") from None
    if not os.access(log_dir, os.W_OK | os.X_OK):
        raise ConfigError("LOG_DIR", str(log_dir), "expected a writable directory (permission denied)")


def setup_logging(
    settings: Settings,
    *,
    console: str = "human",
    jsonl: bool = True,
    stream: TextIO | None = None,
    error_stream: TextIO | None = None,
) -> None:
    """Configure the root logger once per process: JSONL file and/or console.

    ``console`` is ``"human"`` (timestamped lines), ``"plain"`` (the original
    scripts' bare lines) or ``"none"``. Progress and results (DEBUG, INFO) go
    to ``stream`` (stdout), warnings and errors to ``error_stream`` (stderr;
    ``stream`` when only that is given), so cron's mail and ``chronic`` see
    failures. Raises ConfigError when LOG_DIR is not writable.
    """
    global _CONFIGURED
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    level = getattr(logging, settings.log_level)
    root.setLevel(level)
    redacting = RedactingFilter(Redactor(settings.secrets))
    if jsonl:
        _check_log_dir(settings.log_dir)
        file_handler = SafeRotatingFileHandler(
            log_path(settings),
            maxBytes=settings.log_max_bytes,
            backupCount=settings.log_backup_count,
            encoding="utf-8",
        )
        file_handler.setFormatter(PipelineJsonFormatter(json_ensure_ascii=False))
        file_handler.addFilter(redacting)
        file_handler.setLevel(level)
        root.addHandler(file_handler)
    if console != "none":
        out = stream or sys.stdout
        err = error_stream or stream or sys.stderr
        for target, below in ((out, logging.WARNING), (err, None)):
            handler = ConsoleHandler(target)
            handler.setFormatter(ConsoleFormatter(plain=console == "plain", dated=not is_terminal(target)))
            handler.addFilter(redacting)
            handler.addFilter(ConsoleNoiseFilter(verbose=level <= logging.DEBUG))
            if below is not None:
                handler.addFilter(_Below(below))
            handler.setLevel(level if below is not None else max(level, logging.WARNING))
            root.addHandler(handler)
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "notion_client", "trafilatura", "asyncio", "htmldate",
                  "courlan", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # a damaged PDF already fails its item with one clear reason; pypdf's own warnings add nothing
    logging.getLogger("pypdf").setLevel(max(level, logging.ERROR))
    logging.captureWarnings(True)
    _CONFIGURED = True
