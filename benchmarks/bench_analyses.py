#!/usr/bin/env python3
"""What the original's analyses cost in tokens: one structured call versus one call per section.

For each article size, the real OpenAI enricher (``AsyncOpenAI``) enriches
the same text against the fake OpenAI server three ways and the fake's own
usage counts (characters / 4 of messages and schema, as it bills them) are
reported per item:

* ``none``      the four standard toggles only (ANALYSES=none);
* ``original``  the original's sections as extra fields of the one call
                (ANALYSES=original);
* ``per_call``  the same sections each in a call of its own over the full
                text, as the original pipeline did (forced here with a tiny
                MAX_OUTPUT_TOKENS, so every section is split into its own call).

Run ``python3 benchmarks/bench_analyses.py``; docs/performance.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from knowledge_pipeline.budget import Budget  # noqa: E402
from knowledge_pipeline.config import Settings  # noqa: E402
from knowledge_pipeline.enrichers.analyses import ORIGINAL  # noqa: E402
from knowledge_pipeline.enrichers.openai import OpenAIEnricher  # noqa: E402
from knowledge_pipeline.models import Item, SourceType, Taxonomy  # noqa: E402
from knowledge_pipeline.services import RetryPolicy, ServiceGateway  # noqa: E402
from knowledge_pipeline.telemetry import Telemetry  # noqa: E402
from tests.fakes.openai_server import start_fake_openai  # noqa: E402

SIZES = (4_000, 8_000, 12_000, 20_000, 40_000)
MODES = {"none": {}, "original": {"analyses": ORIGINAL},
         "per_call": {"analyses": ORIGINAL, "max_output_tokens": 256}}


def article(chars: int) -> str:
    paragraphs, n = [], 0
    while sum(len(p) + 2 for p in paragraphs) < chars:
        n += 1
        paragraphs.append(f"Section {n}: OpenAI and Anthropic shipped agent tooling for Coding teams; analysts at "
                          f"{n} firms measured a {n % 9 + 3}% gain and expect budgets for Automation to grow.")
    return "\n\n".join(paragraphs)[:chars]


def measure(chars: int, overrides: dict[str, Any]) -> dict[str, int]:
    with start_fake_openai() as fake:
        settings = Settings(enricher="openai", openai_api_key=fake.api_key, openai_base_url=fake.url,
                            openai_context_tokens=128_000, **overrides)
        gateway = ServiceGateway(Telemetry("bench"), spacing=0, retry=RetryPolicy(retries=0))

        async def main() -> None:
            enricher = OpenAIEnricher(settings, gateway, Budget())
            try:
                item = Item(id="bench", title="Agent tooling", source_type=SourceType.WEBSITE, url="https://example.com/a")
                await enricher.enrich(item, article(chars), Taxonomy())
            finally:
                await enricher.close()

        asyncio.run(main())
        stats = fake.stats()
    return {"calls": stats["calls"], "prompt_tokens": stats["usage"]["prompt_tokens"],
            "completion_tokens": stats["usage"]["completion_tokens"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="article sizes in characters")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = []
    for chars in args.sizes:
        row: dict[str, Any] = {"chars": chars, **{mode: measure(chars, overrides) for mode, overrides in MODES.items()}}
        row["prompt_ratio_original"] = round(row["original"]["prompt_tokens"] / row["none"]["prompt_tokens"], 3)
        row["prompt_ratio_per_call"] = round(row["per_call"]["prompt_tokens"] / row["none"]["prompt_tokens"], 3)
        rows.append(row)
    if args.json:
        print(json.dumps({"analyses": len(ORIGINAL), "rows": rows}, indent=2))
        return 0
    print(f"Prompt tokens per item with the original's {len(ORIGINAL)} analyses (fake OpenAI's counts)")
    print(f"{'chars':>7} {'none':>7} {'original':>9} {'ratio':>6} {'per call':>9} {'calls':>6} {'ratio':>6}")
    for row in rows:
        print(f"{row['chars']:>7} {row['none']['prompt_tokens']:>7} {row['original']['prompt_tokens']:>9} "
              f"{row['prompt_ratio_original']:>6.2f} {row['per_call']['prompt_tokens']:>9} "
              f"{row['per_call']['calls']:>6} {row['prompt_ratio_per_call']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
