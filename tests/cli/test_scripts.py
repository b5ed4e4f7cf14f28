"""What the enrich scripts print: the start line and the one-line summary people (and cron mail) read."""

from __future__ import annotations

from pathlib import Path

from tests.batches.support import env as batch_env
from tests.batches.support import seed
from tests.fakes.openai_server import start_fake_openai


def test_enrich_first_lines_do_not_speak_of_an_inbox_the_items_never_entered(tmp_path: Path, demo_env: dict,
                                                                           enrich_in_process) -> None:
    done = enrich_in_process(["enrich_rss_enhanced.py"], tmp_path, demo_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = next(line for line in lines if "enrich_rss_enhanced.py: " in line)
    assert "0 items waiting, plus what capture finds (sequential, sqlite store, local enricher, enrich-first)" in start
    assert "captured 13 new, enriched 13, skipped 0, failed 0 of 13 items (sequential" in lines[-1]
    assert "Inbox" not in start + lines[-1]


def test_items_sent_to_the_batch_api_are_counted_in_the_summary_line(tmp_path: Path, enrich_in_process) -> None:
    seed(tmp_path / "data" / "sources.db", 3)
    with start_fake_openai() as fake:
        environment = batch_env(tmp_path, fake, OPENAI_BATCH="always", CAPTURE_MODE="inbox-first")
        done = enrich_in_process(["enrich_rss_enhanced.py"], tmp_path, environment)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("enrich_rss_enhanced.py: 3 items to enrich (sequential" in line for line in lines)
    assert "captured 0 new, enriched 0, 3 in a Batch API batch, skipped 0, failed 0 of 3 items" in lines[-1]


def test_help_says_what_the_scripts_really_do(capsys) -> None:
    from knowledge_pipeline.cli.scripts import build_parser

    build_parser("enrich_rss.py", "feeds", enhanced=False).print_help()
    shown = " ".join(capsys.readouterr().out.split())
    assert "the feed list FEEDS_FILE" in shown, "a feed list alone turns feed capture on"
    assert "title for --add (default: the page's own title)" in shown, "the URL is only a stand-in (issue 13)"


def test_list_help_offers_every_status(capsys) -> None:
    import pytest

    from knowledge_pipeline.__main__ import main

    with pytest.raises(SystemExit):
        main(["list", "--help"])
    assert "Inbox, Enriched, Failed, Duplicate" in " ".join(capsys.readouterr().out.split())
