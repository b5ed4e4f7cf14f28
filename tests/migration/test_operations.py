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
