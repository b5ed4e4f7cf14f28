"""Near-duplicate detection, measured: MinHash (what dedup.py uses) against a 64-bit SimHash.

The corpus is the standard library's own documentation (the docstrings of
its modules, classes and functions, parsed from source and cut into texts of
800 words), so anyone can rerun it offline:

    python benchmarks/bench_dedup.py

For each text it compares the text with (a) a syndicated copy (the same text
with a header and footer of boilerplate, about 8% more words), (b) a copy
with 3% of its words edited, (c) its first half, and every pair of distinct
texts as unrelated. It prints JSON: for MinHash the estimated similarity
(higher is closer, dedup.NEAR_SIMILARITY is the threshold), for SimHash the
Hamming distance (lower is closer).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import random
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_pipeline import dedup  # noqa: E402

HEADER = ("Originally published at Example Wire on 3 March. Republished with permission. Follow us on social "
          "media for the latest news and analysis from our team of reporters.")
FOOTER = ("Subscribe to our newsletter to get stories like this in your inbox every morning. Share this article. "
          "Related: five things to know this week. Copyright 2026 Example Wire. All rights reserved. Privacy "
          "policy. Terms of use. Contact us.")


def corpus(words_per_text: int = 800, limit: int = 150) -> list[str]:
    """Docstrings of the standard library's modules, classes and functions (parsed, never imported)."""
    seen: set[str] = set()
    words: list[str] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200 and doc not in seen:
                    seen.add(doc)
                    words += doc.split()
    texts = [" ".join(words[i:i + words_per_text]) for i in range(0, len(words) - words_per_text, words_per_text)]
    return texts[:limit]


def simhash(text: str) -> int:
    weights = [0] * 64
    for shingle in dedup._shingles(dedup._tokens(dedup.normalize(text))):
        value = int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += 1 if value >> bit & 1 else -1
    return sum(1 << bit for bit in range(64) if weights[bit] > 0)


def edited(text: str, share: float, rng: random.Random) -> str:
    words = text.split()
    for index in rng.sample(range(len(words)), int(len(words) * share)):
        words[index] = "edited"
    return " ".join(words)


def main() -> None:
    rng = random.Random(7)
    texts = corpus()
    started = time.perf_counter()
    signatures = [dedup.signature(t) for t in texts]
    per_text_ms = (time.perf_counter() - started) / len(texts) * 1000
    hashes = [simhash(t) for t in texts]
    variants = {
        "syndicated": [f"{HEADER}\n{t}\n{FOOTER}" for t in texts],
        "edited_3pct": [edited(t, 0.03, rng) for t in texts],
        "first_half": [" ".join(t.split()[: len(t.split()) // 2]) for t in texts],
    }
    result: dict = {"texts": len(texts), "minhash_ms_per_text": round(per_text_ms, 3),
                    "threshold": dedup.NEAR_SIMILARITY, "minhash": {}, "simhash_bits": {}}
    for name, copies in variants.items():
        sims = [dedup.similarity(s, dedup.signature(c)) for s, c in zip(signatures, copies)]
        bits = [(h ^ simhash(c)).bit_count() for h, c in zip(hashes, copies)]
        result["minhash"][name] = {"min": round(min(sims), 3), "max": round(max(sims), 3)}
        result["simhash_bits"][name] = {"min": min(bits), "max": max(bits)}
    unrelated = [dedup.similarity(a, b) for a, b in itertools.combinations(signatures, 2)]
    unrelated_bits = [(a ^ b).bit_count() for a, b in itertools.combinations(hashes, 2)]
    result["minhash"]["unrelated"] = {"max": round(max(unrelated), 3), "pairs": len(unrelated)}
    result["simhash_bits"]["unrelated"] = {"min": min(unrelated_bits), "pairs": len(unrelated_bits)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
