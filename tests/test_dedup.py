"""Text fingerprints: exact and near-duplicate texts are found, unrelated texts never are."""

from __future__ import annotations

import random
import stat

import pytest

from knowledge_pipeline.dedup import MIN_NEAR_CHARS, Fingerprint, FingerprintIndex, similarity, signature

VOCABULARY = [f"w{n}" for n in range(3000)]
HEADER = "Originally published at Example Wire. Republished with permission. Follow us for more news."
FOOTER = "Subscribe to our newsletter. Share this article. Copyright 2026 Example Wire. All rights reserved."


def article(seed: int, words: int = 700) -> str:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]  # Zipf-like, as in prose
    body = rng.choices(VOCABULARY, weights, k=words)
    return "\n\n".join(" ".join(body[i : i + 70]) + "." for i in range(0, words, 70))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def index(tmp_path):
    clock = Clock()
    idx = FingerprintIndex(tmp_path / "dedup.db", window_days=90, clock=clock)
    idx.open()
    idx.clock = clock
    yield idx
    idx.close()


def test_same_text_in_another_layout_is_an_exact_duplicate(index):
    text = article(1)
    index.remember("a", "First", "https://one.example/a", Fingerprint.of(text))
    relaid = "  " + text.upper().replace("\n\n", "\n").replace(".", " .") + "\n"
    match = index.find(Fingerprint.of(relaid))
    assert match is not None and match.key == "a" and match.how == "same text"
    assert match.title == "First" and match.location == "https://one.example/a"


def test_syndicated_copy_with_other_boilerplate_is_a_near_duplicate(index):
    text = article(2)
    index.remember("a", "Original", None, Fingerprint.of(text))
    match = index.find(Fingerprint.of(f"{HEADER}\n\n{text}\n\n{FOOTER}"))
    assert match is not None and match.key == "a"
    assert match.how.startswith("near-duplicate text (similarity 0.")


def test_unrelated_texts_are_not_duplicates(index):
    for seed in range(3, 40):
        index.remember(f"k{seed}", f"T{seed}", None, Fingerprint.of(article(seed)))
    assert index.find(Fingerprint.of(article(100))) is None
    assert len(index) == 37


def test_similarity_of_signatures():
    text = article(5)
    assert similarity(signature(text), signature(text)) == 1.0
    assert similarity(signature(text), signature(f"{HEADER} {text} {FOOTER}")) >= 0.8
    assert similarity(signature(text), signature(article(6))) < 0.2


def test_chinese_copy_is_found_by_character_shingles(index):
    sentence = "人工智能模型的训练成本在过去一年中大幅下降，多家公司发布了新的开源模型。"
    text = "".join(sentence.replace("一", str(n)) for n in range(30))
    assert len(text) >= MIN_NEAR_CHARS
    index.remember("zh", "中文", None, Fingerprint.of(text))
    match = index.find(Fingerprint.of("转载自示例新闻网。" + text + "版权所有。"))
    assert match is not None and match.key == "zh"


def test_short_texts_are_compared_exactly_only(index):
    short = "A short note about one model release."
    assert Fingerprint.of(short).near is None
    index.remember("s", "Short", None, Fingerprint.of(short))
    assert index.find(Fingerprint.of(short.upper())).key == "s"
    assert index.find(Fingerprint.of(short + " And one more sentence.")) is None


def test_an_item_is_never_its_own_duplicate(index):
    text = article(7)
    index.remember("a", "A", None, Fingerprint.of(text))
    assert index.find(Fingerprint.of(text), exclude="a") is None
    index.remember("a", "A again", None, Fingerprint.of(text))
    assert len(index) == 1


def test_fingerprints_older_than_the_window_are_forgotten(index):
    text = article(8)
    index.remember("old", "Old", None, Fingerprint.of(text), url_hashes=["h1"])
    index.clock.now += 91 * 86400
    assert index.find(Fingerprint.of(text)) is None
    assert index.find_url("h1") is None
    assert index.prune() == 1 and len(index) == 0


def test_canonical_url_hashes_are_remembered(index):
    index.remember("a", "A", "https://x.example/a", Fingerprint.of(article(9)), url_hashes=["h-canonical", "h-feed"])
    match = index.find_url("h-canonical")
    assert match is not None and match.key == "a" and match.how == "same canonical URL"
    assert index.find_url("h-canonical", exclude="a") is None
    assert index.find_url("other") is None


def test_state_survives_reopening_and_is_private(tmp_path):
    path = tmp_path / "state" / "dedup.db"
    first = FingerprintIndex(path)
    first.open()
    first.remember("a", "A", None, Fingerprint.of(article(10)))
    first.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = FingerprintIndex(path)
    second.open()
    try:
        assert second.find(Fingerprint.of(article(10))).key == "a"
    finally:
        second.close()
