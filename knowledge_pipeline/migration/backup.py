"""Create backups under ``backups/migration_YYYYMMDD_HHMMSS[_N]/`` and list them.

A backup directory is created with ``os.mkdir`` (mode 0700), which fails if
the name exists, so two backups never share a directory; a name taken in the
same second gets ``_1``, ``_2``, ... The manifest is written last, so a
directory without one is an interrupted backup and never verifies.
Copies of ``.env*`` files are mode 0600 whatever the original's mode; the
manifest records the original mode without setuid/setgid/sticky bits and
without write access for others, which a restore puts back.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence
from urllib.request import pathname2url

from .. import __version__
from .atomic import atomic_write, fsync_dir, write_new
from .manifest import (
    BACKUP_PREFIX,
    MANIFEST_NAME,
    PIPELINE_FILES,
    SAFE_MODE_BITS,
    FileEntry,
    Manifest,
    Verification,
    safe_relative,
    sha256_bytes,
    sha256_file,
    verify_backup,
)
from .project import Project

_NAME = re.compile(rf"^{BACKUP_PREFIX}(\d{{8}}_\d{{6}})(?:_(\d+))?$")
_MAX_SUFFIX = 1000


@dataclass(frozen=True)
class DataSource:
    """A data file to snapshot: its role in the manifest and where it is.

    SQLite files (``sqlite``) are copied with the online backup API, so the copy
    is consistent while a run writes; others (the OPML feed list) byte for byte.
    """

    role: str
    path: Path
    sqlite: bool = True

    @property
    def backup_name(self) -> str:
        return f"data/{self.role}{'.db' if self.sqlite else self.path.suffix}"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    name: str
    created_at: str | None
    reason: str | None
    file_count: int
    data_count: int
    verification: Verification


def create_backup(
    project: Project,
    files: Sequence[str] = PIPELINE_FILES,
    *,
    reason: str,
    data: Iterable[DataSource] = (),
) -> BackupResult:
    """Copy the present ``files`` (and SQLite ``data``) into a new backup directory."""
    target = _new_backup_dir(project)
    try:
        entries, missing = _copy_files(project, target, files)
        data_entries = tuple(_snapshot(project, target, source) for source in data if source.path.is_file())
        manifest = Manifest(
            created_at=project.now().isoformat(timespec="seconds"),
            tool_version=__version__,
            reason=reason,
            files=entries,
            data=data_entries,
        )
        atomic_write(target / MANIFEST_NAME, manifest.to_json().encode("utf-8"), 0o600)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return BackupResult(target, manifest, missing)


def _new_backup_dir(project: Project) -> Path:
    backups = project.backups_dir
    if not backups.is_dir():
        backups.mkdir(mode=0o700, parents=True)
    base = BACKUP_PREFIX + project.now().strftime("%Y%m%d_%H%M%S")
    for n in range(_MAX_SUFFIX):
        candidate = backups / (base if n == 0 else f"{base}_{n}")
        try:
            os.mkdir(candidate, 0o700)
        except FileExistsError:
            continue
        os.chmod(candidate, 0o700)
        fsync_dir(backups)
        return candidate
    raise FileExistsError(f"{_MAX_SUFFIX} backups named {base}* already exist")


def _copy_files(project: Project, target: Path, files: Sequence[str]) -> tuple[tuple[FileEntry, ...], tuple[str, ...]]:
    entries: list[FileEntry] = []
    missing: list[str] = []
    for name in dict.fromkeys(files):
        rel = safe_relative(name)
        source = project.root / rel
        if not source.is_file():
            missing.append(name)
            continue
        content = source.read_bytes()
        mode = stat.S_IMODE(source.stat().st_mode) & SAFE_MODE_BITS
        dest = target / rel
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_new(dest, content, 0o600 if rel.name.startswith(".env") else mode)
        entries.append(FileEntry(str(rel), len(content), mode, sha256_bytes(content)))
    return tuple(entries), tuple(missing)


def _snapshot(project: Project, target: Path, source: DataSource) -> FileEntry:
    rel = source.backup_name
    dest = target / rel
    dest.parent.mkdir(mode=0o700, exist_ok=True)
    if source.sqlite:
        copy_sqlite(source.path, dest, create=True)
    else:
        write_new(dest, source.path.read_bytes(), 0o600)
    size, digest = sha256_file(dest)
    try:
        origin = str(source.path.relative_to(project.root))
    except ValueError:
        origin = str(source.path)
    return FileEntry(rel, size, 0o600, digest, role=source.role, origin=origin)


def copy_sqlite(source: Path, dest: Path, *, create: bool) -> None:
    """Copy a SQLite database with the online backup API (consistent while others write).

    ``create`` makes a new 0600 file; otherwise ``dest``'s content is replaced
    in place under SQLite's own locking.
    """
    if create:
        write_new(dest, b"", 0o600)
    src = sqlite3.connect(f"file:{pathname2url(str(source))}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _sort_key(path: Path) -> tuple[str, int]:
    match = _NAME.match(path.name)
    if match is None:
        return ("", -1)
    return (match.group(1), int(match.group(2) or 0))


def list_backups(project: Project) -> tuple[BackupInfo, ...]:
    """Every ``migration_*`` directory under backups/, newest first, each verified."""
    if not project.backups_dir.is_dir():
        return ()
    dirs = [p for p in project.backups_dir.iterdir() if p.name.startswith(BACKUP_PREFIX)]
    infos = []
    for path in sorted(dirs, key=lambda p: (_sort_key(p), p.name), reverse=True):
        verification = verify_backup(project, path)
        manifest = verification.manifest
        infos.append(
            BackupInfo(
                path=path,
                name=path.name,
                created_at=manifest.created_at if manifest else None,
                reason=manifest.reason if manifest else None,
                file_count=len(manifest.files) if manifest else 0,
                data_count=len(manifest.data) if manifest else 0,
                verification=verification,
            )
        )
    return tuple(infos)
