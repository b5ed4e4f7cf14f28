"""Edit ``KEY=value`` files (.env.migration) keeping every unrelated line."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from .atomic import atomic_write

_ASSIGNMENT = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)\s*=")
NEW_FILE_MODE = 0o600


@dataclass(frozen=True)
class Change:
    name: str
    old: str | None
    new: str


def read_env_file(path: Path) -> dict[str, str]:
    """The variables a file sets (last assignment wins, as in the shell and python-dotenv)."""
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def update_env_file(path: Path, updates: Mapping[str, str], *, header: str = "") -> tuple[Change, ...]:
    """Set ``updates`` in the file: replace existing assignments, append new ones.

    Comments and other variables stay as they are. The file is replaced
    atomically and only when something changes; a new file gets mode 0600.
    """
    old = read_env_file(path)
    changes = tuple(Change(k, old.get(k), v) for k, v in updates.items() if old.get(k) != v)
    if not changes and path.is_file():
        return ()
    text = path.read_text(encoding="utf-8") if path.is_file() else header
    lines = text.splitlines()
    written: set[str] = set()
    for i, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match and match.group(2) in updates:
            name = match.group(2)
            lines[i] = f"{match.group(1)}{name}={updates[name]}"
            written.add(name)
    lines.extend(f"{k}={v}" for k, v in updates.items() if k not in written)
    mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else NEW_FILE_MODE
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"), mode)
    return changes
