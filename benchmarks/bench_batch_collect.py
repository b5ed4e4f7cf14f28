#!/usr/bin/env python3
"""Collecting a Batch API batch: memory, before and after collecting item by item.

The benchmark puts ``--items`` items of ``--chars`` characters each into
batches (the real openai SDK against the fake OpenAI's Files and Batches
endpoints, ``tests/fakes/openai_batches.py``), lets the fake run them, and
copies the batch state twice. Then, in child processes, each copy is
collected (``BatchRun.begin``): once the way it was done before (``before``:
every input line parsed into one dict, the output file read as one string,
as at commit 064c44b) and once by the current code (``after``: the output
streamed to a temporary file and indexed by offset, each item's lines read
when it is handled). A second pair of children
measures the tracemalloc peak of the collection alone. Peak RSS is the
child's ``VmHWM`` (/proc/self/status, Linux), read after its imports and after
collecting: ``ru_maxrss`` from ``wait4`` would carry the parent's peak over
the fork, and the parent holds the fake's files. The fake keeps its files
(file deletes answer 500, not retried), so both collect the same batch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import run_measured  # noqa: E402


def old_run_class() -> Any:
    """BatchRun with ``_collect`` as it was before collecting item by item (kept here to measure it)."""
    from knowledge_pipeline.batches import BatchRun
    from knowledge_pipeline.batches.coordinator import _SEPARATOR, _add
    from knowledge_pipeline.batches.state import NEXT, READY, RETRY
    from knowledge_pipeline.enrichers.openai import prompt_of, reply_of_body
    from knowledge_pipeline.enrichers.transport import Usage

    class Before(BatchRun):
        async def _collect(self, batch: Any, remote: Any, taxonomy: Any) -> None:
            lines = {custom_id: body for custom_id, body in self._requests(batch.local_id)}
            answers = await self._answers(remote.output_file_id)
            by_item: dict[str, list[str]] = {}
            for custom_id in lines:
                by_item.setdefault(custom_id.split(_SEPARATOR)[0], []).append(custom_id)
            outcomes: dict[str, tuple[str, list[str] | None]] = {}
            totals, cost, known = Usage(), 0.0, True
            for item_id, custom_ids in by_item.items():
                replies = []
                for custom_id in sorted(custom_ids, key=lambda c: int(c.rsplit(_SEPARATOR, 1)[1])):
                    step = custom_id.split(_SEPARATOR)[1]
                    body = answers.get(custom_id)
                    prompt = prompt_of(lines[custom_id]["body"], step)
                    reply = reply_of_body(body, prompt, self.transport.model) if body is not None else None
                    if reply is not None:
                        price = self.meter.cost(reply.model, reply.usage)
                        known = known and price is not None
                        cost += price or 0.0
                        totals = _add(totals, reply.usage)
                    replies.append((prompt, reply))
                outcomes[item_id] = self._outcome(item_id, replies, taxonomy)
            statuses = [status for status, _ in outcomes.values()]
            total_cost = round(cost, 8) if known else None
            self.budget.add(total_cost)
            self.state.finish(batch.local_id, outcomes, remote_status=remote.status,
                              output_file_id=remote.output_file_id, error_file_id=remote.error_file_id,
                              items_enriched=statuses.count(READY), cost_usd=total_cost)
            await self._delete_files(remote)
            self.telemetry.event("batch_collected", "", items_enriched=statuses.count(READY),
                                 items_next=statuses.count(NEXT), items_retry=statuses.count(RETRY),
                                 estimated_cost_usd=total_cost)

        def _requests(self, local_id: str) -> list[tuple[str, dict[str, Any]]]:
            return [(line["custom_id"], line) for line in map(json.loads, self.state.lines(local_id))]

        async def _answers(self, file_id: str | None) -> dict[str, dict[str, Any]]:
            if not file_id:
                return {}

            async def read() -> str:
                return (await self.api._client.files.content(file_id)).text

            answers = {}
            for raw in (await self.api._call("files.content", read, file=file_id)).splitlines():
                if not raw.strip():
                    continue
                line = json.loads(raw)
                response = line.get("response") or {}
                if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
                    answers[line["custom_id"]] = response["body"]
            return answers

    return Before


def child(way: str, trace: bool) -> None:
    """Collect the batches of the state ``JOURNAL_PATH`` points at; print what it took as JSON."""
    import os
    import tracemalloc

    from knowledge_pipeline.config import load_settings
    from tests.batches.support import collect_batches

    settings = load_settings(dict(os.environ), env_file=None)
    run_class = old_run_class() if way == "before" else None
    import knowledge_pipeline.enrichers.openai  # noqa: F401  (imports done before the baseline)
    import openai.resources  # noqa: F401
    baseline = _high_water_mb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    events = collect_batches(settings, run_class)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6 if trace else None
    collected = [data for kind, data in events if kind == "batch_collected"]
    print(json.dumps({
        "seconds": round(seconds, 2), "rss_after_imports_mb": round(baseline, 1), "peak_rss_mb": round(_high_water_mb(), 1),
        "tracemalloc_peak_mb": peak,
        "items_enriched": sum(c["items_enriched"] for c in collected),
        "items_retry": sum(c["items_retry"] for c in collected),
        "cost_usd": round(sum(c["estimated_cost_usd"] or 0 for c in collected), 6),
    }))


def _high_water_mb() -> float:
    """This process's peak resident memory so far (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status (Linux only)")


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from knowledge_pipeline.config import load_settings
    from tests.batches.support import env, submit_backlog
    from tests.batches.test_collect_memory import finish_remotely
    from tests.conftest import clean_env
    from tests.fakes.openai_server import start_fake_openai

    result: dict[str, Any] = {"items": args.items, "chars": args.chars}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp, \
            start_fake_openai(batch_delete_fails=True) as fake:
        root = Path(tmp)
        made = root / "made"
        settings = load_settings(env(made, fake, OPENAI_BATCH="always"), env_file=None)
        started = time.perf_counter()
        result["input_mb"] = round(submit_backlog(settings, args.items, args.chars) / 1e6, 1)
        finish_remotely(fake)
        result["setup_seconds"] = round(time.perf_counter() - started, 1)
        result["output_mb"] = round(sum(len(d) for f, d in fake.batches.contents.items()
                                        if fake.batches.files[f]["purpose"] == "batch_output") / 1e6, 1)
        for way in ("before", "after"):
            for trace in (False, True):
                workdir = root / f"{way}-{'trace' if trace else 'rss'}"
                shutil.copytree(made, workdir)
                command = [sys.executable, str(Path(__file__).resolve()), "--child", way] + (["--trace"] if trace else [])
                child_env = {**clean_env(), **env(workdir, fake, OPENAI_BATCH="always", RETRY_ATTEMPTS="0")}
                run = run_measured(command, child_env, workdir, args.timeout)
                if run.exit_code != 0:
                    raise SystemExit(f"{way} child failed:\n{run.stderr[-3000:]}")
                measured = json.loads(run.stdout.strip().splitlines()[-1])
                entry = result.setdefault(way, {})
                if trace:
                    entry["tracemalloc_peak_mb"] = round(measured["tracemalloc_peak_mb"], 1)
                else:
                    growth = measured["peak_rss_mb"] - measured["rss_after_imports_mb"]
                    entry.update(measured, rss_growth_mb=round(growth, 1))
                    del entry["tracemalloc_peak_mb"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000, help="items in the backlog (default 3000)")
    parser.add_argument("--chars", type=int, default=20_000, help="characters of each item's text (default 20000)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds each child may take")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", choices=("before", "after"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.trace)
        return 0
    result = run_benchmark(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['items']} items of {result['chars']:,} characters: {result['input_mb']} MB of request lines, "
          f"{result['output_mb']} MB of answers (set up in {result['setup_seconds']} s)")
    print(f"{'':<8} {'seconds':>8} {'peak RSS MB':>12} {'RSS growth MB':>14} {'tracemalloc peak MB':>20} "
          f"{'enriched':>9} {'retry':>6} {'cost USD':>9}")
    for way in ("before", "after"):
        r = result[way]
        print(f"{way:<8} {r['seconds']:>8} {r['peak_rss_mb']:>12} {r['rss_growth_mb']:>14} "
              f"{r['tracemalloc_peak_mb']:>20} {r['items_enriched']:>9} {r['items_retry']:>6} {r['cost_usd']:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
