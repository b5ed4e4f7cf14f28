"""Feed health: which failures are transient, when to try again, what a feed's status is.

Transient failures (timeouts, connection errors, 5xx, 429, 408, a body that
does not parse) back off exponentially per feed: 15 minutes after the first,
doubling, at most a day. Permanent ones (404, 410, 401, 403 and the other
4xx, a host name that does not exist, a web page instead of a feed, a refused
URL) are retried four times less often, at most every three days. After
``FEED_MAX_ERRORS`` consecutive failures of either kind the feed is paused
until ``feeds resume URL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import ServiceError
from .state import FeedState

TRANSIENT = "transient"
PERMANENT = "permanent"

FIRST_RETRY = timedelta(minutes=15)
MAX_TRANSIENT_DELAY = timedelta(days=1)
PERMANENT_FACTOR = 4
MAX_PERMANENT_DELAY = timedelta(days=3)

OK, FAILING, PAUSED, NEW = "ok", "failing", "paused", "new"

_TRANSIENT_4XX = {408, 425, 429}
_PERMANENT_CODES = {"dns_not_found", "unsafe_url", "too_many_redirects"}


class FeedError(Exception):
    """A feed that could not be read; the message is the one-line reason, ``kind`` transient or permanent."""

    def __init__(self, message: str, kind: str = TRANSIENT) -> None:
        super().__init__(message)
        self.kind = kind


def error_kind(error: ServiceError) -> str:
    """Transient or permanent, for a failed download."""
    status = error.status_code or 0
    if error.code in _PERMANENT_CODES or (400 <= status < 500 and status not in _TRANSIENT_4XX):
        return PERMANENT
    return TRANSIENT


def retry_delay(kind: str, consecutive_errors: int) -> timedelta:
    """How long after its ``consecutive_errors``-th failure in a row a feed is tried again."""
    steps = max(consecutive_errors, 1) - 1
    delay = FIRST_RETRY * (2 ** min(steps, 20))
    if kind == PERMANENT:
        return min(delay * PERMANENT_FACTOR, MAX_PERMANENT_DELAY)
    return min(delay, MAX_TRANSIENT_DELAY)


@dataclass(frozen=True)
class Health:
    """A feed's health at a glance (``feeds list``, the report)."""

    status: str
    paused_by: str | None
    stale: bool


def health(state: FeedState | None, *, user_paused: bool, stale_days: int, now: datetime) -> Health:
    if user_paused:
        return Health(PAUSED, "you", False)
    if state is None or (state.last_attempt is None and state.last_success is None):
        return Health(NEW, None, False)
    if state.paused:
        return Health(PAUSED, "errors", False)
    status = FAILING if state.consecutive_errors else OK
    return Health(status, None, is_stale(state, stale_days, now))


def is_stale(state: FeedState, stale_days: int, now: datetime) -> bool:
    """No new entry for ``stale_days``: by the newest entry's date, else by when an item was last added."""
    if state.last_success is None:
        return False
    latest = state.newest_entry or state.last_new_item or state.first_seen
    return latest < now - timedelta(days=stale_days)


def is_due(state: FeedState | None, now: datetime) -> bool:
    """Whether a failing feed's back-off is over (a healthy feed is always due)."""
    return state is None or state.next_attempt is None or state.next_attempt <= now
