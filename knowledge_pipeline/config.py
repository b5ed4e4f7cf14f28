"""Settings: read once at start from the environment, ``.env.migration`` and ``.env``, validated.

A variable already exported always wins, then ``.env.migration`` (the rollout
phase written by migrate_to_parallel.py), then ``.env``; python-dotenv reads
both files for every script and for pipeline_enhanced.sh (which asks
``knowledge_pipeline.shellenv``), so quoting and comments mean the same
everywhere. Any invalid value raises
:class:`ConfigError` naming the variable, the value and what is accepted; the
scripts turn it into one line on stderr and exit code 2 before doing any work.
Every variable is listed in ``VARIABLES`` with its default and meaning; the
README's configuration table is checked against it by a test.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from dotenv import dotenv_values

from .enrichers.analyses import Analysis, load_file, select
from .errors import ConfigError
from .models import Taxonomy
from .taxonomy import TaxonomyFileError, load_taxonomy

DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"
DEFAULT_NOTION_BASE_URL = "https://api.notion.com"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_DRIVE_BASE_URL = "https://www.googleapis.com"
DEFAULT_FIRECRAWL_BASE_URL = "https://api.firecrawl.dev"
DEFAULT_FEEDS_FILE = Path("feeds.opml")

# name -> (default shown in docs, meaning)
VARIABLES: dict[str, tuple[str, str]] = {
    "SOURCES_BACKEND": ("notion if NOTION_TOKEN and NOTION_SOURCES_DB are set, else sqlite", "Where Sources live: sqlite or notion"),
    "SOURCES_DB_PATH": ("data/sources.db", "SQLite Sources file (sqlite backend)"),
    "JOURNAL_PATH": ("data/journal.db", "Step journal that makes re-runs after a crash exactly-once"),
    "ENRICHER": ("openai if OPENAI_API_KEY is set, else anthropic if ANTHROPIC_API_KEY is set, else local",
                 "Who writes summaries: local (offline), openai or anthropic"),
    "RSS_FEEDS": ("(empty)", "Comma-separated feed URLs or local file paths, added to the feed list (FEEDS_FILE); feed capture runs when either names a feed"),
    "RSS_WINDOW_DAYS": ("90", "Keep feed entries newer than this many days; 0 keeps all"),
    "PDF_DIR": ("(empty)", "Folder whose PDFs become Inbox items; empty skips PDF capture"),
    "API_TIMEOUT": ("60", "Timeout in seconds for one API or web request"),
    "RETRY_ATTEMPTS": ("3", "Retries after the first attempt of a failed API call (429, 5xx, timeouts)"),
    "LOG_DIR": ("logs", "Folder of pipeline.jsonl"),
    "LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR (file and console)"),
    "LOG_MAX_BYTES": ("10485760", "pipeline.jsonl rotates past this size"),
    "LOG_BACKUP_COUNT": ("5", "Rotated log files kept"),
    "USE_ENHANCED": ("true", "pipeline_enhanced.sh: run the enhanced scripts (false: the originals)"),
    "ENABLE_PARALLEL": ("false", "Enhanced scripts: parallel workers instead of one at a time"),
    "PARALLEL_MAX_WORKERS": ("5", "Concurrent workers in parallel mode (1-64); while items wait out a 429's Retry-After, up to twice as many items run"),
    "PARALLEL_RATE_LIMIT": ("0.1", "Minimum seconds between the starts of two requests to one service; 0 disables"),
    "NOTION_MAX_RPS": ("3", "Average cap on Notion requests per second"),
    "SHUTDOWN_GRACE_SECONDS": ("30", "On SIGINT/SIGTERM, how long in-flight items may finish"),
    "NOTION_TOKEN": ("(unset)", "Notion integration token"),
    "NOTION_SOURCES_DB": ("(unset)", "Sources database id or data source id"),
    "NOTION_BASE_URL": (DEFAULT_NOTION_BASE_URL, "Notion API root (tests and proxies point it elsewhere)"),
    "NOTION_PARENT_PAGE": ("(unset)", "Page under which `notion setup` creates the Sources database"),
    "RSS_URL_PROP": ("Article URL", "Notion property holding an item's article URL"),
    "CREATED_PROP": ("Created Date", "Notion date property for the publication date"),
    "PDF_URL_PROP": ("Drive URL", "Notion URL property locating an item's PDF"),
    "NOTION_MAX_RAW_CHARS": ("100000", "Cap on the full text stored in the Raw toggle"),
    "OPENAI_API_KEY": ("(unset)", "OpenAI (or compatible server) API key"),
    "OPENAI_BASE_URL": ("(OpenAI's)", "OpenAI-compatible API root, e.g. a local Ollama or vLLM server"),
    "OPENAI_MODEL": (DEFAULT_OPENAI_MODEL, "Chat model used for enrichment"),
    "MAX_INPUT_TOKENS": ("60000", "Input budget per call (estimated as characters / 4); longer texts are map-reduced"),
    "MAX_CHUNKS": ("12", "Most chunks summarised for one long document"),
    "MAX_COST_USD": ("(unset)", "Budget per run; once spent no new item starts"),
    "OPENAI_PRICES_FILE": ("(unset)", "JSON file of per-model prices overriding the built-in table"),
    "OPENAI_PRICES": ("(unset)", "JSON object of per-model prices overriding the built-in table"),
    "MAX_DOWNLOAD_MB": ("10", "Size cap of one web or PDF download"),
    "MAX_PDF_PAGES": ("500", "Pages of one PDF read at most"),
    "ALLOW_PRIVATE_URLS": ("false", "Allow fetching article URLs on loopback/private addresses"),
    "ALERT_FAILURE_RATE": ("0.5", "A run whose failure rate exceeds this exits 1 and logs an alert"),
    "ALERT_WEBHOOK_URL": ("(unset)", "Slack-style webhook receiving alerts as a JSON POST"),
    "METRICS_TEXTFILE": ("(unset)", "Prometheus textfile written after each run"),
    # reading side (search, serve, digest, export, sync)
    "TAXONOMY_FILE": ("(unset)", "YAML or JSON file of your content types and AI primitives (SQLite store; `notion setup`)"),
    "DIGEST_WEBHOOK_URL": ("(unset)", "Slack-style webhook receiving `digest --post` as a JSON POST"),
    # issue 12: web and services
    "ITEM_TIMEOUT": ("300", "Deadline in seconds for one item (fetch, redirects, retries, LLM calls, writes) or one feed"),
    "CIRCUIT_BREAKER_FAILURES": ("5", "Connection failures or timeouts in a row to OpenAI or Notion after which the run stops"),
    # -- sources beyond feeds and the PDF folder (capture/registry.py) --
    "GOOGLE_APP_CREDENTIALS": ("(unset)", "Service-account JSON key file for Google Drive"),
    "DRIVE_FOLDER_ID": ("(unset)", "Drive folder (id or URL) whose PDFs become Inbox items; empty skips Drive capture"),
    "DRIVE_RECURSIVE": ("false", "Also capture the PDFs of the Drive folder's subfolders"),
    "DRIVE_EXPORT_DOCS": ("false", "Also capture the folder's Google Docs, exported as PDF"),
    "GOOGLE_DRIVE_BASE_URL": (DEFAULT_DRIVE_BASE_URL, "Drive API root (tests and proxies point it elsewhere)"),
    "WEBSITE_SOURCES": ("(empty)", "Comma-separated URLs of website sections without a feed; empty skips them"),
    "WEBSITE_WINDOW_DAYS": ("30", "Keep website articles published in the last this many days; 0 keeps all"),
    "WEBSITE_MAX_ARTICLES": ("50", "Most new articles taken from one website section per run (newest first)"),
    "WEBSITE_AUTH_CONFIGS": ("(unset)", "JSON file of per-domain headers and cookies for paid content"),
    "FIRECRAWL_API_KEY": ("(unset)", "Firecrawl key: pages whose extraction yields too little text are rendered by it"),
    "FIRECRAWL_BASE_URL": (DEFAULT_FIRECRAWL_BASE_URL, "Firecrawl API root (self-hosted Firecrawl, tests)"),
    # -- email newsletters (IMAP) --
    "EMAIL_IMAP_HOST": ("(unset)", "IMAP server of the newsletter mailbox; unset skips email capture"),
    "EMAIL_IMAP_PORT": ("993 (143 when EMAIL_IMAP_SSL=false)", "IMAP port"),
    "EMAIL_IMAP_SSL": ("true", "true: implicit TLS; false: STARTTLS when offered, plain IMAP only on loopback"),
    "EMAIL_IMAP_USER": ("(unset)", "IMAP user name (usually the email address)"),
    "EMAIL_IMAP_PASSWORD": ("(unset)", "IMAP password; Gmail and Outlook need an app password"),
    "EMAIL_IMAP_FOLDER": ("INBOX", "Folder read (opened read-only with EXAMINE)"),
    "EMAIL_IMAP_CA_FILE": ("(system CAs)", "PEM file of the CA(s) trusted for the IMAP server instead of the system's"),
    "EMAIL_SEARCH": ("ALL", 'IMAP SEARCH criteria, e.g. FROM "substack.com"'),
    "EMAIL_WINDOW_DAYS": ("7", "Keep messages newer than this many days; 0 keeps all"),
    "EMAIL_MAX_MESSAGES": ("200", "New messages taken per run at most (the newest); the rest are counted and left for later runs"),
    "EMAIL_SENDER_WHITELIST": ("(empty)", "Comma-separated addresses or domains; when set, only these senders"),
    "EMAIL_SENDER_BLACKLIST": ("(empty)", "Comma-separated addresses or domains never captured"),
    "EMAIL_URL_PROP": ("(RSS_URL_PROP)", "Notion URL property for an email's view-in-browser link"),
    # issue 12 (runs, capture and files)
    "FEED_MAX_ENTRIES": ("200", "New entries one feed adds per run at most (the newest); the rest are counted and left for later runs"),
    "XDG_STATE_HOME": ("~/.local/state", "Per-user state folder; the Notion run locks live in its knowledge-pipeline/ (not in TMPDIR)"),
    # --- LLM providers, context, Batch API, analyses (docs/openai.md) ---
    "ANTHROPIC_API_KEY": ("(unset)", "Anthropic API key (ENRICHER=anthropic)"),
    "ANTHROPIC_MODEL": (DEFAULT_ANTHROPIC_MODEL, "Claude model used for enrichment"),
    "ANTHROPIC_BASE_URL": ("(Anthropic's)", "Anthropic API root (tests and proxies point it elsewhere)"),
    "OPENAI_CONTEXT_TOKENS": ("(asked from local servers)", "Context window of the OpenAI-compatible server; overrides what Ollama, vLLM or llama.cpp report"),
    "MAX_OUTPUT_TOKENS": ("8192", "Answer token limit per call (Anthropic's max_tokens); analyses are split over calls to stay under it"),
    "OPENAI_BATCH": ("auto", "Batch API at half price: auto (when the Inbox holds BATCH_MIN_ITEMS), always or never"),
    "BATCH_MIN_ITEMS": ("50", "Inbox size from which OPENAI_BATCH=auto submits a batch"),
    "ANALYSES": ("none (every analysis of ANALYSES_FILE when it is set)", "Extra analyses per item: none, original (the original's set) or comma-separated names"),
    "ANALYSES_FILE": ("(unset)", "YAML file defining your own analyses (name, instruction, shape)"),
    # -- the feed list and feed health (docs/feeds.md)
    "FEEDS_FILE": ("feeds.opml, when it exists", "OPML 2.0 feed list (`python3 -m knowledge_pipeline feeds`); merged with RSS_FEEDS"),
    "FEED_STATE_PATH": ("feeds.db beside JOURNAL_PATH (data/feeds.db)", "Local SQLite file of each feed's ETag, health and history (every backend)"),
    "FEED_CONCURRENCY": ("8", "Feeds fetched at the same time (1-64); at most 2 per host"),
    "FEED_MAX_ERRORS": ("10", "Consecutive failures after which a feed is paused until `feeds resume URL`"),
    "FEED_STALE_DAYS": ("60", "A feed with no new entry for this many days is flagged stale"),
    "CATEGORY_PROP": ("Category", "Notion select or multi-select property receiving a feed's category"),
    # issue 15: enrich first, never pay twice, keep what was fetched
    "CAPTURE_MODE": ("enrich-first", "enrich-first: a new item's page is created once, enriched (one request); inbox-first: created in the Inbox at capture, then enriched"),
    "DEDUP_WINDOW_DAYS": ("90", "Duplicates (same canonical URL, same or nearly the same text) are looked for among the items of the last this many days; 0 keeps all"),
    "DEDUP_PATH": ("dedup.db beside JOURNAL_PATH", "Local state file of the text fingerprints and URLs of enriched items"),
    "CACHE_MAX_MB": ("200", "Size cap of the local cache of fetched texts (least recently used out first); 0 disables it"),
    "CACHE_PATH": ("text_cache.db beside JOURNAL_PATH", "Local cache of feed and extracted texts, by item hash"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    sources_backend: str = "sqlite"
    sources_db_path: Path = Path("data/sources.db")
    journal_path: Path = Path("data/journal.db")
    enricher: str = "local"
    rss_feeds: tuple[str, ...] = ()
    rss_window_days: int = 90
    feed_max_entries: int = 200
    pdf_dir: Path | None = None
    api_timeout: float = 60.0
    retry_attempts: int = 3
    log_dir: Path = Path("logs")
    log_level: str = "INFO"
    log_max_bytes: int = 10 * 1024 * 1024
    log_backup_count: int = 5
    use_enhanced: bool = True
    enable_parallel: bool = False
    parallel_max_workers: int = 5
    parallel_rate_limit: float = 0.1
    notion_max_rps: float = 3.0
    shutdown_grace_seconds: float = 30.0
    notion_token: str | None = field(default=None, repr=False)
    notion_sources_db: str | None = None
    notion_base_url: str = DEFAULT_NOTION_BASE_URL
    notion_parent_page: str | None = None
    rss_url_prop: str = "Article URL"
    created_prop: str = "Created Date"
    pdf_url_prop: str = "Drive URL"
    notion_max_raw_chars: int = 100_000
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = DEFAULT_OPENAI_MODEL
    max_input_tokens: int = 60_000
    max_chunks: int = 12
    max_cost_usd: float | None = None
    openai_prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    max_download_mb: float = 10.0
    max_pdf_pages: int = 500
    allow_private_urls: bool = False
    alert_failure_rate: float = 0.5
    alert_webhook_url: str | None = None
    metrics_textfile: Path | None = None
    taxonomy: Taxonomy | None = None
    digest_webhook_url: str | None = field(default=None, repr=False)
    item_timeout: float = 300.0
    circuit_breaker_failures: int = 5
    # -- sources beyond feeds and the PDF folder --
    google_app_credentials: Path | None = None
    drive_folder_id: str | None = None
    drive_recursive: bool = False
    drive_export_docs: bool = False
    google_drive_base_url: str = DEFAULT_DRIVE_BASE_URL
    website_sources: tuple[str, ...] = ()
    website_window_days: int = 30
    website_max_articles: int = 50
    website_auth: Mapping[str, SiteAuth] = field(default_factory=dict, repr=False)
    firecrawl_api_key: str | None = field(default=None, repr=False)
    firecrawl_base_url: str = DEFAULT_FIRECRAWL_BASE_URL
    # email newsletters (IMAP)
    email_imap_host: str | None = None
    email_imap_port: int = 993
    email_imap_ssl: bool = True
    email_imap_user: str | None = None
    email_imap_password: str | None = field(default=None, repr=False)
    email_imap_folder: str = "INBOX"
    email_imap_ca_file: Path | None = None
    email_search: str | None = None
    email_window_days: int = 7
    email_max_messages: int = 200
    email_sender_whitelist: tuple[str, ...] = ()
    email_sender_blacklist: tuple[str, ...] = ()
    email_url_prop: str = "Article URL"
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    # --- LLM providers, context, Batch API, analyses ---
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_model: str = DEFAULT_ANTHROPIC_MODEL
    anthropic_base_url: str | None = None
    openai_context_tokens: int | None = None
    max_output_tokens: int = 8192
    openai_batch: str = "auto"
    batch_min_items: int = 50
    analyses: tuple[Analysis, ...] = ()
    # the feed list and feed health
    feeds_file: Path | None = None
    feed_state_path: Path = Path("data/feeds.db")
    feed_concurrency: int = 8
    feed_max_errors: int = 10
    feed_stale_days: int = 60
    category_prop: str = "Category"
    # issue 15
    capture_mode: str = "enrich-first"
    dedup_window_days: int = 90
    dedup_path: Path = Path("data/dedup.db")
    cache_max_mb: float = 200.0
    cache_path: Path = Path("data/text_cache.db")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line, the console or an error."""
        site_secrets = [v for auth in self.website_auth.values() for v in auth.secret_values()]
        keys = (self.notion_token, self.openai_api_key, self.anthropic_api_key, self.firecrawl_api_key,
                self.email_imap_password)
        return tuple(s for s in (*keys, *site_secrets) if s)

    @property
    def max_download_bytes(self) -> int:
        return int(self.max_download_mb * 1024 * 1024)

    @property
    def enrich_first(self) -> bool:
        return self.capture_mode == "enrich-first"

    @property
    def feed_list_path(self) -> Path:
        """FEEDS_FILE, else ``feeds.opml`` (read only when it exists, created by ``feeds add``)."""
        return self.feeds_file if self.feeds_file is not None else DEFAULT_FEEDS_FILE


MIGRATION_ENV_FILE = ".env.migration"
def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/knowledge-pipeline``, else ``~/.local/state/knowledge-pipeline``.

    A relative XDG_STATE_HOME is ignored, as the XDG specification says.
    """
    base = (os.environ if environ is None else environ).get("XDG_STATE_HOME", "").strip()
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "knowledge-pipeline"


def merged_environment(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> dict[str, str]:
    """The environment over ``.env.migration`` (beside ``env_file``) over ``env_file``."""
    env = dict(os.environ if environ is None else environ)
    if env_file is None:
        return env
    for path in (Path(env_file).with_name(MIGRATION_ENV_FILE), Path(env_file)):
        if path.is_file():
            for key, value in dotenv_values(path).items():
                if value is not None and key not in env:
                    env[key] = value
    return env


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value if value != "" else None

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in choices:
            raise ConfigError(name, value, "expected one of " + ", ".join(choices))
        return value.lower()

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(name, value, "expected true or false")

    def number(
        self,
        name: str,
        default: float,
        *,
        cast: Callable[[str], float] = float,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        kind = "a whole number" if cast is int else "a number"
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum:g}")
        if maximum is not None:
            bounds.append(f"<= {maximum:g}")
        accepted = f"expected {kind}" + (" " + " and ".join(bounds) if bounds else "")
        try:
            parsed = cast(value)
        except ValueError:
            raise ConfigError(name, value, accepted) from None
        if parsed != parsed or parsed in (float("inf"), float("-inf")):
            raise ConfigError(name, value, accepted)
        if minimum is not None and (parsed < minimum or (exclusive_minimum and parsed == minimum)):
            raise ConfigError(name, value, accepted)
        if maximum is not None and parsed > maximum:
            raise ConfigError(name, value, accepted)
        return parsed

    def url(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if not value.lower().startswith(("http://", "https://")):
            raise ConfigError(name, value, "expected an http:// or https:// URL")
        return value.rstrip("/")


def _prices(reader: _Reader) -> dict[str, dict[str, float]]:
    prices: dict[str, dict[str, float]] = {}
    path = reader.raw("OPENAI_PRICES_FILE")
    if path is not None:
        try:
            prices.update(_validate_prices("OPENAI_PRICES_FILE", path, json.loads(Path(path).read_text())))
        except OSError as exc:
            raise ConfigError("OPENAI_PRICES_FILE", path, f"expected a readable JSON file ({exc.strerror})") from None
        except json.JSONDecodeError:
            raise ConfigError("OPENAI_PRICES_FILE", path, "expected a JSON object of model -> prices") from None
    inline = reader.raw("OPENAI_PRICES")
    if inline is not None:
        try:
            prices.update(_validate_prices("OPENAI_PRICES", inline, json.loads(inline)))
        except json.JSONDecodeError:
            raise ConfigError("OPENAI_PRICES", inline, "expected a JSON object of model -> prices") from None
    return prices


def _validate_prices(name: str, shown: str, data: object) -> dict[str, dict[str, float]]:
    accepted = 'expected {"model": {"input": USD per 1M tokens, "output": ..., "cached_input": ...}}'
    if not isinstance(data, dict):
        raise ConfigError(name, shown, accepted)
    for model, entry in data.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
            raise ConfigError(name, shown, accepted)
        if not all(isinstance(v, (int, float)) and v >= 0 for v in entry.values()):
            raise ConfigError(name, shown, accepted)
    return {m: {k: float(v) for k, v in e.items()} for m, e in data.items()}


def _senders(reader: _Reader, name: str) -> tuple[str, ...]:
    """Sender patterns, lowercased: ``user@example.com``, ``@example.com`` or ``example.com``."""
    entries = tuple(e.strip().lower() for e in (reader.string(name) or "").split(",") if e.strip())
    for entry in entries:
        local, at, domain = entry.rpartition("@")
        if not domain or " " in entry or "." not in domain or (at and "@" in local):
            raise ConfigError(name, reader.raw(name), "expected comma-separated addresses or domains, "
                              "e.g. news@example.com, substack.com")
    return entries


def _email(r: _Reader, rss_url_prop: str) -> dict[str, object]:
    """The EMAIL_* settings; user and password are required once a host is set."""
    host = r.string("EMAIL_IMAP_HOST")
    ssl = r.boolean("EMAIL_IMAP_SSL", True)
    user, password = r.string("EMAIL_IMAP_USER"), r.env.get("EMAIL_IMAP_PASSWORD") or None
    if host:
        if any(c.isspace() or c in "/@" for c in host):
            raise ConfigError("EMAIL_IMAP_HOST", host, "expected a host name or address, e.g. imap.gmail.com")
        for name, value in (("EMAIL_IMAP_USER", user), ("EMAIL_IMAP_PASSWORD", password)):
            if not value:
                raise ConfigError(name, "", "required when EMAIL_IMAP_HOST is set")
    search = r.string("EMAIL_SEARCH")
    if search is not None and not search.isascii():
        raise ConfigError("EMAIL_SEARCH", search, "expected ASCII IMAP SEARCH criteria, e.g. FROM \"substack.com\"")
    ca_file = r.string("EMAIL_IMAP_CA_FILE")
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError("EMAIL_IMAP_CA_FILE", ca_file, "expected a readable PEM file of CA certificates")
    return dict(
        email_imap_host=host,
        email_imap_port=int(r.number("EMAIL_IMAP_PORT", 993 if ssl else 143, cast=int, minimum=1, maximum=65535)),
        email_imap_ssl=ssl,
        email_imap_user=user,
        email_imap_password=password,
        email_imap_folder=r.string("EMAIL_IMAP_FOLDER", "INBOX") or "INBOX",
        email_imap_ca_file=Path(ca_file) if ca_file else None,
        email_search=search,
        email_window_days=int(r.number("EMAIL_WINDOW_DAYS", 7, cast=int, minimum=0)),
        email_max_messages=int(r.number("EMAIL_MAX_MESSAGES", 200, cast=int, minimum=1, maximum=100_000)),
        email_sender_whitelist=_senders(r, "EMAIL_SENDER_WHITELIST"),
        email_sender_blacklist=_senders(r, "EMAIL_SENDER_BLACKLIST"),
        email_url_prop=r.string("EMAIL_URL_PROP", rss_url_prop) or rss_url_prop,
    )


def _feed_state_path(r: _Reader) -> Path:
    """FEED_STATE_PATH, else feeds.db beside the journal: the run's local state files stay together."""
    explicit = r.string("FEED_STATE_PATH")
    return Path(explicit) if explicit else Path(r.string("JOURNAL_PATH", "data/journal.db") or "").parent / "feeds.db"


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read and validate every setting; raise ConfigError on the first bad one."""
    r = _Reader(merged_environment(environ, env_file))
    notion_token = r.string("NOTION_TOKEN")
    notion_db = r.string("NOTION_SOURCES_DB")
    openai_key = r.string("OPENAI_API_KEY")
    backend = r.choice(
        "SOURCES_BACKEND", ("sqlite", "notion"), "notion" if notion_token and notion_db else "sqlite"
    )
    if backend == "notion" and not (notion_token and notion_db):
        missing = "NOTION_TOKEN" if not notion_token else "NOTION_SOURCES_DB"
        raise ConfigError(missing, "", "required when SOURCES_BACKEND=notion")
    anthropic_key = r.string("ANTHROPIC_API_KEY")
    default_enricher = "openai" if openai_key else "anthropic" if anthropic_key else "local"
    enricher = r.choice("ENRICHER", ("local", "openai", "anthropic"), default_enricher)
    if enricher == "openai" and not openai_key:
        raise ConfigError("OPENAI_API_KEY", "", "required when ENRICHER=openai")
    if enricher == "anthropic" and not anthropic_key:
        raise ConfigError("ANTHROPIC_API_KEY", "", "required when ENRICHER=anthropic")
    feeds = tuple(f.strip() for f in (r.string("RSS_FEEDS") or "").split(",") if f.strip())
    pdf_dir = r.string("PDF_DIR")
    metrics_textfile = r.string("METRICS_TEXTFILE")
    feeds_file = r.string("FEEDS_FILE")
    max_cost = r.raw("MAX_COST_USD")
    rss_url_prop = r.string("RSS_URL_PROP", "Article URL") or "Article URL"
    context = r.raw("OPENAI_CONTEXT_TOKENS")
    return Settings(
        sources_backend=backend,
        sources_db_path=Path(r.string("SOURCES_DB_PATH", "data/sources.db")),
        journal_path=Path(r.string("JOURNAL_PATH", "data/journal.db")),
        enricher=enricher,
        rss_feeds=feeds,
        rss_window_days=int(r.number("RSS_WINDOW_DAYS", 90, cast=int, minimum=0)),
        feed_max_entries=int(r.number("FEED_MAX_ENTRIES", 200, cast=int, minimum=1, maximum=1_000_000)),
        pdf_dir=Path(pdf_dir) if pdf_dir else None,
        api_timeout=r.number("API_TIMEOUT", 60.0, minimum=0, exclusive_minimum=True, maximum=3600),
        retry_attempts=int(r.number("RETRY_ATTEMPTS", 3, cast=int, minimum=0, maximum=20)),
        log_dir=Path(r.string("LOG_DIR", "logs")),
        log_level=r.choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper(),
        log_max_bytes=int(r.number("LOG_MAX_BYTES", 10 * 1024 * 1024, cast=int, minimum=4096)),
        log_backup_count=int(r.number("LOG_BACKUP_COUNT", 5, cast=int, minimum=1, maximum=1000)),
        use_enhanced=r.boolean("USE_ENHANCED", True),
        enable_parallel=r.boolean("ENABLE_PARALLEL", False),
        parallel_max_workers=int(r.number("PARALLEL_MAX_WORKERS", 5, cast=int, minimum=1, maximum=64)),
        parallel_rate_limit=r.number("PARALLEL_RATE_LIMIT", 0.1, minimum=0, maximum=60),
        notion_max_rps=r.number("NOTION_MAX_RPS", 3.0, minimum=0, exclusive_minimum=True, maximum=1000),
        shutdown_grace_seconds=r.number("SHUTDOWN_GRACE_SECONDS", 30.0, minimum=0, maximum=3600),
        notion_token=notion_token,
        notion_sources_db=notion_db,
        notion_base_url=r.url("NOTION_BASE_URL", DEFAULT_NOTION_BASE_URL) or DEFAULT_NOTION_BASE_URL,
        notion_parent_page=r.string("NOTION_PARENT_PAGE"),
        rss_url_prop=rss_url_prop,
        created_prop=r.string("CREATED_PROP", "Created Date") or "Created Date",
        pdf_url_prop=r.string("PDF_URL_PROP", "Drive URL") or "Drive URL",
        notion_max_raw_chars=int(r.number("NOTION_MAX_RAW_CHARS", 100_000, cast=int, minimum=0)),
        openai_api_key=openai_key,
        openai_base_url=r.url("OPENAI_BASE_URL"),
        openai_model=r.string("OPENAI_MODEL", DEFAULT_OPENAI_MODEL) or DEFAULT_OPENAI_MODEL,
        max_input_tokens=int(r.number("MAX_INPUT_TOKENS", 60_000, cast=int, minimum=500)),
        max_chunks=int(r.number("MAX_CHUNKS", 12, cast=int, minimum=1, maximum=1000)),
        max_cost_usd=None if max_cost is None else r.number("MAX_COST_USD", 0.0, minimum=0),
        openai_prices=_prices(r),
        max_download_mb=r.number("MAX_DOWNLOAD_MB", 10.0, minimum=0, exclusive_minimum=True, maximum=10_000),
        max_pdf_pages=int(r.number("MAX_PDF_PAGES", 500, cast=int, minimum=1)),
        allow_private_urls=r.boolean("ALLOW_PRIVATE_URLS", False),
        alert_failure_rate=r.number("ALERT_FAILURE_RATE", 0.5, minimum=0, maximum=1),
        alert_webhook_url=r.url("ALERT_WEBHOOK_URL"),
        metrics_textfile=Path(metrics_textfile) if metrics_textfile else None,
        taxonomy=_taxonomy(r),
        digest_webhook_url=r.url("DIGEST_WEBHOOK_URL"),
        item_timeout=r.number("ITEM_TIMEOUT", 300.0, minimum=0, exclusive_minimum=True, maximum=86_400),
        circuit_breaker_failures=int(r.number("CIRCUIT_BREAKER_FAILURES", 5, cast=int, minimum=1, maximum=1000)),
        anthropic_api_key=anthropic_key,
        anthropic_model=r.string("ANTHROPIC_MODEL", DEFAULT_ANTHROPIC_MODEL) or DEFAULT_ANTHROPIC_MODEL,
        anthropic_base_url=r.url("ANTHROPIC_BASE_URL"),
        openai_context_tokens=None if context is None else int(
            r.number("OPENAI_CONTEXT_TOKENS", 0, cast=int, minimum=512, maximum=100_000_000)),
        max_output_tokens=int(r.number("MAX_OUTPUT_TOKENS", 8192, cast=int, minimum=256, maximum=1_000_000)),
        openai_batch=r.choice("OPENAI_BATCH", ("auto", "always", "never"), "auto"),
        batch_min_items=int(r.number("BATCH_MIN_ITEMS", 50, cast=int, minimum=1)),
        analyses=_analyses(r),
        **_source_settings(r),
        **_email(r, rss_url_prop),  # type: ignore[arg-type]
        state_dir=default_state_dir({**os.environ, **r.env}),
        feeds_file=Path(feeds_file).expanduser() if feeds_file else None,
        feed_state_path=_feed_state_path(r),
        feed_concurrency=int(r.number("FEED_CONCURRENCY", 8, cast=int, minimum=1, maximum=64)),
        feed_max_errors=int(r.number("FEED_MAX_ERRORS", 10, cast=int, minimum=1, maximum=1000)),
        feed_stale_days=int(r.number("FEED_STALE_DAYS", 60, cast=int, minimum=1, maximum=3650)),
        category_prop=r.string("CATEGORY_PROP", "Category") or "Category",
        **_run_state(r),
    )


def _run_state(r: _Reader) -> dict[str, object]:
    """Issue 15: the capture mode, and the dedup state and text cache kept beside the journal."""
    journal = Path(r.string("JOURNAL_PATH", "data/journal.db") or "data/journal.db")
    dedup, cache = r.string("DEDUP_PATH"), r.string("CACHE_PATH")
    return dict(
        capture_mode=r.choice("CAPTURE_MODE", ("enrich-first", "inbox-first"), "enrich-first"),
        dedup_window_days=int(r.number("DEDUP_WINDOW_DAYS", 90, cast=int, minimum=0, maximum=100_000)),
        dedup_path=Path(dedup) if dedup else journal.with_name("dedup.db"),
        cache_max_mb=r.number("CACHE_MAX_MB", 200.0, minimum=0, maximum=1_000_000),
        cache_path=Path(cache) if cache else journal.with_name("text_cache.db"),
    )


def _taxonomy(reader: _Reader) -> Taxonomy | None:
    path = reader.raw("TAXONOMY_FILE")
    if path is None:
        return None
    try:
        return load_taxonomy(Path(path))
    except TaxonomyFileError as exc:
        raise ConfigError("TAXONOMY_FILE", path, f"expected a YAML or JSON taxonomy file: {exc}") from None


def _analyses(reader: _Reader) -> tuple[Analysis, ...]:
    """ANALYSES (none / original / names), with the analyses ANALYSES_FILE defines."""
    path = reader.raw("ANALYSES_FILE")
    defined: tuple[Analysis, ...] = ()
    if path is not None:
        try:
            defined = load_file(Path(path))
        except ValueError as exc:
            raise ConfigError("ANALYSES_FILE", path, str(exc)) from None
    spec = reader.raw("ANALYSES")
    try:
        return select(spec, defined)
    except ValueError as exc:
        raise ConfigError("ANALYSES", spec, str(exc)) from None


# -- sources beyond feeds and the PDF folder ------------------------------------------


@dataclass(frozen=True)
class SiteAuth:
    """Headers and cookies sent to one domain (and its subdomains) only; never logged."""

    domain: str
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()

    def matches(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host == self.domain or host.endswith("." + self.domain)

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies)
        return headers

    def secret_values(self) -> list[str]:
        return [value for _, value in self.headers + self.cookies if len(value) >= 4]


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_DRIVE_FOLDER_URL = re.compile(r"/folders/([A-Za-z0-9_-]+)")


def _source_settings(r: _Reader) -> dict:
    folder = r.string("DRIVE_FOLDER_ID")
    folder_id = _drive_folder_id(folder) if folder else None
    credentials = r.string("GOOGLE_APP_CREDENTIALS")
    if folder and not credentials:
        raise ConfigError("GOOGLE_APP_CREDENTIALS", "", "required when DRIVE_FOLDER_ID is set "
                          "(the path of the service account's JSON key file)")
    if credentials:
        _check_service_account_key(credentials)
    firecrawl = r.string("FIRECRAWL_API_KEY")
    sites = tuple(s.strip() for s in (r.string("WEBSITE_SOURCES") or "").split(",") if s.strip())
    for site in sites:
        if not site.lower().startswith(("http://", "https://")):
            raise ConfigError("WEBSITE_SOURCES", site, "expected http:// or https:// URLs of site sections")
    auth_file = r.string("WEBSITE_AUTH_CONFIGS")
    return {
        "google_app_credentials": Path(credentials).expanduser() if credentials else None,
        "drive_folder_id": folder_id,
        "drive_recursive": r.boolean("DRIVE_RECURSIVE", False),
        "drive_export_docs": r.boolean("DRIVE_EXPORT_DOCS", False),
        "google_drive_base_url": r.url("GOOGLE_DRIVE_BASE_URL", DEFAULT_DRIVE_BASE_URL) or DEFAULT_DRIVE_BASE_URL,
        "website_sources": sites,
        "website_window_days": int(r.number("WEBSITE_WINDOW_DAYS", 30, cast=int, minimum=0)),
        "website_max_articles": int(r.number("WEBSITE_MAX_ARTICLES", 50, cast=int, minimum=1, maximum=10_000)),
        "website_auth": _site_auth(auth_file) if auth_file else {},
        "firecrawl_api_key": firecrawl,
        "firecrawl_base_url": r.url("FIRECRAWL_BASE_URL", DEFAULT_FIRECRAWL_BASE_URL) or DEFAULT_FIRECRAWL_BASE_URL,
    }


def _drive_folder_id(value: str) -> str:
    """A folder id, also from a pasted folder URL (``.../drive/folders/<id>?usp=sharing``)."""
    match = _DRIVE_FOLDER_URL.search(value)
    folder = match.group(1) if match else value
    if not re.fullmatch(r"[A-Za-z0-9_-]{10,200}", folder):
        raise ConfigError("DRIVE_FOLDER_ID", value, "expected a Drive folder id or the folder's URL")
    return folder


def _check_service_account_key(path: str) -> None:
    """One line with the fix for the key-file mistakes users make (never shows the key)."""
    fix = ("download a JSON key of the service account (Google Cloud console: IAM & Admin > "
           "Service accounts > Keys > Add key > JSON)")
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("GOOGLE_APP_CREDENTIALS", path, f"no such file; {fix}") from None
    except OSError as exc:
        raise ConfigError("GOOGLE_APP_CREDENTIALS", path, f"cannot read it ({exc.strerror}); {fix}") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError("GOOGLE_APP_CREDENTIALS", path, f"not a JSON key file; {fix}") from None
    if not isinstance(data, dict):
        raise ConfigError("GOOGLE_APP_CREDENTIALS", path, f"not a JSON key file; {fix}")
    kind = data.get("type") or ("OAuth client" if {"installed", "web"} & set(data) else "unknown")
    if kind != "service_account":
        raise ConfigError("GOOGLE_APP_CREDENTIALS", path,
                          f"a {kind} credential, not a service-account key; {fix}")
    missing = [key for key in ("client_email", "private_key", "token_uri") if not data.get(key)]
    if missing:
        raise ConfigError("GOOGLE_APP_CREDENTIALS", path,
                          f"the service-account key lacks {', '.join(missing)}; {fix}")


def _site_auth(path: str) -> dict[str, SiteAuth]:
    """``{"example.com": {"headers": {...}, "cookies": {...}}, ...}`` (the original's auth configs file)."""
    accepted = 'expected a JSON file {"domain": {"headers": {"Name": "value"}, "cookies": {"name": "value"}}}'
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("WEBSITE_AUTH_CONFIGS", path, "no such file; " + accepted) from None
    except OSError as exc:
        raise ConfigError("WEBSITE_AUTH_CONFIGS", path, f"cannot read it ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError("WEBSITE_AUTH_CONFIGS", path, "not valid JSON; " + accepted) from None
    if not isinstance(data, dict):
        raise ConfigError("WEBSITE_AUTH_CONFIGS", path, accepted)
    sites: dict[str, SiteAuth] = {}
    for raw_domain, entry in data.items():
        domain = str(raw_domain).strip().lower().rstrip(".")
        domain = domain[4:] if domain.startswith("www.") else domain
        if not _DOMAIN.match(domain) or not isinstance(entry, dict) or set(entry) - {"headers", "cookies"}:
            raise ConfigError("WEBSITE_AUTH_CONFIGS", path, f"entry {str(raw_domain)[:80]!r}: {accepted}")
        pairs = {}
        for part in ("headers", "cookies"):
            values = entry.get(part) or {}
            if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and _HEADER_NAME.match(k) and not re.search(r"[\r\n\x00]", v)
                for k, v in values.items()
            ):
                raise ConfigError("WEBSITE_AUTH_CONFIGS", path,
                                  f"entry {domain!r}: {part} must map names to one-line string values")
            pairs[part] = tuple((k, v) for k, v in values.items())
        sites[domain] = SiteAuth(domain, pairs["headers"], pairs["cookies"])
    return sites
