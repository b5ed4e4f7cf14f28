"""The store's dedup hashes, read only when a capture first needs them.

``store.known_hashes()`` reads the whole Sources database (on Notion one
request per 100 pages). A feed run in which every feed answers 304 needs
none of it, so the set is filled on the first :meth:`KnownHashes.load`.
"""

from __future__ import annotations

import asyncio

from ..sources.base import SourceStore


class KnownHashes(set):
    """A set of hashes that fills itself from the store on the first ``await load()``."""

    def __init__(self, store: SourceStore) -> None:
        super().__init__()
        self._store = store
        self._loaded = False
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def load(self) -> KnownHashes:
        async with self._lock:
            if not self._loaded:
                self.update(await self._store.known_hashes())
                self._loaded = True
        return self


async def loaded(hashes: set[str]) -> set[str]:
    """``hashes`` ready to use: a :class:`KnownHashes` is loaded first, a plain set is as it is."""
    if isinstance(hashes, KnownHashes):
        await hashes.load()
    return hashes
