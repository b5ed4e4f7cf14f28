from pathlib import Path

import feedparser

from knowledge_pipeline.migration.smoke import smoke_environment, smoke_feed


def test_smoke_feed_has_full_article_text_in_every_entry() -> None:
    feed = feedparser.parse(smoke_feed(3))
    assert not feed.bozo
    assert len(feed.entries) == 3
    assert len({e.link for e in feed.entries}) == 3
    for entry in feed.entries:
        assert len(entry.content[0].value) > 800


def test_smoke_environment_points_everything_at_the_temp_dir_and_blanks_credentials(tmp_path: Path) -> None:
    env = smoke_environment({"NOTION_TOKEN": "secret_x", "OPENAI_API_KEY": "sk-x", "PATH": "/bin"}, tmp_path)
    assert env["NOTION_TOKEN"] == env["OPENAI_API_KEY"] == ""
    assert env["ENRICHER"] == "local" and env["SOURCES_BACKEND"] == "sqlite"
    for name in ("SOURCES_DB_PATH", "JOURNAL_PATH", "LOG_DIR", "RSS_FEEDS"):
        assert Path(env[name]).parent == tmp_path
    assert env["PATH"] == "/bin"
