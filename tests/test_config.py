from pathlib import Path

import pytest

from knowledge_pipeline.config import VARIABLES, load_settings
from knowledge_pipeline.errors import ConfigError

from .conftest import ROOT, clean_env, run_script


def test_defaults_are_the_embedded_pipeline():
    settings = load_settings({}, env_file=None)
    assert settings.sources_backend == "sqlite"
    assert settings.enricher == "local"
    assert settings.parallel_max_workers == 5
    assert settings.parallel_rate_limit == 0.1
    assert settings.rss_window_days == 90
    assert settings.api_timeout == 60
    assert settings.retry_attempts == 3


def test_backends_default_to_the_configured_accounts():
    settings = load_settings(
        {"NOTION_TOKEN": "secret_x", "NOTION_SOURCES_DB": "db", "OPENAI_API_KEY": "sk-x"}, env_file=None
    )
    assert (settings.sources_backend, settings.enricher) == ("notion", "openai")
    assert "secret_x" not in repr(settings) and "sk-x" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("RSS_WINDOW_DAYS", "abc", "whole number"),
        ("RSS_WINDOW_DAYS", "-1", ">= 0"),
        ("API_TIMEOUT", "-1", "> 0"),
        ("API_TIMEOUT", "nan", "number"),
        ("SOURCES_BACKEND", "postgres", "sqlite, notion"),
        ("ENRICHER", "gpt", "local, openai"),
        ("PARALLEL_MAX_WORKERS", "0", ">= 1"),
        ("PARALLEL_MAX_WORKERS", "65", "<= 64"),
        ("PARALLEL_RATE_LIMIT", "-0.1", ">= 0"),
        ("ENABLE_PARALLEL", "maybe", "true or false"),
        ("LOG_LEVEL", "LOUD", "debug, info, warning, error"),
        ("RETRY_ATTEMPTS", "2.5", "whole number"),
        ("NOTION_MAX_RPS", "0", "> 0"),
        ("ALERT_FAILURE_RATE", "1.5", "<= 1"),
        ("MAX_DOWNLOAD_MB", "0", "> 0"),
        ("OPENAI_BASE_URL", "localhost:8080", "http"),
        ("OPENAI_PRICES", "{not json", "JSON"),
    ],
)
def test_bad_values_name_variable_value_and_what_is_accepted(name, value, accepted):
    with pytest.raises(ConfigError) as info:
        load_settings({name: value}, env_file=None)
    message = str(info.value)
    assert name in message and repr(value) in message and accepted in message
    assert "\n" not in message


def test_missing_credentials_for_an_explicit_backend():
    with pytest.raises(ConfigError, match="NOTION_TOKEN"):
        load_settings({"SOURCES_BACKEND": "notion"}, env_file=None)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_settings({"ENRICHER": "openai"}, env_file=None)


def test_dotenv_is_read_but_exported_variables_win(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("PARALLEL_MAX_WORKERS=7\nRSS_WINDOW_DAYS=10\n")
    settings = load_settings({"RSS_WINDOW_DAYS": "3"}, env_file=env_file)
    assert settings.parallel_max_workers == 7
    assert settings.rss_window_days == 3


def test_log_level_is_case_insensitive():
    assert load_settings({"LOG_LEVEL": "debug"}, env_file=None).log_level == "DEBUG"


def test_every_variable_is_in_the_readme_table_as_config_describes_it():
    readme = (ROOT / "README.md").read_text()
    stale = [name for name, (default, text) in VARIABLES.items() if f"| `{name}` | {default} | {text} |" not in readme]
    assert not stale, f"README configuration table lacks, or describes otherwise, {stale}"


@pytest.mark.parametrize("script", ["enrich_rss.py", "enrich.py", "enrich_rss_enhanced.py", "enrich_enhanced.py"])
def test_a_bad_value_stops_the_script_before_any_work(tmp_path: Path, script: str):
    env = clean_env(RSS_WINDOW_DAYS="abc", LOG_DIR=str(tmp_path / "logs"))
    done = run_script([script], tmp_path, env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "RSS_WINDOW_DAYS" in lines[0] and "'abc'" in lines[0]
    assert list(tmp_path.iterdir()) == [], "a configuration error must create nothing"


BAD_VALUES = {
    "SOURCES_BACKEND": "mysql", "ENRICHER": "claude", "RSS_WINDOW_DAYS": "1.5", "API_TIMEOUT": "0",
    "RETRY_ATTEMPTS": "-1", "LOG_LEVEL": "TRACE", "LOG_MAX_BYTES": "10", "LOG_BACKUP_COUNT": "0",
    "USE_ENHANCED": "2", "ENABLE_PARALLEL": "si", "PARALLEL_MAX_WORKERS": "five", "PARALLEL_RATE_LIMIT": "fast",
    "NOTION_MAX_RPS": "-3", "SHUTDOWN_GRACE_SECONDS": "-5", "ITEM_TIMEOUT": "0", "CIRCUIT_BREAKER_FAILURES": "0", "NOTION_BASE_URL": "ftp://notion",
    "NOTION_MAX_RAW_CHARS": "-1", "OPENAI_BASE_URL": "localhost", "MAX_INPUT_TOKENS": "10", "MAX_CHUNKS": "0",
    "MAX_COST_USD": "-1", "OPENAI_PRICES_FILE": "/nonexistent/prices.json", "OPENAI_PRICES": "[1, 2]",
    "MAX_DOWNLOAD_MB": "lots", "MAX_PDF_PAGES": "0", "ALLOW_PRIVATE_URLS": "perhaps", "ALERT_FAILURE_RATE": "-0.1",
    "ALERT_WEBHOOK_URL": "hooks.slack.com/x", "TAXONOMY_FILE": "/nonexistent/taxonomy.yaml",
    "DIGEST_WEBHOOK_URL": "hooks.slack.com/x",
    # sources beyond feeds and the PDF folder
    "GOOGLE_APP_CREDENTIALS": "/nonexistent/key.json", "DRIVE_FOLDER_ID": "not a folder!", "DRIVE_RECURSIVE": "deep",
    "DRIVE_EXPORT_DOCS": "maybe", "GOOGLE_DRIVE_BASE_URL": "googleapis.com", "WEBSITE_SOURCES": "example.com/blog",
    "WEBSITE_WINDOW_DAYS": "-1", "WEBSITE_MAX_ARTICLES": "0", "WEBSITE_AUTH_CONFIGS": "/nonexistent/auth.json",
    "FIRECRAWL_BASE_URL": "firecrawl",
    "EMAIL_IMAP_HOST": "imap.example.com/INBOX", "EMAIL_IMAP_PORT": "99999", "EMAIL_IMAP_SSL": "tls",
    "EMAIL_IMAP_CA_FILE": "/nonexistent/ca.pem", "EMAIL_SEARCH": "SUBJECT \"caf\u00e9\"", "EMAIL_WINDOW_DAYS": "-1",
    "EMAIL_SENDER_WHITELIST": "news@", "EMAIL_SENDER_BLACKLIST": "a@b@c.com", "EMAIL_MAX_MESSAGES": "0",
    # issue 12 (runs, capture and files)
    "FEED_MAX_ENTRIES": "0",
    "ANTHROPIC_BASE_URL": "api.anthropic.com", "OPENAI_CONTEXT_TOKENS": "100", "MAX_OUTPUT_TOKENS": "10",
    "OPENAI_BATCH": "sometimes", "BATCH_MIN_ITEMS": "0", "ANALYSES": "swot,poetry",
    "ANALYSES_FILE": "/nonexistent/analyses.yaml",
    # the feed list and feed health
    "FEED_CONCURRENCY": "0", "FEED_MAX_ERRORS": "none", "FEED_STALE_DAYS": "-1",
    # issue 15
    "CAPTURE_MODE": "both", "DEDUP_WINDOW_DAYS": "-1", "CACHE_MAX_MB": "big",
}
FREE_TEXT = {"SOURCES_DB_PATH", "JOURNAL_PATH", "RSS_FEEDS", "PDF_DIR", "LOG_DIR", "NOTION_TOKEN", "NOTION_SOURCES_DB",
             "NOTION_PARENT_PAGE", "RSS_URL_PROP", "CREATED_PROP", "PDF_URL_PROP", "OPENAI_API_KEY", "OPENAI_MODEL",
             "METRICS_TEXTFILE", "FIRECRAWL_API_KEY", "EMAIL_IMAP_USER", "EMAIL_IMAP_PASSWORD", "EMAIL_IMAP_FOLDER",
             "EMAIL_URL_PROP", "XDG_STATE_HOME", "ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", "FEEDS_FILE", "FEED_STATE_PATH", "CATEGORY_PROP", "DEDUP_PATH", "CACHE_PATH"}


def test_every_variable_is_either_validated_here_or_free_text():
    assert set(BAD_VALUES) | FREE_TEXT == set(VARIABLES)


@pytest.mark.parametrize(("name", "value"), sorted(BAD_VALUES.items()))
def test_every_validated_variable_rejects_a_wrong_type_or_range_in_one_line(name, value):
    with pytest.raises(ConfigError) as info:
        load_settings({name: value}, env_file=None)
    assert str(info.value).startswith(f"{name}=") and "\n" not in str(info.value)


def test_the_feed_state_lives_beside_the_journal_unless_told_otherwise(tmp_path):
    assert load_settings({}, env_file=None).feed_state_path == Path("data/feeds.db")
    journal = tmp_path / "state" / "journal.db"
    assert load_settings({"JOURNAL_PATH": str(journal)}, env_file=None).feed_state_path == journal.parent / "feeds.db"
    assert load_settings({"JOURNAL_PATH": str(journal), "FEED_STATE_PATH": "x/f.db"},
                         env_file=None).feed_state_path == Path("x/f.db")
