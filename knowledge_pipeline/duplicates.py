"""The run's duplicate check: is this text already enriched, or being enriched, before the LLM is paid?

An item is a duplicate of an earlier one when, after extraction,

* its capture hash, or the hash of the URL its page gives itself (``rel=canonical``,
  ``og:url``, the target of its redirects), is a URL of an item enriched within
  ``DEDUP_WINDOW_DAYS`` (the dedup state, ``dedup.FingerprintIndex``), or the page's
  own URL is the hash of an item already in the store;
* its text has the same normalized hash as an enriched item's, or a MinHash
  similarity of at least ``dedup.NEAR_SIMILARITY`` (a syndicated copy, one report
  saved twice).

A URL match is not trusted when both texts are long enough to compare and clearly
differ (a site whose every page names its home page as canonical), and a canonical
URL without a path (``https://example.com/``) is ignored.

Items in flight count too: a worker whose item matches one another worker is
enriching waits for it, then finds it in the index (or goes on, when the first one
failed). So parallel workers never pay twice for one article within a run.
An item that went into a Batch API batch stays claimed for the rest of the run:
a copy found after it is a duplicate of it, not a second line of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import AsyncIterator
from urllib.parse import urlsplit

from .capture.links import LinkError, canonical_link
from .dedup import Fingerprint, FingerprintIndex, Match, similarity
from .errors import EnrichmentDeferred
from .models import Item, sha256_text
from .urls import shown_url

# Below this similarity two texts are not the same article, whatever their URLs say.
DIFFERENT_TEXT = 0.3


@dataclass
class Check:
    """One item's duplicate check: what it matched (None: new), and what to remember once it is written."""

    key: str
    urls: frozenset[str]
    fingerprint: Fingerprint
    match: Match | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    title: str = ""
    location: str | None = None


def describe(match: Match) -> str:
    """``"Title" (https://…): same text`` for events and the store's note."""
    where = f" ({shown_url(match.location, 200)})" if match.location else ""
    return f'"{match.title}"{where}: {match.how}'


def url_hash(url: str | None) -> str | None:
    """The dedup hash of a URL (as capture hashes links), or None for one not worth trusting."""
    if not url:
        return None
    try:
        canonical = canonical_link(url)
    except LinkError:
        return None
    if urlsplit(canonical).path in ("", "/"):
        return None
    return sha256_text(canonical)


class Duplicates:
    """The duplicate check of one run, over the dedup state and the store's known hashes."""

    def __init__(self, index: FingerprintIndex, store_hashes: set[str] | None = None) -> None:
        self.index = index
        self.store_hashes = store_hashes if store_hashes is not None else set()
        self._in_flight: list[Check] = []
        self._batched: list[Check] = []

    @contextlib.asynccontextmanager
    async def claim(self, item: Item, text: str, own_url: str | None, *, look: bool = True) -> AsyncIterator[Check]:
        """The check of ``item``; while the block runs, an item matching it waits (see the module doc).

        ``look=False`` only fingerprints it (to remember it once written) and holds its claim.
        """
        check = await self._checked(item, text, own_url, look)
        if check.match is not None:
            yield check
            return
        self._in_flight.append(check)
        try:
            yield check
        except EnrichmentDeferred:
            self._batched.append(check)
            raise
        finally:
            self._in_flight.remove(check)
            check.done.set()

    async def _checked(self, item: Item, text: str, own_url: str | None, look: bool) -> Check:
        fingerprint = await asyncio.to_thread(Fingerprint.of, text)
        own = url_hash(own_url)
        key = item.hash or f"id:{item.id}"
        check = Check(key, frozenset(h for h in (item.hash, own) if h), fingerprint, title=item.title,
                      location=item.url or item.pdf_path)
        while look:
            check.match = self._known(check, own) or self._batched_copy(check)
            if check.match is not None:
                return check
            other = next((c for c in self._in_flight if self._same(c, check)), None)
            if other is None:
                return check
            await other.done.wait()
        return check

    def _known(self, check: Check, own: str | None) -> Match | None:
        for hash_ in sorted(check.urls):
            match = self.index.find_url(hash_, exclude=check.key)
            if match is not None and not self._clearly_different(match.key, check.fingerprint):
                return match if hash_ == own else dataclasses.replace(match, how="same link as an earlier copy")
        if own is not None and own != check.key and own in self.store_hashes:
            return Match(own, "an item already in the store", None, "same canonical URL")
        return self.index.find(check.fingerprint, exclude=check.key)

    def _batched_copy(self, check: Check) -> Match | None:
        batched = next((c for c in self._batched if self._same(c, check)), None)
        if batched is None:
            return None
        return Match(batched.key, batched.title, batched.location, "same article, waiting in a Batch API batch")

    def _clearly_different(self, key: str, fingerprint: Fingerprint) -> bool:
        earlier = self.index.fingerprint(key)
        if earlier is None or earlier.exact == fingerprint.exact:
            return False
        if earlier.near is None or fingerprint.near is None:
            return False
        return similarity(earlier.near, fingerprint.near) < DIFFERENT_TEXT

    def _same(self, other: Check, check: Check) -> bool:
        if other.urls & check.urls or other.fingerprint.exact == check.fingerprint.exact:
            return True
        near, mine = other.fingerprint.near, check.fingerprint.near
        return near is not None and mine is not None and similarity(near, mine) >= self.index.near_similarity

    def remember(self, check: Check, title: str, location: str | None) -> None:
        """Keep a written item's fingerprint and URLs (capture hash, its page's own URL)."""
        self.index.remember(check.key, title, location, check.fingerprint, check.urls)

    def alias(self, check: Check, capture_hash: str | None) -> None:
        """Keep a duplicate's capture hash as a URL of what it duplicates: later captures skip it."""
        if check.match is not None and capture_hash:
            self.index.alias(capture_hash, check.match)
