#!/usr/bin/env python3
"""Sequential vs parallel enrichment, measured the way users run it.

For each mode the benchmark starts fresh fake Notion, OpenAI and web servers
on loopback (in this process), seeds the same N Inbox items (Source Type
Website/RSS, Article URL on the fake web server, so each item costs one web
GET, one OpenAI call and the Notion writes), then runs
``enrich_rss_enhanced.py [--parallel]`` as a child process with the Notion
backend and the OpenAI enricher. The child's peak RSS and CPU time come from
``os.wait4``; its throughput from the ``pipeline_summary`` event of its JSONL
log; what reached each service from the fakes' own request logs.

Run ``python benchmarks/bench_parallel.py --help``; docs/performance.md has
the results, the bound formula and tuning advice.

``--capture`` measures something else (issue 15): N *new* entries in local
feeds (some carrying the article, some pointing at the fake web server, some
copies of others) captured and enriched into an empty fake Notion, end to end
from process start to the last page written, ``CAPTURE_MODE=enrich-first``
against ``inbox-first`` side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import ChildRun, run_measured  # noqa: E402
from knowledge_pipeline.config import VARIABLES  # noqa: E402
from tests.fakes import max_in_window  # noqa: E402
from tests.fakes.notion_server import FakeNotion  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.web_server import FakeWebServer  # noqa: E402
from tests.prose import sentences as prose  # noqa: E402

SCRIPT = ROOT / "enrich_rss_enhanced.py"
NO_CAP_RPS = 1000.0  # NOTION_MAX_RPS accepts at most 1000; used when a profile has no Notion cap
SERVICES = ("notion", "openai", "web")


@dataclass(frozen=True)
class Profile:
    """Mean latency per request of each service (seconds), jitter share, Notion cap, request spacing."""

    openai_latency: float
    notion_latency: float
    web_latency: float
    jitter: float
    notion_rps: float | None
    rate_limit: float


PROFILES: dict[str, Profile] = {
    # Real latencies and limits compressed ten times in time: OpenAI 5 s -> 0.5 s, Notion 0.3 s -> 0.03 s
    # at 3 -> 30 requests/s, web 0.5 s -> 0.05 s, PARALLEL_RATE_LIMIT 0.1 -> 0.01 s.
    "default": Profile(0.5, 0.03, 0.05, 0.2, 30.0, 0.01),
    # The same, but Notion at its true average of 3 requests/s.
    "real-notion": Profile(0.5, 0.03, 0.05, 0.2, 3.0, 0.01),
    # No latency and no limits: what the pipeline itself costs (CPU, memory).
    "zero": Profile(0.0, 0.0, 0.0, 0.0, None, 0.0),
    # --capture: the real-notion profile (Notion at its true 3 requests/s), new items from feeds.
    "capture": Profile(0.5, 0.03, 0.05, 0.2, 3.0, 0.01),
}
CAPTURE_ITEMS = 150


@dataclass(frozen=True)
class BenchConfig:
    items: int
    workers: int
    profile: str
    openai_latency: float
    notion_latency: float
    web_latency: float
    jitter: float
    notion_rps: float | None
    notion_burst: float
    pipeline_notion_rps: float | None
    rate_limit: float
    retry_attempts: int
    error_share: float
    rate_limit_share: float
    retry_after: int
    api_timeout: float
    timeout: float
    seed: int
    fault_services: tuple[str, ...] = SERVICES

    def faults_on(self, service: str) -> tuple[float, float]:
        """(5xx share, 429 share) injected into ``service``."""
        if service not in self.fault_services:
            return 0.0, 0.0
        return self.error_share, self.rate_limit_share

    @property
    def notion_max_rps(self) -> float:
        """What the pipeline is told (NOTION_MAX_RPS): as asked, else the fake's cap, else the highest accepted."""
        return self.pipeline_notion_rps or self.notion_rps or NO_CAP_RPS


# -- the fake services ----------------------------------------------------------------------------

ARTICLE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<header><nav><a href="/">Home</a> | <a href="/markets">Markets</a> | <a href="/subscribe">Subscribe</a></nav></header>
<main><article>
<h1>{title}</h1>
{paragraphs}
</article></main>
<footer><p>Copyright 2026 Example News. All rights reserved.</p></footer>
</body></html>
"""

_SENTENCES = (
    "NVIDIA said on Tuesday that new export rules would change how it ships data-centre accelerators.",
    "Analysts said the rules mostly affect the highest-end parts and leave older products untouched.",
    "Cloud providers such as Microsoft and Google have already moved some capacity to other regions.",
    "The company also said its software stack now runs on more partner systems than a year ago.",
    "Customers who build on the platform say switching costs have fallen since the last release.",
    "Researchers published a benchmark comparing retrieval pipelines across six open datasets.",
    "The report recommends caching embeddings and batching requests to keep latency predictable.",
    "Several vendors announced agents that automate data analysis for finance and operations teams.",
)


def article_html(n: int) -> str:
    """A news article of about 3 KB of text, different for every n (not a near-duplicate of another n)."""
    paragraphs = []
    for p in range(6):
        sentences = [_SENTENCES[(n + p + s) % len(_SENTENCES)] for s in range(2)]
        paragraphs.append(f"<p>Item {n}, part {p + 1}. " + " ".join(sentences) + " " + prose(n * 10 + p, 2) + "</p>")
    return ARTICLE_TEMPLATE.format(title=f"Benchmark article {n}: chips, clouds and agents", paragraphs="\n".join(paragraphs))


def _jittered(mean: float, share: float) -> tuple[float, float]:
    """(base, additive jitter) giving uniform [mean*(1-share), mean*(1+share)] for fakes that add U(0, jitter)."""
    return mean * (1 - share), 2 * mean * share


@dataclass
class Fakes:
    notion: FakeNotion
    openai: FakeOpenAI
    web: FakeWebServer


@contextmanager
def start_fakes(config: BenchConfig) -> Iterator[Fakes]:
    """Fresh fakes configured for ``config``, with N Inbox items seeded; closed on exit."""
    with ExitStack() as stack:
        web = FakeWebServer(seed=config.seed)
        stack.callback(web.close)
        base, extra = _jittered(config.web_latency, config.jitter)
        errors, limited = config.faults_on("web")
        web.configure(latency=base, jitter=extra, error_rate=errors, rate_limit_rate=limited,
                      retry_after=config.retry_after)
        for n in range(config.items):
            web.page(f"/articles/{n}", article_html(n))

        base, extra = _jittered(config.openai_latency, config.jitter)
        errors, limited = config.faults_on("openai")
        openai = FakeOpenAI(latency=base, jitter=extra, error_rate_5xx=errors, error_rate_429=limited,
                            retry_after=float(config.retry_after), seed=config.seed).start()
        stack.callback(openai.close)

        errors, limited = config.faults_on("notion")
        notion = FakeNotion(latency=config.notion_latency, jitter=config.notion_latency * config.jitter,
                            error_share=errors, rate_limit_share=limited,
                            retry_after=config.retry_after, rps=config.notion_rps, burst=config.notion_burst,
                            seed=config.seed)
        stack.callback(notion.close)
        notion.create_sources_database("full")
        notion.seed([
            {"Title": f"Benchmark article {n}", "Status": "Inbox", "Source Type": "Website" if n % 2 else "RSS",
             "Article URL": f"{web.url}/articles/{n}", "Hash": f"bench-{n}"}
            for n in range(config.items)
        ])
        yield Fakes(notion, openai, web)


# -- one run of the script ------------------------------------------------------------------------

def child_env(config: BenchConfig, fakes: Fakes, workdir: Path) -> dict[str, str]:
    """The environment of the script: inherited, minus every pipeline setting, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES and k not in ("PYTHONPATH",)}
    env.update({
        "PYTHONPATH": str(ROOT),
        "SOURCES_BACKEND": "notion",
        "NOTION_TOKEN": fakes.notion.token,
        "NOTION_SOURCES_DB": fakes.notion.database_id or "",
        "NOTION_BASE_URL": fakes.notion.url,
        "ENRICHER": "openai",
        "OPENAI_API_KEY": fakes.openai.api_key,
        "OPENAI_BASE_URL": fakes.openai.url,
        "OPENAI_BATCH": "never",  # direct calls are what this benchmark measures
        "ALLOW_PRIVATE_URLS": "true",
        "RSS_FEEDS": "",
        "PARALLEL_MAX_WORKERS": str(config.workers),
        "PARALLEL_RATE_LIMIT": f"{config.rate_limit:g}",
        "NOTION_MAX_RPS": f"{config.notion_max_rps:g}",
        "RETRY_ATTEMPTS": str(config.retry_attempts),
        "API_TIMEOUT": f"{config.api_timeout:g}",
        "LOG_DIR": str(workdir / "logs"),
        "LOG_LEVEL": "INFO",
        "LOG_MAX_BYTES": str(2**31 - 1),  # one file, so every event of the run can be read back
        "JOURNAL_PATH": str(workdir / "data" / "journal.db"),
    })
    return env


def run_child(args: list[str], env: dict[str, str], workdir: Path, timeout: float) -> ChildRun:
    """Run the script and collect its own resource usage (not the fakes', which live in this process)."""
    return run_measured([sys.executable, str(SCRIPT), *args], env, workdir, timeout)


def read_events(log_dir: Path) -> list[dict[str, Any]]:
    """Every event of the run's JSONL log, oldest first, with its time as ``_t`` (epoch seconds)."""
    events = []
    for path in sorted(log_dir.glob("pipeline.jsonl*"), reverse=True):
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                stamp = datetime.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
                events.append({**record["extra_fields"], "_t": stamp.timestamp()})
    return events


def enrich_phase(events: list[dict[str, Any]], mode: str) -> tuple[float | None, float | None]:
    """(seconds from ``<mode>_start`` to the last item's end, items/s over that phase).

    pipeline_summary's duration also holds the start-up inside the run (SDK
    imports, opening the store, counting the Inbox); this is the enrichment alone.
    """
    starts = [e["_t"] for e in events if e.get("event_type") == f"{mode}_start"]
    ends = [e["_t"] for e in events if e.get("event_type") in ("item_complete", "item_error", "item_skipped")]
    if not starts or not ends:
        return None, None
    seconds = max(ends) - starts[0]
    return round(seconds, 3), round(len(ends) / seconds, 4) if seconds > 0 else None


# -- what the services saw ------------------------------------------------------------------------


def service_view(times: list[float], statuses: Counter, endpoints: dict[str, int] | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "requests": len(times),
        "max_in_1s": max_in_window(times, 1.0),
        "max_in_10s": max_in_window(times, 10.0),
        "http_429": statuses.get(429, 0),
        "http_5xx": sum(n for status, n in statuses.items() if status >= 500),
    }
    if endpoints is not None:
        view["by_endpoint"] = endpoints
    return view


def services_seen(fakes: Fakes, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Requests, 429/5xx answers and the busiest 1 s / 10 s windows, per service, from the fakes' logs.

    The fake web server does not log answer statuses, so its 429/5xx counts
    come from the pipeline's retry and error events instead.
    """
    notion = fakes.notion.stats()
    notion_status = Counter(entry["status"] for entry in notion["log"])
    openai_stats = fakes.openai.stats()
    openai_status = Counter({int(k): v for k, v in openai_stats["by_status"].items()})
    web_times = [r["time"] for r in fakes.web.stats()["requests"]]
    web_status = Counter(
        int(e["status_code"]) for e in events
        if e.get("event_type") in ("api_call_retry", "api_call_error") and e.get("service") == "web"
        and e.get("status_code") is not None
    )
    return {
        "notion": service_view(notion["timestamps"], notion_status, notion["by_endpoint"]),
        "openai": service_view(openai_stats["timestamps"], openai_status, None),
        "web": service_view(web_times, web_status, None),
    }


def notion_statuses(fakes: Fakes) -> Counter:
    return Counter(page["properties"]["Status"]["select"]["name"] for page in fakes.notion.pages()
                   if page["properties"]["Status"]["select"])


# -- the bound ------------------------------------------------------------------------------------

def bound(config: BenchConfig, workers: int, per_item: dict[str, float]) -> dict[str, Any]:
    """The best throughput the services allow (items/s) and which limit sets it.

    bound = min( workers / T,  min over services s of  cap_s / r_s )
      T     = sum over s of r_s * L_s   (mean service time of one item)
      r_s   = requests to s per item, as counted by the fake (retries and amortised queries included)
      L_s   = mean latency of one request to s
      cap_s = 1 / PARALLEL_RATE_LIMIT for every s; for Notion the least of that, NOTION_MAX_RPS and
              Notion's own cap (the fake's token bucket)
    """
    latency = {"notion": config.notion_latency, "openai": config.openai_latency, "web": config.web_latency}
    limits: dict[str, float] = {}
    service_time = sum(per_item[s] * latency[s] for s in SERVICES)
    if service_time > 0:
        limits["workers"] = workers / service_time
    spacing_cap = 1.0 / config.rate_limit if config.rate_limit > 0 else math.inf
    told = config.notion_max_rps if config.notion_max_rps < NO_CAP_RPS else math.inf
    for s in SERVICES:
        cap = min(spacing_cap, config.notion_rps or math.inf, told) if s == "notion" else spacing_cap
        if per_item[s] > 0 and cap < math.inf:
            limits[s] = cap / per_item[s]
    if not limits:
        return {"items_per_second": None, "limited_by": None, "service_time_per_item": 0.0, "limits": {}}
    limited_by = min(limits, key=limits.get)
    return {
        "items_per_second": round(limits[limited_by], 4),
        "limited_by": limited_by,
        "service_time_per_item": round(service_time, 4),
        "limits": {k: round(v, 4) for k, v in limits.items()},
    }


# -- one mode ------------------------------------------------------------------------------------

def run_mode(config: BenchConfig, mode: str, workdir: Path) -> dict[str, Any]:
    """Seed fresh fakes, run the script in ``mode`` and measure."""
    workdir.mkdir(parents=True, exist_ok=True)
    parallel = mode == "parallel"
    workers = config.workers if parallel else 1
    with start_fakes(config) as fakes:
        env = child_env(config, fakes, workdir)
        child = run_child(["--parallel"] if parallel else [], env, workdir, config.timeout)
        events = read_events(workdir / "logs")
        seen = services_seen(fakes, events)
        statuses = notion_statuses(fakes)
    summaries = [e for e in events if e.get("event_type") == "pipeline_summary"]
    metrics = summaries[-1]["metrics"] if summaries else {}
    items = config.items
    per_item = {s: seen[s]["requests"] / items for s in SERVICES}
    notion_endpoints = seen["notion"]["by_endpoint"]
    writes = notion_endpoints.get("blocks.children.append", 0) + notion_endpoints.get("pages.update", 0)
    retries = Counter(e.get("service") for e in events if e.get("event_type") == "api_call_retry")
    phase_seconds, phase_ips = enrich_phase(events, mode)
    result = {
        "mode": mode,
        "workers": workers,
        "exit_code": child.exit_code,
        "items_per_second": metrics.get("items_per_second"),
        "duration_seconds": metrics.get("duration_seconds"),
        "enrich_seconds": phase_seconds,
        "enrich_items_per_second": phase_ips,
        "wall_seconds": round(child.wall_seconds, 3),
        "wall_items_per_second": round(items / child.wall_seconds, 4) if child.wall_seconds else None,
        "enriched_items": metrics.get("items_processed"),
        "failed_items": metrics.get("items_failed"),
        "left_in_inbox": statuses.get("Inbox", 0),
        "peak_rss_mb": round(child.peak_rss_mb, 1),
        "cpu_seconds": round(child.cpu_seconds, 3),
        "cpu_ms_per_item": round(child.cpu_seconds * 1000 / items, 2) if items else None,
        "notion_requests_per_item": round(per_item["notion"], 4),
        "notion_writes_per_item": round(writes / items, 4) if items else None,
        "openai_calls_per_item": round(per_item["openai"], 4),
        "web_requests_per_item": round(per_item["web"], 4),
        "item_duration": metrics.get("item_duration"),
        "services": seen,
        "retries": dict(retries),
        "rate_limit_adjustments": sum(1 for e in events if e.get("event_type") == "rate_limit_adjusted"),
        "top_errors": metrics.get("top_errors", []),
        "bound": bound(config, workers, per_item),
    }
    if not summaries or child.exit_code != 0:
        result["stderr_tail"] = child.stderr[-2000:]
    return result


def run_benchmark(config: BenchConfig, *, skip_sequential: bool, keep: Path | None,
                  compare_faults: bool = False) -> dict[str, Any]:
    """Both modes (or only parallel); with ``compare_faults`` also the parallel run without any fault."""
    workroot = Path(tempfile.mkdtemp(prefix="bench-parallel-")) if keep is None else keep
    try:
        sequential = None if skip_sequential else run_mode(config, "sequential", workroot / "sequential")
        parallel = run_mode(config, "parallel", workroot / "parallel")
        fault_free = None
        if compare_faults:
            clean = replace(config, error_share=0.0, rate_limit_share=0.0)
            fault_free = run_mode(clean, "parallel", workroot / "fault-free")
    finally:
        if keep is None:
            shutil.rmtree(workroot, ignore_errors=True)
    result = summarise(config, sequential, parallel)
    if fault_free is not None:
        result["fault_free"] = fault_free
        result["fault_throughput_ratio"] = _ratio(parallel["enrich_items_per_second"],
                                                  fault_free["enrich_items_per_second"])
    return result


def _ratio(value: float | None, reference: float | None) -> float | None:
    return round(value / reference, 3) if value and reference else None


def within_cap(config: BenchConfig, notion: dict[str, Any]) -> bool | None:
    """Whether Notion saw at most its cap: averaged over any 10 s, and within the bucket's burst over any 1 s."""
    if not config.notion_rps:
        return None
    return (notion["max_in_10s"] <= 10 * config.notion_rps + config.notion_burst
            and notion["max_in_1s"] <= config.notion_rps + config.notion_burst)


def summarise(config: BenchConfig, sequential: dict | None, parallel: dict) -> dict[str, Any]:
    bound_ips = parallel["bound"]["items_per_second"]
    ips = parallel["items_per_second"]
    phase_ips = parallel["enrich_items_per_second"]
    speedup = phase_speedup = None
    if sequential and sequential.get("items_per_second") and ips:
        speedup = round(ips / sequential["items_per_second"], 3)
    if sequential and sequential.get("enrich_items_per_second") and phase_ips:
        phase_speedup = round(phase_ips / sequential["enrich_items_per_second"], 3)
    services = parallel["services"]
    return {
        "items": config.items,
        "workers": config.workers,
        "profile": config.profile,
        "config": asdict(config),
        "sequential": sequential,
        "parallel": parallel,
        "speedup": speedup,
        "speedup_enrich_phase": phase_speedup,
        "notion_requests_per_item": parallel["notion_requests_per_item"],
        "notion_writes_per_item": parallel["notion_writes_per_item"],
        "openai_calls_per_item": parallel["openai_calls_per_item"],
        "bound_items_per_second": bound_ips,
        "bound_limited_by": parallel["bound"]["limited_by"],
        "efficiency": round(ips / bound_ips, 4) if ips and bound_ips else None,
        "efficiency_enrich_phase": round(phase_ips / bound_ips, 4) if phase_ips and bound_ips else None,
        "max_requests_per_second": {
            s: {"1s": services[s]["max_in_1s"], "10s": round(services[s]["max_in_10s"] / 10.0, 2)} for s in SERVICES
        },
        "http_429": {s: services[s]["http_429"] for s in SERVICES},
        "notion_within_cap": within_cap(config, services["notion"]),
        "failed_items": parallel["failed_items"],
        "peak_rss_mb": parallel["peak_rss_mb"],
        "cpu_ms_per_item": parallel["cpu_ms_per_item"],
    }


# -- command line ---------------------------------------------------------------------------------

def parse_config(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description="Run enrich_rss_enhanced.py sequentially and with --parallel against fake Notion, OpenAI "
                    "and web servers, and compare throughput with the best the services allow.",
    )
    parser.add_argument("--capture", action="store_true",
                        help="the capture profile (issue 15): N new feed entries into an empty Notion, "
                             "CAPTURE_MODE=enrich-first against inbox-first (implies --profile capture)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="default: real latencies/limits compressed 10x in time (Notion 30 req/s); "
                             "real-notion: the same with Notion at 3 req/s; zero: no latency, no limits")
    parser.add_argument("--items", type=int, default=None,
                        help=f"Inbox items to enrich (default 100; --capture: new entries, default {CAPTURE_ITEMS})")
    parser.add_argument("--workers", type=int, default=5, help="PARALLEL_MAX_WORKERS (default 5)")
    parser.add_argument("--openai-latency", type=float, help="mean seconds per OpenAI call")
    parser.add_argument("--notion-latency", type=float, help="mean seconds per Notion request")
    parser.add_argument("--web-latency", type=float, help="mean seconds per article download")
    parser.add_argument("--jitter", type=float, help="latency varies uniformly by +-this share (0.2 = 20%%)")
    parser.add_argument("--notion-rps", type=float,
                        help="Notion cap in requests/s, for the fake's token bucket and NOTION_MAX_RPS; 0: none")
    parser.add_argument("--notion-burst", type=float, default=3.0, help="the fake Notion bucket's burst (default 3)")
    parser.add_argument("--notion-max-rps", type=float,
                        help="NOTION_MAX_RPS given to the pipeline when it should differ from the fake's cap")
    parser.add_argument("--rate-limit", type=float, help="PARALLEL_RATE_LIMIT: seconds between request starts")
    parser.add_argument("--retry-attempts", type=int, default=3, help="RETRY_ATTEMPTS (default 3)")
    parser.add_argument("--error-share", type=float, default=0.0, help="share of 5xx answers on every service")
    parser.add_argument("--rate-limit-share", type=float, default=0.0,
                        help="share of 429 answers on every service of --fault-services")
    parser.add_argument("--fault-services", default=",".join(SERVICES),
                        help="comma-separated services that get the --error-share/--rate-limit-share faults "
                             "(default: notion,openai,web)")
    parser.add_argument("--compare-faults", action="store_true",
                        help="also run parallel without any fault and report the enrichment throughput ratio")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds of injected 429s (default 1)")
    parser.add_argument("--api-timeout", type=float, default=60.0, help="API_TIMEOUT (default 60)")
    parser.add_argument("--timeout", type=float, default=900.0, help="stop a run after this many seconds")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fakes' latency and faults")
    parser.add_argument("--skip-sequential", action="store_true", help="run only the parallel mode")
    parser.add_argument("--keep", type=Path, help="keep logs and journals of the runs in this folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    args.profile = args.profile or ("capture" if args.capture else "default")
    args.items = args.items or (CAPTURE_ITEMS if args.capture else 100)
    profile = PROFILES[args.profile]
    if args.notion_rps is not None:
        profile = replace(profile, notion_rps=args.notion_rps or None)

    def pick(value: float | None, default: float) -> float:
        return default if value is None else value

    config = BenchConfig(
        items=args.items,
        workers=args.workers,
        profile=args.profile,
        openai_latency=pick(args.openai_latency, profile.openai_latency),
        notion_latency=pick(args.notion_latency, profile.notion_latency),
        web_latency=pick(args.web_latency, profile.web_latency),
        jitter=pick(args.jitter, profile.jitter),
        notion_rps=profile.notion_rps,
        notion_burst=args.notion_burst,
        pipeline_notion_rps=args.notion_max_rps,
        rate_limit=pick(args.rate_limit, profile.rate_limit),
        retry_attempts=args.retry_attempts,
        error_share=args.error_share,
        rate_limit_share=args.rate_limit_share,
        retry_after=args.retry_after,
        api_timeout=args.api_timeout,
        timeout=args.timeout,
        seed=args.seed,
        fault_services=tuple(s.strip() for s in args.fault_services.split(",") if s.strip()),
    )
    if not set(config.fault_services) <= set(SERVICES):
        parser.error(f"--fault-services takes {', '.join(SERVICES)}")
    if config.items < 1 or not 1 <= config.workers <= 64:
        parser.error("--items must be >= 1 and --workers between 1 and 64")
    return config, args


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def table(result: dict[str, Any]) -> str:
    config = result["config"]
    lines = [
        f"profile {result['profile']}: {result['items']} items, {result['workers']} workers, "
        f"OpenAI {config['openai_latency']}s, Notion {config['notion_latency']}s "
        f"(cap {config['notion_rps'] or 'none'} req/s"
        + (f", NOTION_MAX_RPS {config['pipeline_notion_rps']}" if config["pipeline_notion_rps"] else "")
        + f"), web {config['web_latency']}s, jitter +-{config['jitter']:.0%}, "
        f"PARALLEL_RATE_LIMIT {config['rate_limit']}, RETRY_ATTEMPTS {config['retry_attempts']}, "
        f"5xx {config['error_share']:.0%}, 429 {config['rate_limit_share']:.0%} "
        f"(on {', '.join(config['fault_services'])})",
        "",
    ]
    rows = [
        ("items/s (pipeline_summary)", "items_per_second"),
        ("items/s (enrichment phase only)", "enrich_items_per_second"),
        ("items/s (wall, incl. start-up)", "wall_items_per_second"),
        ("bound items/s", None),
        ("wall seconds", "wall_seconds"),
        ("enriched / failed / left in Inbox", None),
        ("Notion requests per item", "notion_requests_per_item"),
        ("Notion writes per item", "notion_writes_per_item"),
        ("OpenAI calls per item", "openai_calls_per_item"),
        ("web requests per item", "web_requests_per_item"),
        ("item duration p50 / p95 s", None),
        ("peak RSS MB", "peak_rss_mb"),
        ("CPU ms per item", "cpu_ms_per_item"),
    ]
    modes = [m for m in ("sequential", "parallel", "fault_free") if result.get(m)]
    lines.append(f"{'':34}" + "".join(f"{m:>22}" for m in modes))
    for label, key in rows:
        cells = []
        for m in modes:
            r = result[m]
            if label.startswith("bound"):
                value = f"{_fmt(r['bound']['items_per_second'])} ({r['bound']['limited_by']})"
            elif label.startswith("enriched"):
                value = f"{r['enriched_items']} / {r['failed_items']} / {r['left_in_inbox']}"
            elif label.startswith("item duration"):
                d = r["item_duration"] or {}
                value = f"{_fmt(d.get('p50'))} / {_fmt(d.get('p95'))}"
            else:
                value = _fmt(r[key])
            cells.append(f"{value:>22}")
        lines.append(f"{label:34}" + "".join(cells))
    lines.append("")
    if result.get("fault_free"):
        lines.append(f"with faults / fault-free (enrichment phase items/s): {_fmt(result['fault_throughput_ratio'])}")
    lines.append(f"speedup {_fmt(result['speedup'])}x (enrichment phase {_fmt(result['speedup_enrich_phase'])}x)   "
                 f"efficiency (parallel / bound) {_fmt(result['efficiency'])} "
                 f"(enrichment phase {_fmt(result['efficiency_enrich_phase'])})")
    if result["notion_within_cap"] is not None:
        lines.append(f"Notion within its cap (10 s average, 1 s burst): {result['notion_within_cap']}")
    lines.append("parallel run, as seen by the fakes:")
    for s in SERVICES:
        view = result["parallel"]["services"][s]
        lines.append(f"  {s:7} {view['requests']:6} requests, max {view['max_in_1s']} in 1 s, "
                     f"{view['max_in_10s'] / 10:.1f}/s over 10 s, {view['http_429']} x 429, {view['http_5xx']} x 5xx")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    config, args = parse_config(argv)
    if args.capture:
        captured = run_capture_benchmark(config, keep=args.keep)
        print(json.dumps(captured, indent=2) if args.json else capture_table(captured))
        return 0 if all(captured[m]["exit_code"] == 0 for m in CAPTURE_MODES) else 1
    result = run_benchmark(config, skip_sequential=args.skip_sequential, keep=args.keep,
                           compare_faults=args.compare_faults)
    print(json.dumps(result, indent=2) if args.json else table(result))
    runs = [r for r in (result["sequential"], result["parallel"]) if r]
    return 0 if all(r["exit_code"] == 0 and r["items_per_second"] is not None for r in runs) else 1


# -- the capture profile (issue 15): new items, enrich-first against inbox-first ------------------------

CAPTURE_MODES = ("enrich-first", "inbox-first")
CAPTURE_FEEDS = 3
WRITES = ("pages.create", "blocks.children.append", "pages.update")


def _paragraphs(n: int) -> list[str]:
    html = article_html(n)
    return [p.split("</p>")[0] for p in html.split("<p>")[1:]]


def capture_entries(items: int, web_url: str) -> list[tuple[str, str, str | None, int | None]]:
    """(title, link, carried article text or None, article n) of every entry; one in five is a copy.

    n % 5 in (0, 1): the feed carries the article; (2, 3): a link to the article on the fake web server;
    4: a copy of an earlier article, either carried again under another link (a syndicated entry) or a
    mirror page naming the original as its canonical URL. Copies have the article n of their original.
    """
    entries = []
    for n in range(items):
        kind = n % 5
        if kind in (0, 1):
            entries.append((f"Carried article {n}", f"https://carried.example/{n}", "\n\n".join(_paragraphs(n)), n))
        elif kind in (2, 3):
            entries.append((f"Linked article {n}", f"{web_url}/articles/{n}", None, n))
        elif (n // 5) % 2 == 0:
            entries.append((f"Syndicated copy {n}", f"https://syndicated.example/{n}",
                            "\n\n".join(_paragraphs(n - 4)), n - 4))
        else:
            entries.append((f"Mirror copy {n}", f"{web_url}/mirror/{n}", None, n - 2))
    return entries


def _feed_document(entries: list[tuple[str, str, str | None, int | None]]) -> str:
    from xml.sax.saxutils import escape

    items = []
    for title, link, carried, _ in entries:
        content = ("<content:encoded><![CDATA[" + "".join(f"<p>{p}</p>" for p in carried.split("\n\n"))
                   + "]]></content:encoded>") if carried else ""
        items.append(f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
                     f"<description>Teaser.</description>{content}</item>")
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Bench</title>'
            "<link>https://example.com/</link><description>d</description>" + "".join(items) + "</channel></rss>")


@contextmanager
def start_capture_fakes(config: BenchConfig, workdir: Path) -> Iterator[tuple[Fakes, list[Path], int]]:
    """Fresh fakes (an empty Sources database), the local feed files, and the number of unique articles."""
    with ExitStack() as stack:
        web = FakeWebServer(seed=config.seed)
        stack.callback(web.close)
        base, extra = _jittered(config.web_latency, config.jitter)
        web.configure(latency=base, jitter=extra)
        entries = capture_entries(config.items, web.url)
        for title, link, carried, n in entries:
            if link.startswith(web.url + "/articles/"):
                web.page(f"/articles/{n}", article_html(n))
            elif link.startswith(web.url + "/mirror/"):
                canonical = f'<link rel="canonical" href="{web.url}/articles/{n}">'
                web.page(link[len(web.url):], article_html(n).replace("<head>", "<head>" + canonical))
        feeds = []
        for k in range(CAPTURE_FEEDS):
            path = workdir / f"feed-{k}.xml"
            path.write_text(_feed_document(entries[k::CAPTURE_FEEDS]), encoding="utf-8")
            feeds.append(path)
        base, extra = _jittered(config.openai_latency, config.jitter)
        openai = FakeOpenAI(latency=base, jitter=extra, seed=config.seed).start()
        stack.callback(openai.close)
        notion = FakeNotion(latency=config.notion_latency, jitter=config.notion_latency * config.jitter,
                            rps=config.notion_rps, burst=config.notion_burst, seed=config.seed)
        stack.callback(notion.close)
        notion.create_sources_database("full")
        yield Fakes(notion, openai, web), feeds, len({n for *_, n in entries})


def run_capture_mode(config: BenchConfig, mode: str, workdir: Path) -> dict[str, Any]:
    """One run of ``enrich_rss_enhanced.py --parallel`` capturing the feeds in ``mode``, measured end to end."""
    workdir.mkdir(parents=True, exist_ok=True)
    with start_capture_fakes(config, workdir) as (fakes, feeds, unique):
        env = child_env(config, fakes, workdir)
        env.update({"RSS_FEEDS": ",".join(str(f) for f in feeds), "RSS_WINDOW_DAYS": "0", "CAPTURE_MODE": mode,
                    "OPENAI_BATCH": "never"})
        child = run_child(["--parallel"], env, workdir, config.timeout)
        log = fakes.notion.stats()["log"]
        statuses = notion_statuses(fakes)
        openai_ok = fakes.openai.stats()["ok"]
        web_requests = fakes.web.stats()["count"]
    events = read_events(workdir / "logs")
    summaries = [e for e in events if e.get("event_type") == "pipeline_summary"]
    metrics = summaries[-1]["metrics"] if summaries else {}
    writes = [e for e in log if e["endpoint"] in WRITES and e["status"] == 200]
    enriched = statuses.get("Enriched", 0)
    end_to_end = max(e["t"] for e in writes) - child.started if writes else None
    per_item = len(log) / enriched if enriched else None
    ips = enriched / end_to_end if end_to_end else None
    bound_ips = config.notion_max_rps / per_item if per_item else None
    result = {
        "mode": mode,
        "exit_code": child.exit_code,
        "entries": config.items,
        "unique_articles": unique,
        "enriched_pages": enriched,
        "pages": sum(statuses.values()),
        "statuses": dict(statuses),
        "duplicates_skipped": metrics.get("duplicates_skipped"),
        "startup_seconds": round(min(e["t"] for e in log) - child.started, 3) if log else None,
        "end_to_end_seconds": round(end_to_end, 3) if end_to_end else None,
        "new_items_per_second": round(ips, 4) if ips else None,
        "notion_requests": len(log),
        "notion_requests_per_new_item": round(per_item, 4) if per_item else None,
        "notion_writes_per_new_item": round(len(writes) / enriched, 4) if enriched else None,
        "notion_by_endpoint": dict(Counter(e["endpoint"] for e in log)),
        "bound_items_per_second": round(bound_ips, 4) if bound_ips else None,
        "efficiency": round(ips / bound_ips, 4) if ips and bound_ips else None,
        "openai_calls_per_unique_article": round(openai_ok / unique, 4) if unique else None,
        "web_requests": web_requests,
        "wall_seconds": round(child.wall_seconds, 3),
        "peak_rss_mb": round(child.peak_rss_mb, 1),
        "cpu_seconds": round(child.cpu_seconds, 3),
    }
    if child.exit_code != 0 or enriched != unique:
        result["stderr_tail"] = child.stderr[-2000:]
    return result


def run_capture_benchmark(config: BenchConfig, *, keep: Path | None) -> dict[str, Any]:
    workroot = Path(tempfile.mkdtemp(prefix="bench-capture-")) if keep is None else keep
    try:
        runs = {mode: run_capture_mode(config, mode, workroot / mode) for mode in CAPTURE_MODES}
    finally:
        if keep is None:
            shutil.rmtree(workroot, ignore_errors=True)
    first, inbox = runs["enrich-first"], runs["inbox-first"]
    ratio = _ratio(first["new_items_per_second"], inbox["new_items_per_second"])
    return {
        "profile": config.profile, "items": config.items, "workers": config.workers, "config": asdict(config),
        **runs,
        "speedup": ratio,
        "targets": {
            "speedup >= 2.5": bool(ratio and ratio >= 2.5),
            "efficiency >= 0.85": bool(first["efficiency"] and first["efficiency"] >= 0.85),
            "notion requests per new item <= 1.05": bool(first["notion_requests_per_new_item"]
                                                         and first["notion_requests_per_new_item"] <= 1.05),
            "openai calls per unique article == 1.00": first["openai_calls_per_unique_article"] == 1.0,
        },
    }


def capture_table(result: dict[str, Any]) -> str:
    config = result["config"]
    lines = [f"capture profile: {result['items']} new feed entries ({CAPTURE_FEEDS} local feeds; 2/5 carry the "
             f"article, 2/5 link to it, 1/5 are copies), {result['workers']} workers, Notion cap "
             f"{config['notion_rps'] or 'none'} req/s (latency {config['notion_latency']}s), OpenAI "
             f"{config['openai_latency']}s, web {config['web_latency']}s", ""]
    rows = [
        ("unique articles / pages Enriched", lambda r: f"{r['unique_articles']} / {r['enriched_pages']}"),
        ("pages in Notion (Duplicate)", lambda r: f"{r['pages']} ({r['statuses'].get('Duplicate', 0)})"),
        ("duplicates skipped", lambda r: _fmt(r["duplicates_skipped"])),
        ("start-up s (to 1st Notion request)", lambda r: _fmt(r["startup_seconds"])),
        ("end to end s (to last page written)", lambda r: _fmt(r["end_to_end_seconds"])),
        ("new items/s", lambda r: _fmt(r["new_items_per_second"])),
        ("bound 3 / requests per item", lambda r: _fmt(r["bound_items_per_second"])),
        ("efficiency (items/s / bound)", lambda r: _fmt(r["efficiency"])),
        ("Notion requests per new item", lambda r: _fmt(r["notion_requests_per_new_item"])),
        ("Notion writes per new item", lambda r: _fmt(r["notion_writes_per_new_item"])),
        ("OpenAI calls per unique article", lambda r: _fmt(r["openai_calls_per_unique_article"])),
        ("peak RSS MB / CPU s", lambda r: f"{_fmt(r['peak_rss_mb'])} / {_fmt(r['cpu_seconds'])}"),
    ]
    lines.append(f"{'':38}" + "".join(f"{m:>24}" for m in CAPTURE_MODES))
    for label, cell in rows:
        lines.append(f"{label:38}" + "".join(f"{cell(result[m]):>24}" for m in CAPTURE_MODES))
    lines.append("")
    lines.append(f"enrich-first / inbox-first new items/s: {_fmt(result['speedup'])}x")
    lines.extend(f"  {'met' if ok else 'NOT met'}: {target}" for target, ok in result["targets"].items())
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
