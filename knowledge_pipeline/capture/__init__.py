"""Capture: find new items (feeds, PDF folder, a URL by hand) and add them to the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import NewItem


@dataclass
class CaptureReport:
    """What one capture step found. ``errors`` are one-line reasons (a feed that could not be read)."""

    source: str
    found: int = 0
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    would_add: list[NewItem] = field(default_factory=list)
