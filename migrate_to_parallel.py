#!/usr/bin/env python3
"""Roll the enhanced/parallel pipeline out safely: migrate, test, phase, rollback, status, list.

Run with --help (also on each command). The logic lives in
knowledge_pipeline.migration; this file parses arguments and prints results.
See docs/migration.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CODES_HELP = "exit codes: 0 success; 1 a check or operation failed; 2 bad usage or configuration"
PRECEDENCE = "exported environment > .env.migration > .env > default"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrate_to_parallel.py",
        description="Safe rollout of the enhanced/parallel pipeline: backup, checks, phases and rollback.",
        epilog=EXIT_CODES_HELP + ". Details: docs/migration.md.",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="the pipeline's directory (default: the directory of this script)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description, epilog=EXIT_CODES_HELP + ".")

    p = command(
        "migrate",
        "preflight, back up the pipeline files, write Phase 1 flags",
        "Check Python, dependencies, configuration and writable folders; back up pipeline.sh, enrich.py, "
        "enrich_rss.py, pipeline_enhanced.sh, .env and .env.migration into backups/migration_YYYYMMDD_HHMMSS/ "
        "with a MANIFEST.json; then write Phase 1 flags to .env.migration (unless it already enables the "
        "enhanced pipeline). Safe to run again: every run makes a new backup.",
    )
    p.add_argument("--with-data", action="store_true", help="also snapshot your data: the SQLite store, the journal, open Batch API batches, "
                   "the duplicate index, the feed state and the feed list (feeds.opml)")
    p.add_argument("--requirements", type=Path, help="requirements file the dependency check reads (default: requirements.txt)")
    p.set_defaults(handler=cmd_migrate)

    p = command(
        "test",
        "check imports, configuration, log dir, and smoke-run the enhanced pipeline",
        "Import every package module and top-level script, validate the configuration, check LOG_DIR, then run "
        "enrich_rss_enhanced.py sequentially and with --parallel on a temporary SQLite store with the local "
        "enricher and three generated feed items (no network, none of your data). One line per check.",
    )
    p.add_argument("--live", action="store_true", help="also check the configured Notion and OpenAI (read-only)")
    p.add_argument("--no-smoke", action="store_true", help="skip the two smoke runs")
    p.add_argument("--requirements", type=Path, help="requirements file the dependency check reads (default: requirements.txt)")
    p.set_defaults(handler=cmd_test)

    p = command(
        "phase",
        "write a rollout phase's settings into .env.migration",
        "Phase 1: USE_ENHANCED=true ENABLE_PARALLEL=false. Phase 2: ENABLE_PARALLEL=true "
        "PARALLEL_MAX_WORKERS=3 PARALLEL_RATE_LIMIT=0.2. Phase 3: PARALLEL_MAX_WORKERS=5 PARALLEL_RATE_LIMIT=0.1 "
        "(phases 2 and 3 also write USE_ENHANCED=true ENABLE_PARALLEL=true). Other lines are kept; "
        "pipeline_enhanced.sh picks the file up on its next run.",
    )
    p.add_argument("phase", type=int, choices=(1, 2, 3), help="1, 2 or 3")
    p.set_defaults(handler=cmd_phase)

    p = command(
        "rollback",
        "verify a backup and restore it; turn the enhanced pipeline off",
        "Verify BACKUP_DIR's manifest (every file present, checksums match, nothing outside backups/ or the "
        "project) and refuse, changing nothing, if it fails; back up the current state; restore each file with "
        "its mode atomically; set USE_ENHANCED=false ENABLE_PARALLEL=false in .env.migration.",
    )
    p.add_argument(
        "backup_dir",
        nargs="?",
        type=Path,
        metavar="BACKUP_DIR",
        help="a backups/migration_* directory (default: the newest one made by migrate)",
    )
    p.add_argument("--with-data", action="store_true", help="also restore the data snapshot (store, journal, batches, dedup, feed state and list) "
                   "into the configured paths")
    p.set_defaults(handler=cmd_rollback)

    p = command(
        "status",
        "show effective flags and their origin, the phase, backups and the last run",
        f"Show each flag's effective value and where it comes from ({PRECEDENCE}), the phase the flags "
        "correspond to, the backups and the last pipeline_summary in pipeline.jsonl. Secrets show as set/(unset). "
        "Exits 1 when the configuration is invalid.",
    )
    p.set_defaults(handler=cmd_status)

    p = command(
        "list",
        "list backups and whether each verifies",
        "List backups/migration_* newest first with time, file count and verification (✓/✗ and why). "
        "Exits 1 when any backup fails verification.",
    )
    p.set_defaults(handler=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    if not getattr(args, "handler", None):
        build_parser().print_help()
        return EXIT_USAGE
    try:
        from knowledge_pipeline.errors import ConfigError
        from knowledge_pipeline.migration import Project
    except ImportError as exc:
        print(f"✗ cannot load knowledge_pipeline ({exc}); install dependencies: pip install -r requirements.txt", file=sys.stderr)
        return EXIT_FAILED
    try:
        project = Project.open(args.project_dir)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(project)
    return int(args.handler(args, project))


def _setup_logging(project: Any) -> None:
    """Send this tool's events to $LOG_DIR/pipeline.jsonl, nothing to the console.

    If LOG_DIR is not writable or logging cannot load, run without the file:
    the preflight/test checks report the cause.
    """
    from knowledge_pipeline.config import Settings
    from knowledge_pipeline.errors import ConfigError
    from knowledge_pipeline.migration.environment import effective_environment
    from knowledge_pipeline.migration.operations import log_dir

    try:
        settings = project.settings()
    except ConfigError:
        env = effective_environment(project)
        settings = Settings(notion_token=env.get("NOTION_TOKEN") or None, openai_api_key=env.get("OPENAI_API_KEY") or None)
    settings = replace(settings, log_dir=log_dir(project))
    try:
        from knowledge_pipeline.logging_setup import setup_logging

        setup_logging(settings, console="none", jsonl=True)
    except (ImportError, ConfigError):
        pass


def _rel(project: Any, path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(project.root))
    except ValueError:
        return str(path)


def _mark(ok: bool | None) -> str:
    return {True: "✓", False: "✗", None: "–"}[ok]


def _print_checks(results: Sequence[Any]) -> None:
    for r in results:
        print(f"{_mark(r.ok)} {r.name}: {r.detail}")


def _print_changes(changes: Sequence[Any]) -> None:
    if not changes:
        print("  (no change)")
    for ch in changes:
        print(f"  {ch.name}: {ch.old if ch.old is not None else '(unset)'} -> {ch.new}")


def cmd_migrate(args: argparse.Namespace, project: Any) -> int:
    from knowledge_pipeline.migration import migrate

    result = migrate(project, with_data=args.with_data, requirements=args.requirements)
    print("Preflight:")
    _print_checks(result.preflight)
    if not result.ok:
        print("migrate: preflight failed; nothing was backed up or changed", file=sys.stderr)
        return EXIT_USAGE if result.config_failed else EXIT_FAILED
    backup = result.backup
    name = _rel(project, backup.path)
    print(f"Backup: {name} ({len(backup.manifest.files)} files: {', '.join(e.path for e in backup.manifest.files) or 'none'})")
    if backup.missing:
        print(f"  not present, not backed up: {', '.join(backup.missing)}")
    for entry in backup.manifest.data:
        print(f"  data snapshot: {entry.path} (from {entry.origin})")
    if result.missing_data:
        print(f"  not present, no snapshot: {', '.join(result.missing_data)}")
    if result.phase_kept:
        print(".env.migration already enables the enhanced pipeline; left unchanged (see: status)")
    else:
        print("Phase 1 written to .env.migration:")
        _print_changes(result.phase_changes)
    script = "python3 migrate_to_parallel.py"
    print("Next steps:")
    print(f"  1. {script + ' test':<36}  # imports, config and an offline smoke run")
    print(f"  2. {'./pipeline_enhanced.sh':<36}  # phase 1: enhanced logging, sequential")
    print(f"  3. when runs look good: {script} phase 2, later phase 3")
    print(f"  Roll back any time: {script} rollback {name}")
    return EXIT_OK


def cmd_test(args: argparse.Namespace, project: Any) -> int:
    from knowledge_pipeline.migration import operations

    checks = operations.test_checks(project, live=args.live, requirements=args.requirements, smoke=not args.no_smoke)
    report = operations.test(project, checks, live=args.live)
    _print_checks(report.results)
    failed = sum(r.ok is False for r in report.results)
    print(f"{len(report.results) - failed} passed, {failed} failed" if failed else f"all {len(report.results)} checks passed")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_phase(args: argparse.Namespace, project: Any) -> int:
    from knowledge_pipeline.migration import set_phase

    result = set_phase(project, args.phase)
    print(f"Phase {result.phase} written to {_rel(project, result.path)}:")
    _print_changes(result.changes)
    print("pipeline_enhanced.sh uses it on its next run (exported variables still win).")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, project: Any) -> int:
    from knowledge_pipeline.migration import rollback

    target = args.backup_dir
    if target is not None and not target.is_absolute():
        target = Path(os.getcwd()) / target
    result = rollback(project, target, with_data=args.with_data)
    if result.refused:
        print(f"✗ rollback refused, nothing changed: {result.refused}", file=sys.stderr)
        return EXIT_FAILED
    if result.pre_rollback:
        print(f"Current state saved to {_rel(project, result.pre_rollback)} (roll back to it to undo this rollback)")
    for entry in result.restored:
        print(f"✓ restored {entry.path} (mode {entry.mode:04o})")
    for entry, dest in result.restored_data:
        print(f"✓ restored data {entry.role} -> {_rel(project, dest)}")
    if not result.ok:
        print(f"✗ rollback failed: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Rolled back to {_rel(project, result.backup)}; .env.migration:")
    _print_changes(result.flag_changes)
    print("pipeline_enhanced.sh now runs the original scripts; ./pipeline.sh works as before.")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, project: Any) -> int:
    from knowledge_pipeline.migration import status

    report = status(project)
    print(f"Flags (precedence: {PRECEDENCE}):")
    width = max(len(f.name) for f in report.flags)
    for flag in report.flags:
        print(f"  {flag.name:<{width}}  {flag.shown:<24}  {flag.source}")
    print(f"Phase: {report.phase}")
    print("Configuration: " + ("valid" if report.config_error is None else f"invalid: {report.config_error}"))
    _print_backups(project, report.backups)
    run = report.last_run
    if run is None:
        print(f"Last run: no pipeline_summary in {_rel(project, report.log_file)}")
    else:
        m = run.metrics
        print(
            f"Last run ({run.timestamp}, {run.logger}): {m.get('items_processed', 0)} enriched, "
            f"{m.get('items_failed', 0)} failed, {m.get('items_skipped', 0)} skipped of {m.get('items_total', 0)}; "
            f"success rate {m.get('success_rate', 'n/a')}, {m.get('duration_seconds', 'n/a')} s, "
            f"{m.get('items_per_second', 'n/a')} items/s"
        )
    return EXIT_OK if report.config_error is None else EXIT_FAILED


def _print_backups(project: Any, infos: Sequence[Any]) -> None:
    print("Backups (newest first):" if infos else "Backups: none")
    for info in infos:
        print("  " + _backup_line(info))


def _backup_line(info: Any) -> str:
    v = info.verification
    files = f"{info.file_count} files" + (f" + {info.data_count} data" if info.data_count else "")
    what = f"{info.name}  {info.created_at or '?'}  {files}  {info.reason or '?'}"
    return f"{_mark(v.ok)} {what}" + ("" if v.ok else f"  ({v.reason})")


def cmd_list(args: argparse.Namespace, project: Any) -> int:
    from knowledge_pipeline.migration import list_backups

    infos = list_backups(project)
    if not infos:
        print(f"no backups in {_rel(project, project.backups_dir)}")
    for info in infos:
        print(_backup_line(info))
    return EXIT_OK if all(i.verification.ok for i in infos) else EXIT_FAILED


if __name__ == "__main__":
    from knowledge_pipeline.project_venv import use_project_venv

    use_project_venv()
    from knowledge_pipeline.cli import exit_code_of

    sys.exit(exit_code_of(main))
