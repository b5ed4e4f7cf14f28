"""Never pay twice for one article: text fingerprints of what was already enriched.

The same article arrives through two feeds under different URLs, as a
syndicated copy with other boilerplate, or as one report saved twice as PDF.
The capture hash (canonical link, PDF bytes) cannot see that; the extracted
text can. Before the LLM is called, the text is fingerprinted twice:

* an exact hash of the normalized text (case, spacing, punctuation and
  Unicode forms folded), which catches copies that differ only in layout;
* a MinHash signature of its word 3-shingles (character 2-shingles for
  scripts written without spaces), 64 one-permutation bins, whose share of
  equal bins estimates the Jaccard similarity of the two shingle sets.
  A text at least ``NEAR_SIMILARITY`` similar to an earlier one is a
  near-duplicate. Candidates come from 21 bands of 3 bins (locality
  sensitive hashing), so no scan: a pair at similarity 0.7 shares a band
  with probability 0.9998, an unrelated pair (about 0.05) 0.3%.

Why MinHash and not a 64-bit SimHash: a SimHash band lookup finds only pairs
within 3 bits, and ``benchmarks/bench_dedup.py`` (126 texts of 800 words from
the standard library's docstrings) puts syndicated copies up to 9 bits and
lightly edited ones up to 17 bits away, while unrelated texts come within 16;
MinHash keeps every syndicated copy at 0.84 or more and every unrelated pair
at 0.28 or less.

Fingerprints of the last ``window_days`` are kept in a small SQLite file
(``DEDUP_PATH``), for every backend, next to the journal.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
import struct
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .sqlite_files import StateFile, transaction

BINS = 64
ROWS = 3
BANDS = BINS // ROWS
NEAR_SIMILARITY = 0.7
# Texts shorter than this have too few shingles for a signature to mean
# anything; only their exact hash is compared.
MIN_NEAR_CHARS = 400
# The first shingles are enough to tell near-copies apart and bound the work
# on a very long text.
MAX_SHINGLES = 20_000
_EMPTY = 0xFFFFFFFF

_WORD = re.compile(r"\w+", re.UNICODE)
# Scripts written without spaces between words: CJK ideographs, kana, Thai, Lao, Khmer, Myanmar.
_UNSPACED = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f]"
)


def normalize(text: str) -> str:
    """Text folded for comparison: NFKC, case-folded, punctuation dropped, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(folded))


def exact_hash(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


def _tokens(normalized: str) -> list[str]:
    tokens: list[str] = []
    for word in normalized.split():
        if _UNSPACED.search(word):
            tokens.extend(word)  # one token per character; shingles then pair them
        else:
            tokens.append(word)
    return tokens


def _shingles(tokens: list[str]) -> Iterable[str]:
    size = 2 if sum(len(t) == 1 for t in tokens) > len(tokens) // 2 else 3
    if len(tokens) < size:
        yield " ".join(tokens)
        return
    for start in range(len(tokens) - size + 1):
        yield " ".join(tokens[start : start + size])


def signature(text: str) -> tuple[int, ...]:
    """64 MinHash bins (one-permutation hashing); ``_EMPTY`` where no shingle fell."""
    bins = [_EMPTY] * BINS
    for shingle in itertools.islice(_shingles(_tokens(normalize(text))), MAX_SHINGLES):
        value = int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "big")
        index, rest = value % BINS, (value // BINS) & 0xFFFFFFFE  # never equal to _EMPTY
        if rest < bins[index]:
            bins[index] = rest
    return tuple(bins)


def similarity(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    used = equal = 0
    for x, y in zip(a, b):
        if x == _EMPTY and y == _EMPTY:
            continue
        used += 1
        equal += x == y
    return equal / used if used else 0.0


def _band_keys(sig: tuple[int, ...]) -> list[tuple[int, int]]:
    """(band, key) for each band whose bins are all filled."""
    keys = []
    for band in range(BANDS):
        rows = sig[band * ROWS : (band + 1) * ROWS]
        if _EMPTY in rows:
            continue
        digest = hashlib.blake2b(struct.pack(f">{ROWS}I", *rows), digest_size=8).digest()
        keys.append((band, int.from_bytes(digest, "big", signed=True)))
    return keys


def _pack(sig: tuple[int, ...]) -> bytes:
    return struct.pack(f">{BINS}I", *sig)


def _unpack(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{BINS}I", data)


@dataclass(frozen=True)
class Fingerprint:
    exact: str
    near: tuple[int, ...] | None  # None for texts too short to compare by signature

    @classmethod
    def of(cls, text: str) -> Fingerprint:
        near = signature(text) if len(text) >= MIN_NEAR_CHARS else None
        return cls(exact_hash(text), near)


@dataclass(frozen=True)
class Match:
    """What a text duplicates: the earlier item's key, title and location, and how."""

    key: str
    title: str
    location: str | None
    how: str  # "same text" | "near-duplicate text (similarity 0.91)" | "same canonical URL"


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS fingerprints (
           key TEXT PRIMARY KEY, title TEXT NOT NULL, location TEXT,
           exact TEXT NOT NULL, near BLOB, seen_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS fingerprints_exact ON fingerprints(exact)",
    "CREATE INDEX IF NOT EXISTS fingerprints_seen ON fingerprints(seen_at)",
    """CREATE TABLE IF NOT EXISTS bands (
           band INTEGER NOT NULL, value INTEGER NOT NULL,
           key TEXT NOT NULL REFERENCES fingerprints(key) ON DELETE CASCADE)""",
    "CREATE INDEX IF NOT EXISTS bands_lookup ON bands(band, value)",
    "CREATE INDEX IF NOT EXISTS bands_key ON bands(key)",
    """CREATE TABLE IF NOT EXISTS urls (
           hash TEXT PRIMARY KEY, key TEXT NOT NULL, title TEXT NOT NULL,
           location TEXT, seen_at REAL NOT NULL)""",
)


class FingerprintIndex(StateFile):
    """The fingerprints of the items enriched in the last ``window_days`` days (0: all)."""

    what = "the dedup state"

    def __init__(
        self,
        path: Path,
        *,
        window_days: int = 90,
        near_similarity: float = NEAR_SIMILARITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(path)
        self.window_days = window_days
        self.near_similarity = near_similarity
        self._clock = clock

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA foreign_keys=ON")
        for statement in _SCHEMA:
            db.execute(statement)

    def open(self) -> FingerprintIndex:
        super().open()
        self.prune()
        return self

    def _cutoff(self) -> float:
        return self._clock() - self.window_days * 86400 if self.window_days else float("-inf")

    def prune(self) -> int:
        """Forget what is older than the window; the number of fingerprints forgotten."""
        cutoff = self._cutoff()
        removed = self.db.execute("DELETE FROM fingerprints WHERE seen_at < ?", (cutoff,)).rowcount
        self.db.execute("DELETE FROM urls WHERE seen_at < ?", (cutoff,))
        return removed

    def find(self, fingerprint: Fingerprint, *, exclude: str | None = None) -> Match | None:
        """The earlier item this text duplicates, exactly or nearly; None when it is new."""
        cutoff = self._cutoff()
        row = self.db.execute(
            "SELECT key, title, location FROM fingerprints WHERE exact = ? AND seen_at >= ? AND key IS NOT ?"
            " ORDER BY seen_at LIMIT 1",
            (fingerprint.exact, cutoff, exclude),
        ).fetchone()
        if row is not None:
            return Match(row[0], row[1], row[2], "same text")
        if fingerprint.near is None:
            return None
        keys = _band_keys(fingerprint.near)
        if not keys:
            return None
        where = " OR ".join("(b.band = ? AND b.value = ?)" for _ in keys)
        best: tuple[float, str, str, str | None] | None = None
        for key, title, location, near in self.db.execute(
            f"SELECT DISTINCT f.key, f.title, f.location, f.near FROM bands b JOIN fingerprints f ON f.key = b.key"
            f" WHERE ({where}) AND f.seen_at >= ? AND f.key IS NOT ?",
            (*(v for pair in keys for v in pair), cutoff, exclude),
        ):
            score = similarity(fingerprint.near, _unpack(near))
            if score >= self.near_similarity and (best is None or score > best[0]):
                best = (score, key, title, location)
        if best is None:
            return None
        return Match(best[1], best[2], best[3], f"near-duplicate text (similarity {best[0]:.2f})")

    def find_url(self, url_hash: str, *, exclude: str | None = None) -> Match | None:
        """The item already known by this (canonical) URL hash."""
        row = self.db.execute(
            "SELECT key, title, location FROM urls WHERE hash = ? AND seen_at >= ? AND key IS NOT ?",
            (url_hash, self._cutoff(), exclude),
        ).fetchone()
        return Match(row[0], row[1], row[2], "same canonical URL") if row else None

    def remember(
        self, key: str, title: str, location: str | None, fingerprint: Fingerprint, url_hashes: Iterable[str] = ()
    ) -> None:
        """Keep this item's fingerprint and the hashes of the URLs it is known by."""
        now = self._clock()
        with transaction(self.db) as db:
            db.execute("DELETE FROM fingerprints WHERE key = ?", (key,))
            db.execute(
                "INSERT INTO fingerprints (key, title, location, exact, near, seen_at) VALUES (?,?,?,?,?,?)",
                (key, title, location, fingerprint.exact,
                 None if fingerprint.near is None else _pack(fingerprint.near), now),
            )
            if fingerprint.near is not None:
                db.executemany(
                    "INSERT INTO bands (band, value, key) VALUES (?,?,?)",
                    [(band, value, key) for band, value in _band_keys(fingerprint.near)],
                )
            for url_hash in dict.fromkeys(url_hashes):
                db.execute(
                    "INSERT OR REPLACE INTO urls (hash, key, title, location, seen_at) VALUES (?,?,?,?,?)",
                    (url_hash, key, title, location, now),
                )

    def fingerprint(self, key: str) -> Fingerprint | None:
        """The fingerprint kept for ``key``, or None."""
        row = self.db.execute("SELECT exact, near FROM fingerprints WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Fingerprint(row[0], None if row[1] is None else _unpack(row[1]))

    def alias(self, url_hash: str, match: Match) -> None:
        """Remember ``url_hash`` (a duplicate's capture hash) as a URL of the item ``match`` found."""
        self.db.execute(
            "INSERT OR REPLACE INTO urls (hash, key, title, location, seen_at) VALUES (?,?,?,?,?)",
            (url_hash, match.key, match.title, match.location, self._clock()),
        )

    def url_hashes(self) -> set[str]:
        """Every URL hash of the window: capture skips them (a duplicate is not captured again)."""
        return {row[0] for row in self.db.execute("SELECT hash FROM urls WHERE seen_at >= ?", (self._cutoff(),))}

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0])
