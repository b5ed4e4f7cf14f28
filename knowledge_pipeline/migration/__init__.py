"""Safe rollout of the enhanced/parallel pipeline: backup, checks, phases, rollback.

The pieces, one concept per module:

- ``atomic``      write a file so readers see the old or the new content, never half
- ``manifest``    a backup's MANIFEST.json and its verification (checksums, safe paths)
- ``backup``      create backups (files + optional SQLite snapshots) and list them
- ``envfile``     edit ``KEY=value`` files keeping unrelated lines
- ``environment`` which value of a setting wins (env > .env.migration > .env > default)
- ``phases``      the guide's three rollout phases
- ``checks``      preflight and import checks, run as an injectable list
- ``smoke``       an offline end-to-end run of the enhanced scripts on a temp store
- ``live``        read-only checks of the configured Notion and OpenAI
- ``operations``  migrate, phase, rollback, status, list: what the CLI calls

Nothing here prints: every function returns a result the CLI prints, and
reports what it did through :class:`~knowledge_pipeline.telemetry.Telemetry`.
"""

from .backup import BackupInfo, BackupResult, create_backup, list_backups
from .checks import Check, CheckResult, run_checks
from .manifest import Manifest, Verification, verify_backup
from .operations import (
    MigrateResult,
    PhaseResult,
    RollbackResult,
    StatusReport,
    TestReport,
    migrate,
    rollback,
    set_phase,
    status,
    test,
)
from .project import Project

__all__ = [
    "BackupInfo",
    "BackupResult",
    "Check",
    "CheckResult",
    "Manifest",
    "MigrateResult",
    "PhaseResult",
    "Project",
    "RollbackResult",
    "StatusReport",
    "TestReport",
    "Verification",
    "create_backup",
    "list_backups",
    "migrate",
    "rollback",
    "run_checks",
    "set_phase",
    "status",
    "test",
    "verify_backup",
]
