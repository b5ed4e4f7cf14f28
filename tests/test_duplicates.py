"""The run's duplicate check (issue 15): canonical URLs, text fingerprints, and items in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from knowledge_pipeline.dedup import FingerprintIndex
from knowledge_pipeline.duplicates import Duplicates, url_hash
from knowledge_pipeline.models import Item, SourceType, sha256_text

from .prose import sentences

ARTICLE = "\n\n".join(sentences(n, 4) for n in range(6))
SYNDICATED = ("This story first appeared on Example Wire. Republished with permission.\n\n" + ARTICLE
              + "\n\nSign up for our newsletter. Share this story. Related: five other stories you may like.")


def item(n: int, url: str | None = None) -> Item:
    link = url or f"https://news.example/{n}"
    return Item(id=f"page-{n}", title=f"Story {n}", source_type=SourceType.RSS, url=link,
                hash=sha256_text(link))


@pytest.fixture
def index(tmp_path: Path):
    dedup = FingerprintIndex(tmp_path / "dedup.db")
    dedup.open()
    yield dedup
    dedup.close()


async def check(duplicates: Duplicates, it: Item, text: str, own_url: str | None = None, *, written: bool = True):
    """The check of one item; remembered as written (when new and ``written``), as process_item does."""
    async with duplicates.claim(it, text, own_url) as found:
        if found.match is None and written:
            duplicates.remember(found, it.title, it.url)
    return found.match


def test_the_same_text_laid_out_otherwise_and_a_syndicated_copy_are_duplicates(index: FingerprintIndex):
    duplicates = Duplicates(index)

    async def main():
        first = await check(duplicates, item(1), ARTICLE)
        relaid = await check(duplicates, item(2), ARTICLE.upper().replace("\n\n", "\n"))
        copy = await check(duplicates, item(3), SYNDICATED)
        other = await check(duplicates, item(4), "\n\n".join(sentences(n, 4) for n in range(100, 106)))
        return first, relaid, copy, other

    first, relaid, copy, other = asyncio.run(main())
    assert first is None and other is None
    assert (relaid.title, relaid.how) == ("Story 1", "same text")
    assert copy.title == "Story 1" and copy.how.startswith("near-duplicate text (similarity")


def test_a_page_naming_a_known_url_as_its_own_is_a_duplicate_unless_its_text_clearly_differs(index: FingerprintIndex):
    duplicates = Duplicates(index)
    canonical = "https://news.example/story?utm_source=feed"

    async def main():
        await check(duplicates, item(1), ARTICLE, canonical)
        same_page = await check(duplicates, item(2, "https://m.news.example/2"), ARTICLE[:900], canonical)
        unrelated = await check(duplicates, item(3), "\n\n".join(sentences(n, 4) for n in range(200, 206)), canonical)
        home = await check(duplicates, item(4), "\n\n".join(sentences(n, 4) for n in range(300, 306)),
                           "https://news.example/")
        return same_page, unrelated, home

    same_page, unrelated, home = asyncio.run(main())
    assert same_page is not None and same_page.how == "same canonical URL"
    assert unrelated is None, "a site naming one canonical URL for every page does not hide its articles"
    assert home is None and url_hash("https://news.example/") is None


def test_the_capture_hash_of_a_known_duplicate_matches_and_so_does_a_url_already_in_the_store(index):
    store_hashes = {sha256_text("https://news.example/old")}
    duplicates = Duplicates(index, store_hashes)

    async def main():
        await check(duplicates, item(1), ARTICLE)
        copy = item(2)
        async with duplicates.claim(copy, SYNDICATED, None) as found:
            duplicates.alias(found, copy.hash)
        again = await check(duplicates, copy, SYNDICATED)
        stored = await check(duplicates, item(3), "\n\n".join(sentences(n, 4) for n in range(400, 406)),
                             "https://news.example/old")
        return again, stored

    again, stored = asyncio.run(main())
    assert again.title == "Story 1" and again.how == "same link as an earlier copy"
    assert stored.how == "same canonical URL" and stored.title == "an item already in the store"
    assert sha256_text("https://news.example/2") in index.url_hashes()


@pytest.mark.parametrize("first_written", [True, False], ids=["first-written", "first-failed"])
def test_a_copy_waits_for_the_same_text_in_flight_then_matches_it_or_goes_on(index, first_written: bool):
    duplicates = Duplicates(index)
    order: list[str] = []

    async def first() -> None:
        async with duplicates.claim(item(1), ARTICLE, None) as found:
            order.append("first enriching")
            await asyncio.sleep(0.05)
            if first_written:
                duplicates.remember(found, "Story 1", None)
            order.append("first done")

    async def second():
        await asyncio.sleep(0.01)
        async with duplicates.claim(item(2), SYNDICATED, None) as found:
            order.append("second checked")
            return found.match

    async def main():
        return (await asyncio.gather(first(), second()))[1]

    match = asyncio.run(main())
    assert order == ["first enriching", "first done", "second checked"], "no second LLM call while the first runs"
    assert (match is not None) is first_written


def test_without_looking_an_item_is_only_fingerprinted_and_claimed(index: FingerprintIndex):
    duplicates = Duplicates(index)

    async def main():
        await check(duplicates, item(1), ARTICLE)
        async with duplicates.claim(item(2), ARTICLE, None, look=False) as found:
            return found

    found = asyncio.run(main())
    assert found.match is None and found.fingerprint.exact == index.fingerprint(item(1).hash).exact
