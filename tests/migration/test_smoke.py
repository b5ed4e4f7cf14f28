from pathlib import Path

import feedparser

from knowledge_pipeline.capture.feeds import FULL_TEXT_MIN_CHARS
from knowledge_pipeline.dedup import Fingerprint
from knowledge_pipeline.extract.html import html_to_text
from knowledge_pipeline.migration.smoke import smoke_environment, smoke_feed


def test_smoke_feed_has_full_article_text_in_every_entry() -> None:
    feed = feedparser.parse(smoke_feed(3))
    assert not feed.bozo
    assert len(feed.entries) == 3
    assert len({e.link for e in feed.entries}) == 3
    for entry in feed.entries:
        assert len(html_to_text(entry.content[0].value)) > FULL_TEXT_MIN_CHARS, "taken as the full article"
    texts = {Fingerprint.of(html_to_text(entry.content[0].value)).exact for entry in feed.entries}
    assert len(texts) == 3, "three different articles: none is skipped as a duplicate of another"


def test_smoke_environment_points_everything_at_the_temp_dir_and_blanks_credentials(tmp_path: Path) -> None:
    env = smoke_environment({"NOTION_TOKEN": "secret_x", "OPENAI_API_KEY": "sk-x", "PATH": "/bin"}, tmp_path)
    assert env["NOTION_TOKEN"] == env["OPENAI_API_KEY"] == ""
    assert env["ENRICHER"] == "local" and env["SOURCES_BACKEND"] == "sqlite"
    for name in ("SOURCES_DB_PATH", "JOURNAL_PATH", "LOG_DIR", "RSS_FEEDS"):
        assert Path(env[name]).parent == tmp_path
    assert env["PATH"] == "/bin"
