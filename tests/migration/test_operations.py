from pathlib import Path

from knowledge_pipeline.migration import Check, Project, operations
from knowledge_pipeline.migration.checks import CheckFailed
from knowledge_pipeline.telemetry import Telemetry


def _fail() -> str:
    raise CheckFailed("store unreachable")


def test_test_runs_the_injected_checks_and_records_the_outcome(tmp_path: Path) -> None:
    seen: list[tuple[str, dict]] = []
    telemetry = Telemetry("test")
    telemetry.add_observer(lambda kind, data: seen.append((kind, data)))

    report = operations.test(
        Project(tmp_path, {}), [Check("good", lambda: "ok"), Check("bad", _fail)], telemetry=telemetry
    )

    assert not report.ok
    assert [(r.name, r.ok, r.detail) for r in report.results] == [("good", True, "ok"), ("bad", False, "store unreachable")]
    [(kind, data)] = seen
    assert kind == "migration_test" and data["ok"] is False


def test_default_rollback_target_skips_backups_taken_before_a_rollback(tmp_path: Path) -> None:
    project = Project.open(tmp_path, {"MIGRATE_NOW": "2024-01-15T10:30:00"})
    (tmp_path / "enrich.py").write_text("v1\n")
    first = operations.create_backup(project, reason="migrate")
    operations.create_backup(project, reason="before rollback to x")

    assert operations.default_rollback_target(operations.list_backups(project)) == first.path


def _sqlite_file(path: Path, value: str) -> None:
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")
        db.execute("DELETE FROM t")
        db.execute("INSERT INTO t VALUES (?)", (value,))
    db.close()


def _sqlite_value(path: Path) -> str:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT v FROM t").fetchone()[0]
    finally:
        db.close()


def test_with_data_keeps_the_feed_list_and_every_state_a_run_needs_and_rollback_restores_them(
        tmp_path: Path) -> None:
    """--with-data is the user's data, not only the store: the feed list they built, each feed's state, the
    open Batch API batches (already paid for), the duplicate index; the text cache is only a cache."""
    project = Project.open(tmp_path, {"MIGRATE_NOW": "2024-01-15T10:30:00"})
    (tmp_path / "requirements.txt").write_text("")
    data = tmp_path / "data"
    files = ["sources.db", "journal.db", "journal.batches.db", "dedup.db", "feeds.db", "text_cache.db"]
    for name in files:
        _sqlite_file(data / name, "before")
    (tmp_path / "feeds.opml").write_text("<opml version='2.0'><body><outline xmlUrl='https://a.example/rss'/>"
                                         "</body></opml>")

    result = operations.migrate(project, with_data=True, requirements=tmp_path / "requirements.txt")

    assert result.ok, [r for r in result.preflight if not r.ok]
    roles = {entry.role: entry.origin for entry in result.backup.manifest.data}
    assert roles == {"sources_db": "data/sources.db", "journal": "data/journal.db",
                     "batches": "data/journal.batches.db", "dedup": "data/dedup.db", "feed_state": "data/feeds.db",
                     "feed_list": "feeds.opml"}
    for name in files:
        _sqlite_file(data / name, "after")
    (tmp_path / "feeds.opml").write_text("<opml version='2.0'><body/></opml>")

    rolled = operations.rollback(project, with_data=True)

    assert rolled.ok, rolled.refused or rolled.error
    assert {name: _sqlite_value(data / name) for name in files} == {
        **{name: "before" for name in files}, "text_cache.db": "after"}
    assert "a.example" in (tmp_path / "feeds.opml").read_text()


def test_status_shows_the_second_wave_flags_a_rollout_depends_on(tmp_path: Path) -> None:
    project = Project.open(tmp_path, {"CAPTURE_MODE": "inbox-first", "ANTHROPIC_API_KEY": "sk-ant-secret-0123456789"})
    flags = {flag.name: (flag.shown, flag.source) for flag in operations.status(project).flags}
    assert flags["CAPTURE_MODE"] == ("inbox-first", "environment")
    assert flags["OPENAI_BATCH"] == ("auto", "default")
    assert flags["FEEDS_FILE"][1] == "default"
    assert flags["ANTHROPIC_API_KEY"] == ("set", "environment"), "a key shows only whether it is set"


def test_rollback_with_data_clears_the_seen_state_made_after_the_backup(tmp_path: Path) -> None:
    """A duplicate index or feed state written after the backup would keep the items the rollback removed from
    being captured again (for DEDUP_WINDOW_DAYS, or until the feed changes): it goes, into the pre-rollback backup."""
    project = Project.open(tmp_path, {"MIGRATE_NOW": "2024-01-15T10:30:00"})
    (tmp_path / "requirements.txt").write_text("")
    data = tmp_path / "data"
    for name in ("sources.db", "journal.db"):
        _sqlite_file(data / name, "before")
    assert operations.migrate(project, with_data=True, requirements=tmp_path / "requirements.txt").ok
    for name in ("sources.db", "dedup.db", "feeds.db"):
        _sqlite_file(data / name, "after")

    rolled = operations.rollback(project, with_data=True)

    assert rolled.ok, rolled.refused or rolled.error
    assert _sqlite_value(data / "sources.db") == "before"
    assert not (data / "dedup.db").exists() and not (data / "feeds.db").exists()
    kept = {p.name: _sqlite_value(p) for p in rolled.pre_rollback.rglob("*.db")}
    assert kept["dedup.db"] == kept["feed_state.db"] == "after", "the pre-rollback backup holds what was cleared"
