"""The commands of ``migrate_to_parallel.py``: migrate, test, phase, rollback, status, list.

Each returns a result for the CLI to print and records its steps as events
(``migration_preflight``, ``migration_backup``, ``migration_phase``,
``migration_rollback``, ``migration_test``). Event fields carry paths, names,
flags and check outcomes, never a setting's secret value.
"""

from __future__ import annotations

import fcntl
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ..config import Settings
from ..errors import ConfigError
from ..logging_setup import Redactor
from ..run_locks import beside, run_lock_paths
from ..telemetry import Telemetry
from . import checks as c
from .atomic import atomic_write
from .backup import PIPELINE_FILES, BackupInfo, BackupResult, DataSource, copy_sqlite, create_backup, list_backups
from .envfile import Change, read_env_file, update_env_file
from .environment import DEFAULT, effective_environment, is_secret, origin
from .manifest import SAFE_MODE_BITS, FileEntry, ManifestError, safe_relative, sha256_bytes, verify_backup
from .phases import HEADER, PHASES, ROLLBACK_FLAGS, describe_phase
from .project import Project
from .runlog import RunSummary, last_summary
from .smoke import smoke_checks

LOGGER = "migrate_to_parallel"
STATUS_VARIABLES: tuple[str, ...] = (
    "USE_ENHANCED",
    "ENABLE_PARALLEL",
    "PARALLEL_MAX_WORKERS",
    "PARALLEL_RATE_LIMIT",
    "LOG_DIR",
    "LOG_LEVEL",
    "SOURCES_BACKEND",
    "SOURCES_DB_PATH",
    "JOURNAL_PATH",
    "CAPTURE_MODE",
    "ENRICHER",
    "OPENAI_MODEL",
    "OPENAI_BATCH",
    "RSS_FEEDS",
    "FEEDS_FILE",
    "PDF_DIR",
    "NOTION_SOURCES_DB",
    "NOTION_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
)


def _telemetry(telemetry: Telemetry | None) -> Telemetry:
    return telemetry or Telemetry(LOGGER)


def _secrets(project: Project) -> tuple[str, ...]:
    env = effective_environment(project)
    return tuple(v for k, v in env.items() if is_secret(k) and v and len(v) >= 4)


def log_dir(project: Project) -> Path:
    """LOG_DIR under the rollout precedence; usable even when another setting is invalid."""
    try:
        return project.path(project.settings().log_dir)
    except ConfigError:
        return project.path(effective_environment(project).get("LOG_DIR", "").strip() or "logs")


def _check_fields(results: Sequence[c.CheckResult]) -> list[dict[str, Any]]:
    return [{"check": r.name, "ok": r.ok, "detail": r.detail} for r in results]


# --- migrate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrateResult:
    preflight: tuple[c.CheckResult, ...]
    backup: BackupResult | None = None
    missing_data: tuple[str, ...] = ()
    phase_changes: tuple[Change, ...] = ()
    phase_kept: bool = False

    @property
    def ok(self) -> bool:
        return self.backup is not None

    @property
    def config_failed(self) -> bool:
        return any(r.name == "configuration" and r.ok is False for r in self.preflight)


def preflight_checks(project: Project, requirements: Path | None = None) -> list[c.Check]:
    return [
        c.python_version(),
        c.dependencies(requirements or project.root / "requirements.txt"),
        c.configuration(project.settings),
        c.writable_dir("LOG_DIR", log_dir(project)),
        c.writable_dir("backups/", project.backups_dir),
    ]


def data_sources(project: Project, settings: Settings) -> tuple[DataSource, ...]:
    """What ``--with-data`` keeps: the store, the journal (items captured but not yet stored), the open Batch
    API batches (paid for), the duplicate index, each feed's state and the feed list. Not the text cache:
    it only saves fetches and may be large."""
    from ..batches import state_path

    journal = project.path(settings.journal_path)
    return (
        DataSource("sources_db", project.path(settings.sources_db_path)),
        DataSource("journal", journal),
        DataSource("batches", state_path(journal)),
        DataSource("dedup", project.path(settings.dedup_path)),
        DataSource("feed_state", project.path(settings.feed_state_path)),
        DataSource("feed_list", project.path(settings.feed_list_path), sqlite=False),
    )


# What says "already seen" (capture skips those links, a feed answers 304): made after the backup, it
# would outlive the rollback and keep the items the rollback removed from ever being captured again.
SEEN_STATE = ("dedup", "feed_state")


def _clear_seen_state(places: dict[str, DataSource], backed_up: set[str | None]) -> list[str]:
    """Remove the seen-state files the backup did not hold (the pre-rollback backup keeps them); their roles."""
    cleared = []
    for role in SEEN_STATE:
        place = places.get(role)
        if place is None or role in backed_up or not place.path.exists():
            continue
        for companion in ("", "-wal", "-shm"):
            place.path.with_name(place.path.name + companion).unlink(missing_ok=True)
        cleared.append(role)
    return cleared


def migrate(
    project: Project,
    *,
    with_data: bool = False,
    requirements: Path | None = None,
    telemetry: Telemetry | None = None,
) -> MigrateResult:
    """Preflight, back up the pipeline files (and the store), then write Phase 1 flags."""
    tel = _telemetry(telemetry)
    results = c.run_checks(preflight_checks(project, requirements), _secrets(project))
    failed = [r.name for r in results if r.ok is False]
    tel.event(
        "migration_preflight",
        "preflight " + (f"failed: {', '.join(failed)}" if failed else "passed"),
        level=logging.ERROR if failed else logging.INFO,
        ok=not failed,
        checks=_check_fields(results),
    )
    if failed:
        return MigrateResult(results)
    settings = project.settings()
    sources = data_sources(project, settings) if with_data else ()
    backup = create_backup(project, reason="migrate", data=sources)
    missing_data = tuple(s.role for s in sources if not s.path.is_file())
    tel.event(
        "migration_backup",
        f"backed up {len(backup.manifest.files)} files to {backup.path.name}",
        backup=str(backup.path),
        files=[e.path for e in backup.manifest.files],
        data=[e.role for e in backup.manifest.data],
        not_present=list(backup.missing),
        reason="migrate",
    )
    if _truthy(read_env_file(project.migration_file).get("USE_ENHANCED")):
        tel.event("migration_phase", ".env.migration already enables the enhanced pipeline; kept", kept=True)
        return MigrateResult(results, backup, missing_data, phase_kept=True)
    changes = update_env_file(project.migration_file, PHASES[1], header=HEADER)
    _phase_event(tel, 1, changes)
    return MigrateResult(results, backup, missing_data, changes)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


# --- phase -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseResult:
    phase: int
    path: Path
    changes: tuple[Change, ...]


def set_phase(project: Project, phase: int, *, telemetry: Telemetry | None = None) -> PhaseResult:
    """Write the guide's settings of ``phase`` (1-3) into .env.migration."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {sorted(PHASES)}, not {phase}")
    changes = update_env_file(project.migration_file, PHASES[phase], header=HEADER)
    _phase_event(_telemetry(telemetry), phase, changes)
    return PhaseResult(phase, project.migration_file, changes)


def _phase_event(tel: Telemetry, phase: int, changes: Sequence[Change]) -> None:
    tel.event(
        "migration_phase",
        f"phase {phase} written to .env.migration ({len(changes)} changed)",
        phase=phase,
        changes=[{"variable": ch.name, "old": ch.old, "new": ch.new} for ch in changes],
    )


# --- rollback --------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackResult:
    backup: Path | None
    ok: bool
    refused: str | None = None
    error: str | None = None
    pre_rollback: Path | None = None
    restored: tuple[FileEntry, ...] = ()
    restored_data: tuple[tuple[FileEntry, Path], ...] = ()
    flag_changes: tuple[Change, ...] = ()


def default_rollback_target(infos: Sequence[BackupInfo]) -> Path | None:
    """The newest backup made by ``migrate`` (or one whose manifest is unreadable, so it is refused).

    Backups taken before a rollback are skipped: running rollback twice goes
    back to the same pre-migration state instead of undoing itself. Name one
    explicitly to undo a rollback.
    """
    for info in infos:
        if info.reason in (None, "migrate"):
            return info.path
    return None


def _active_run(project: Project) -> str | None:
    """Why a rollback must wait: a pipeline run holds one of its locks (files would change under it)."""
    for lock in (log_dir(project) / ".pipeline.lock", *_run_locks(project)):
        if not lock.exists():
            continue
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return f"a pipeline run is active (lock {lock}); roll back when it has finished"
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def _run_locks(project: Project) -> list[Path]:
    """The locks an enrich script of this project takes (journal and store), as run_locks.py finds them."""
    try:
        settings = project.settings()
    except ConfigError:
        return [beside(project.path("data/journal.db")), beside(project.path("data/sources.db"))]
    located = replace(settings, journal_path=project.path(settings.journal_path),
                      sources_db_path=project.path(settings.sources_db_path))
    return run_lock_paths(located)


def rollback(
    project: Project,
    backup: Path | None = None,
    *,
    with_data: bool = False,
    telemetry: Telemetry | None = None,
) -> RollbackResult:
    """Verify a backup, save the current state, restore, then turn the enhanced flags off."""
    tel = _telemetry(telemetry)
    target = backup if backup is not None else default_rollback_target(list_backups(project))
    if target is None:
        return _refuse(tel, None, f"no backup made by migrate in {project.backups_dir}")
    verification = verify_backup(project, target)
    if not verification.ok or verification.manifest is None:
        return _refuse(tel, target, verification.reason)
    manifest = verification.manifest
    busy = _active_run(project)
    if busy:
        return _refuse(tel, target, busy)
    settings = None
    if with_data:
        if not manifest.data:
            return _refuse(tel, target, "the backup has no data snapshot (it was made without --with-data)")
        try:
            settings = project.settings()
        except ConfigError as exc:
            return _refuse(tel, target, f"cannot locate the store to restore: {exc}")
    real = Path(target).resolve()
    files = list(PIPELINE_FILES) + [e.path for e in manifest.files]
    pre = create_backup(
        project,
        files,
        reason=f"before rollback to {real.name}",
        data=data_sources(project, settings) if settings else (),
    )
    restored: list[FileEntry] = []
    restored_data: list[tuple[FileEntry, Path]] = []
    cleared: list[str] = []
    try:
        for entry in manifest.files:
            _restore_file(project, real, entry)
            restored.append(entry)
        if settings is not None:
            places = {s.role: s for s in data_sources(project, settings)}
            for entry in manifest.data:
                place = places[entry.role or ""]
                place.path.parent.mkdir(parents=True, exist_ok=True)
                copy = real / safe_relative(entry.path)
                if place.sqlite:
                    copy_sqlite(copy, place.path, create=not place.path.exists())
                else:
                    atomic_write(place.path, copy.read_bytes(), 0o644)
                restored_data.append((entry, place.path))
            cleared = _clear_seen_state(places, {entry.role for entry in manifest.data})
        changes = update_env_file(project.migration_file, ROLLBACK_FLAGS, header=HEADER)
    except (OSError, ManifestError, ValueError) as exc:
        error = f"restore stopped after {len(restored)} files: {exc}; the state before the rollback is in {pre.path}"
        tel.event("migration_rollback", error, level=logging.ERROR, outcome="error", backup=str(real), pre_rollback=str(pre.path))
        return RollbackResult(target, False, error=error, pre_rollback=pre.path, restored=tuple(restored))
    tel.event(
        "migration_rollback",
        f"restored {len(restored)} files from {real.name}; enhanced pipeline off",
        outcome="restored",
        backup=str(real),
        pre_rollback=str(pre.path),
        files=[e.path for e in restored],
        data=[e.role for e, _ in restored_data],
        cleared=cleared,
        changes=[{"variable": ch.name, "old": ch.old, "new": ch.new} for ch in changes],
    )
    return RollbackResult(target, True, None, None, pre.path, tuple(restored), tuple(restored_data), changes)


def _restore_file(project: Project, real: Path, entry: FileEntry) -> None:
    rel = safe_relative(entry.path)
    content = (real / rel).read_bytes()
    if sha256_bytes(content) != entry.sha256:
        raise ManifestError(f"{entry.path} changed while restoring")
    dest = project.root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, content, entry.mode & SAFE_MODE_BITS)


def _refuse(tel: Telemetry, target: Path | None, reason: str) -> RollbackResult:
    tel.event(
        "migration_rollback",
        f"rollback refused: {reason}",
        level=logging.ERROR,
        outcome="refused",
        backup=str(target) if target else None,
        reason=reason,
    )
    return RollbackResult(target, False, refused=reason)


# --- status / list ---------------------------------------------------------------------


@dataclass(frozen=True)
class FlagView:
    name: str
    shown: str
    source: str


@dataclass(frozen=True)
class StatusReport:
    flags: tuple[FlagView, ...]
    phase: str
    config_error: str | None
    backups: tuple[BackupInfo, ...]
    log_file: Path
    last_run: RunSummary | None


def _setting_text(settings: Settings, name: str) -> str | None:
    value = getattr(settings, name.lower(), None)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or None
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def status(project: Project) -> StatusReport:
    """Effective flags and where each comes from, the phase, backups and the last run."""
    settings: Settings | None
    try:
        settings = project.settings()
        config_error = None
    except ConfigError as exc:
        settings, config_error = None, str(exc)
    flags = []
    redact = Redactor(_secrets(project))
    for name in STATUS_VARIABLES:
        found = origin(project, name)
        shown = found.shown
        if found.source == DEFAULT and settings is not None and not is_secret(name):
            shown = _setting_text(settings, name) or "(unset)"
        flags.append(FlagView(name, redact(shown), found.source))
    if settings is not None:
        phase = describe_phase(settings)
        logs = project.path(settings.log_dir)
    else:
        phase, logs = "unknown (configuration invalid)", log_dir(project)
    log_file = logs / "pipeline.jsonl"
    return StatusReport(tuple(flags), phase, config_error, list_backups(project), log_file, last_summary(log_file))


def backups(project: Project) -> tuple[BackupInfo, ...]:
    return list_backups(project)


# --- test ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestReport:
    __test__ = False  # not a pytest test class

    results: tuple[c.CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok is not False for r in self.results)


def test_checks(
    project: Project,
    *,
    live: bool = False,
    requirements: Path | None = None,
    smoke: bool = True,
    telemetry: Telemetry | None = None,
) -> list[c.Check]:
    """The checks ``test`` runs, in order (imports, config, log dir, smoke runs, live services)."""
    checks = [
        c.python_version(),
        c.dependencies(requirements or project.root / "requirements.txt"),
        c.package_imports(),
        *c.script_imports(project.root),
        c.configuration(project.settings),
        c.writable_dir("LOG_DIR", log_dir(project)),
    ]
    if smoke:
        checks += smoke_checks(project.root, effective_environment(project))
    if live:
        checks += _live_checks(project, _telemetry(telemetry))
    return checks


def _live_checks(project: Project, tel: Telemetry) -> list[c.Check]:
    try:
        settings = project.settings()
    except ConfigError as exc:
        reason = f"configuration invalid: {exc}"

        def fail() -> str:
            raise c.CheckFailed(reason)

        return [c.Check("OpenAI (live)", fail), c.Check("Notion (live)", fail)]
    try:
        from .live import notion_check, openai_check
    except ImportError as exc:
        message = f"live checks unavailable: {type(exc).__name__}: {exc}"

        def broken() -> str:
            raise c.CheckFailed(message)

        return [c.Check("live checks", broken)]
    return [openai_check(settings, tel), notion_check(settings, tel)]


def test(
    project: Project,
    checks: Sequence[c.Check] | None = None,
    *,
    live: bool = False,
    requirements: Path | None = None,
    telemetry: Telemetry | None = None,
) -> TestReport:
    """Run ``checks`` (default: :func:`test_checks`) and record the outcome."""
    tel = _telemetry(telemetry)
    chosen = list(checks) if checks is not None else test_checks(project, live=live, requirements=requirements, telemetry=tel)
    report = TestReport(c.run_checks(chosen, _secrets(project)))
    failed = [r.name for r in report.results if r.ok is False]
    tel.event(
        "migration_test",
        "test " + (f"failed: {', '.join(failed)}" if failed else "passed"),
        level=logging.ERROR if failed else logging.INFO,
        ok=report.ok,
        live=live,
        checks=_check_fields(report.results),
    )
    return report


test.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
test_checks.__test__ = False  # type: ignore[attr-defined]
