"""Where a project's files are, which environment it sees, and what time it is.

Every operation takes a :class:`Project` instead of reading the working
directory, ``os.environ`` or the clock, so tests run it on a temporary copy.
``MIGRATE_NOW`` (an ISO date-time, for tests only) fixes the clock so two
backups in "the same second" can be produced deterministically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping

from ..config import Settings, load_settings
from ..errors import ConfigError

ENV_FILE = ".env"
MIGRATION_FILE = ".env.migration"
BACKUPS_DIR = "backups"
CLOCK_OVERRIDE = "MIGRATE_NOW"


def _system_now() -> datetime:
    return datetime.now().astimezone()


@dataclass(frozen=True)
class Project:
    root: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    now: Callable[[], datetime] = _system_now

    @classmethod
    def open(cls, root: Path, environ: Mapping[str, str] | None = None) -> Project:
        """A project rooted at ``root``; honours ``MIGRATE_NOW`` from ``environ``."""
        env = dict(os.environ if environ is None else environ)
        fixed = env.get(CLOCK_OVERRIDE, "").strip()
        if fixed:
            try:
                moment = datetime.fromisoformat(fixed)
            except ValueError:
                raise ConfigError(CLOCK_OVERRIDE, fixed, "expected an ISO date-time (tests only)") from None
            moment = moment if moment.tzinfo else moment.astimezone()
            return cls(Path(root).resolve(), env, lambda: moment)
        return cls(Path(root).resolve(), env)

    @property
    def backups_dir(self) -> Path:
        return self.root / BACKUPS_DIR

    @property
    def env_file(self) -> Path:
        return self.root / ENV_FILE

    @property
    def migration_file(self) -> Path:
        return self.root / MIGRATION_FILE

    def path(self, value: Path | str) -> Path:
        """A setting's path, relative ones taken from the project root (as the scripts run there)."""
        p = Path(value)
        return p if p.is_absolute() else self.root / p

    def settings(self) -> Settings:
        """Settings with the rollout precedence; raises ConfigError."""
        from .environment import effective_environment

        return load_settings(effective_environment(self), env_file=None)
