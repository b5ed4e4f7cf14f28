"""The text cache: kept texts come back, the size cap holds, least recently used go first."""

from __future__ import annotations

import sqlite3
import stat
import zlib

from knowledge_pipeline.text_cache import TextCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def incompressible(seed: int, size: int) -> str:
    import random

    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(size))


def test_texts_come_back_and_the_file_is_private(tmp_path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=1_000_000)
    cache.open()
    cache.put("h1", "Fahrspaß — 人工智能 " * 100)
    assert cache.get("h1") == "Fahrspaß — 人工智能 " * 100
    assert cache.get("missing") is None and cache.get(None) is None
    cache.close()
    assert stat.S_IMODE((tmp_path / "cache.db").stat().st_mode) == 0o600
    again = TextCache(tmp_path / "cache.db", max_bytes=1_000_000)
    again.open()
    assert again.get("h1").startswith("Fahrspaß")
    again.close()


def test_least_recently_used_texts_leave_first_and_the_cap_holds(tmp_path):
    texts = {f"h{n}": incompressible(n, 7_000) for n in range(4)}
    one = len(zlib.compress(texts["h0"].encode(), 6))
    cap = 3 * one + one // 2  # room for three texts, not four
    cache = TextCache(tmp_path / "cache.db", max_bytes=cap, clock=Clock())
    cache.open()
    for n in range(3):
        cache.put(f"h{n}", texts[f"h{n}"])
    assert cache.get("h0") is not None  # h0 is now the most recently used
    cache.put("h3", texts["h3"])
    assert "h1" not in cache
    assert all(key in cache for key in ("h0", "h2", "h3"))
    assert cache.size_bytes() <= cap
    cache.put("huge", incompressible(9, 30_000))
    assert "huge" not in cache and "h0" in cache
    cache.close()


def test_a_damaged_entry_is_a_miss(tmp_path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=1_000_000)
    cache.open()
    cache.put("h1", "some text")
    with sqlite3.connect(tmp_path / "cache.db") as db:
        db.execute("UPDATE texts SET data = x'00ff00' WHERE key = 'h1'")
    assert cache.get("h1") is None
    cache.close()


def test_a_zero_cap_disables_the_cache(tmp_path):
    cache = TextCache(tmp_path / "cache.db", max_bytes=0)
    cache.open()
    cache.put("h1", "text")
    assert cache.get("h1") is None
    cache.close()
