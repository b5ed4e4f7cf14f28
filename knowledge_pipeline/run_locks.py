"""Which locks a run takes: one per journal and one per Sources store, found by identity, not by spelling.

* the journal's: ``<journal>.lock`` beside the journal's real path;
* a SQLite store's: ``<database>.lock`` beside the database's real path, so
  a relative path, a ``..`` or a symlinked folder all lead to the same file,
  whatever the working directory or ``TMPDIR``;
* a Notion store's: ``notion-<id>.lock`` in the per-user state folder
  (``$XDG_STATE_HOME/knowledge-pipeline``, default
  ``~/.local/state/knowledge-pipeline``), keyed on the normalized id (no
  dashes, lower case; ``NOTION_BASE_URL`` plays no part). Once the store is
  open, the run also takes the lock of the data source the id resolved to, so
  a database id and its data source id exclude each other too.

A run on another machine, or by another user, against the same Notion
database is not excluded: a lock file cannot see it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .config import Settings

_DASHED_OR_PLAIN_UUID = re.compile(r"[0-9a-f]{32}")


def normalized_notion_id(value: str) -> str:
    """A Notion id as 32 lower-case hex digits (``ABCD-ef...`` and ``abcdef...`` are the same id)."""
    compact = re.sub(r"[\s{}-]", "", value.strip().lower())
    return compact if _DASHED_OR_PLAIN_UUID.fullmatch(compact) else value.strip().lower()


def beside(path: Path) -> Path:
    """``<real path>.lock``."""
    real = Path(os.path.realpath(path))
    return real.with_name(real.name + ".lock")


def notion_lock_path(settings: Settings, notion_id: str) -> Path:
    return settings.state_dir / f"notion-{normalized_notion_id(notion_id)}.lock"


def run_lock_paths(settings: Settings) -> list[Path]:
    """The locks a run takes before it opens anything: the journal's and the store's."""
    paths = [beside(settings.journal_path)]
    if settings.sources_backend == "notion":
        paths.append(notion_lock_path(settings, settings.notion_sources_db or ""))
    else:
        paths.append(beside(settings.sources_db_path))
    return paths
