"""Where capture hands new items over: the store it is given, in either CAPTURE_MODE.

The capture functions (capture/registry.py) hand each new item to
``store_new(store, item, ...)``, which calls ``store.add(item)``. The runner
gives them a :class:`CaptureStore` in place of the Sources store:

* ``inbox-first``: ``add`` creates the Inbox page (the store's own ``add``);
* ``enrich-first``: ``add`` records the item in the journal as pending, then
  puts its stand-in on the engine's bounded queue (waiting while the workers
  are busy), so enrichment starts while capture goes on; its page is created
  once, complete, by ``process_item``.

In both modes a feed's or an email's text is kept in the text cache, and the
known hashes capture skips are the store's, the pending items' and the URLs of
the dedup state (so a duplicate found in an earlier run is not captured again).
Anything else is the Sources store's.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..dedup import FingerprintIndex
from ..journal import Journal
from ..models import Item, NewItem

Put = Callable[[Item], Awaitable[bool]]


class CaptureStore:
    def __init__(self, store: Any, extractor: Any, dedup: FingerprintIndex, journal: Journal | None = None) -> None:
        self.store = store
        self.extractor = extractor
        self.dedup = dedup
        self.journal = journal  # set: enrich-first
        self.store_hashes: set[str] = set()
        self.put: Put | None = None
        self.counted: Callable[[], None] | None = None

    def hand_over(self, put: Put, counted: Callable[[], None]) -> None:
        """Enrich-first: where new items go (the engine's queue) and how the run's total grows."""
        self.put, self.counted = put, counted

    async def known_hashes(self) -> set[str]:
        self.store_hashes.update(await self.store.known_hashes())
        known = set(self.store_hashes) | self.dedup.url_hashes()
        if self.journal is not None:
            known |= self.journal.pending_hashes()
        return known

    async def add(self, item: NewItem) -> Item:
        keep = getattr(self.extractor, "keep_content", None)
        if self.journal is None:
            stored = await self.store.add(item)
            if keep is not None:
                keep(item.hash, item.content)
            return stored
        self.store.check_new(item)  # what the store refuses anyway is rejected now, before it costs anything
        pending = self.journal.add_pending(item)
        if keep is not None:  # for --retry-failed of an item that fails (the journal forgets it then)
            keep(item.hash, item.content)
        if self.counted is not None:
            self.counted()
        if self.put is not None:
            await self.put(pending)  # False: the run is stopping; the item stays pending for the next run
        return pending

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)
