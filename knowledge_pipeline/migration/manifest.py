"""A backup's MANIFEST.json and the checks a backup must pass before it is trusted.

Format (``format`` 1)::

    {"format": 1, "tool": "migrate_to_parallel", "tool_version": "1.0.0",
     "created_at": "2024-01-15T10:30:00+01:00", "reason": "migrate",
     "files": [{"path": "enrich.py", "size": 812, "mode": "0644", "sha256": "..."}],
     "data":  [{"path": "data/sources_db.db", "role": "sources_db", "origin": "data/sources.db",
                "size": 8192, "mode": "0600", "sha256": "..."}]}

``files`` are restored to the same relative path in the project, and only
if that path is one of ``PIPELINE_FILES`` (what migrate itself backs up) and
the mode has no setuid/setgid/sticky bit and no write access for others: a
manifest whose hashes are right can still not write ``.git/hooks/...`` or a
``-rwsrwxrwx`` file. ``data`` are SQLite snapshots, restored only on request
and only to the currently configured store paths (never to a path the
manifest names).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .project import Project

FORMAT = 1
MANIFEST_NAME = "MANIFEST.json"
BACKUP_PREFIX = "migration_"
DATA_ROLES = ("sources_db", "journal", "batches", "dedup", "feed_state", "feed_list")
PIPELINE_FILES: tuple[str, ...] = (
    "pipeline.sh",
    "enrich.py",
    "enrich_rss.py",
    "pipeline_enhanced.sh",
    ".env",
    ".env.migration",
)
SAFE_MODE_BITS = 0o775


class ManifestError(ValueError):
    """A MANIFEST.json that cannot be read or has the wrong shape."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    mode: int
    sha256: str
    role: str | None = None
    origin: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = f"{self.mode:04o}"
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class Manifest:
    created_at: str
    tool_version: str
    reason: str
    files: tuple[FileEntry, ...] = ()
    data: tuple[FileEntry, ...] = ()

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "tool": "migrate_to_parallel",
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "reason": self.reason,
            "files": [e.to_json() for e in self.files],
            "data": [e.to_json() for e in self.data],
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"MANIFEST.json is not valid JSON ({exc.msg})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ManifestError(f"MANIFEST.json has an unknown format (expected format {FORMAT})")
        try:
            return cls(
                created_at=str(doc["created_at"]),
                tool_version=str(doc.get("tool_version", "")),
                reason=str(doc.get("reason", "")),
                files=tuple(_entry(e) for e in doc["files"]),
                data=tuple(_entry(e) for e in doc.get("data", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"MANIFEST.json is malformed ({type(exc).__name__}: {exc})") from None


def _entry(raw: Any) -> FileEntry:
    if not isinstance(raw, dict):
        raise TypeError("entry is not an object")
    return FileEntry(
        path=str(raw["path"]),
        size=int(raw["size"]),
        mode=int(str(raw["mode"]), 8),
        sha256=str(raw["sha256"]),
        role=raw.get("role"),
        origin=raw.get("origin"),
    )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def safe_relative(text: str) -> PurePosixPath:
    """``text`` as a plain relative path, or ManifestError if it could leave its base."""
    if not text or "\x00" in text or "\\" in text:
        raise ManifestError(f"entry path {text!r} is not a plain relative path")
    path = PurePosixPath(text)
    if not path.parts or path.is_absolute() or ".." in path.parts:
        raise ManifestError(f"entry path {text!r} escapes its directory")
    return path


@dataclass(frozen=True)
class Verification:
    backup: Path
    ok: bool
    problems: tuple[str, ...] = ()
    manifest: Manifest | None = field(default=None, compare=False)

    @property
    def reason(self) -> str:
        return "; ".join(self.problems[:3]) + (f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else "")


def contained_backup_dir(project: Project, backup: Path) -> Path:
    """The real path of ``backup`` if it is a backup directly under backups/; else ManifestError."""
    backups_real = Path(os.path.realpath(project.backups_dir))
    real = Path(os.path.realpath(backup))
    if real.parent != backups_real:
        raise ManifestError(f"{backup} is not a backup directly inside {project.backups_dir}")
    if not real.name.startswith(BACKUP_PREFIX):
        raise ManifestError(f"{backup} is not named {BACKUP_PREFIX}*")
    if not real.is_dir():
        raise ManifestError(f"{backup} is not a directory")
    return real


def verify_backup(project: Project, backup: Path) -> Verification:
    """Check a backup completely before anything is restored from it.

    Refused: a directory outside ``backups/`` (also through symlinks), a missing
    or malformed manifest, an entry path escaping the project or the backup or
    not among ``PIPELINE_FILES``, an unsafe mode, a listed file missing, a
    symlink or non-regular file, a size or SHA-256 mismatch.
    """
    try:
        real = contained_backup_dir(project, backup)
        manifest = read_manifest(real)
    except ManifestError as exc:
        return Verification(backup, False, (str(exc),))
    problems: list[str] = []
    seen: set[str] = set()
    for entry in manifest.files:
        problems.extend(_check_destination(project, entry))
        problems.extend(_check_copy(real, entry, seen))
    for entry in manifest.data:
        if entry.role not in DATA_ROLES:
            problems.append(f"data entry {entry.path!r} has unknown role {entry.role!r}")
        problems.extend(_check_copy(real, entry, seen))
    return Verification(backup, not problems, tuple(problems), manifest)


def read_manifest(real: Path) -> Manifest:
    path = real / MANIFEST_NAME
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ManifestError("no MANIFEST.json (incomplete backup)") from None
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError("MANIFEST.json is not a regular file")
    return Manifest.from_json(path.read_text(encoding="utf-8"))


def _check_destination(project: Project, entry: FileEntry) -> list[str]:
    try:
        rel = safe_relative(entry.path)
    except ManifestError as exc:
        return [str(exc)]
    if str(rel) not in PIPELINE_FILES:
        return [f"entry path {entry.path!r} is not a file migrate backs up ({', '.join(PIPELINE_FILES)})"]
    if entry.mode & ~SAFE_MODE_BITS:
        return [f"{entry.path}: mode {entry.mode:04o} is not restorable (setuid, setgid, sticky or world-writable)"]
    parent = Path(os.path.realpath(project.root / rel)).parent
    if not parent.is_relative_to(Path(os.path.realpath(project.root))):
        return [f"entry path {entry.path!r} resolves outside the project"]
    return []


def _check_copy(real: Path, entry: FileEntry, seen: set[str]) -> list[str]:
    try:
        rel = safe_relative(entry.path)
    except ManifestError as exc:
        return [str(exc)]
    if str(rel) in seen:
        return [f"{entry.path}: listed twice"]
    seen.add(str(rel))
    copy = real / rel
    if not Path(os.path.realpath(copy.parent)).is_relative_to(real):
        return [f"{entry.path}: resolves outside the backup"]
    try:
        st = os.lstat(copy)
    except FileNotFoundError:
        return [f"{entry.path}: missing from the backup"]
    if stat.S_ISLNK(st.st_mode):
        return [f"{entry.path}: is a symlink in the backup"]
    if not stat.S_ISREG(st.st_mode):
        return [f"{entry.path}: is not a regular file"]
    size, digest = sha256_file(copy)
    if size != entry.size or digest != entry.sha256:
        return [f"{entry.path}: checksum mismatch (altered since the backup)"]
    return []
