"""``--since`` values: a duration back from now (``90m``, ``12h``, ``1d``, ``2w``) or an ISO date/datetime."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
ACCEPTED = "a duration such as 90m, 12h, 1d or 2w, or an ISO date or datetime such as 2024-01-15"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The moment ``text`` names, as an aware datetime (UTC unless the text has an offset).

    Raises ValueError with a message saying what is accepted, or that the moment
    lies outside the years 1-9999 (``9999999d``; ``0001-01-01T00:00+05:00``).
    """
    match = _DURATION.match(text)
    if match:
        now = now or datetime.now(timezone.utc)
        try:
            return now - timedelta(**{_UNITS[match[2].lower()]: int(match[1])})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1: give a shorter duration or a date") from None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not {ACCEPTED}") from None
    if not parsed.tzinfo:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        parsed.astimezone(timezone.utc)  # how the stores compare it
    except OverflowError:
        raise ValueError(f"{text!r} is before the year 1 in UTC: give a later date") from None
    return parsed
