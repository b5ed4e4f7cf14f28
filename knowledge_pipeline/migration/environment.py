"""Which value of a setting wins during the rollout, and where it came from.

Precedence, highest first: the exported environment, ``.env.migration``
(written by ``phase``/``migrate``/``rollback``), ``.env``, the built-in
default. ``.env.migration`` sits above ``.env`` so a phase takes effect even
when ``.env`` sets the same flag; ``pipeline_enhanced.sh`` loads the files in
the same order (each without overriding variables already set).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import VARIABLES
from .envfile import read_env_file
from .project import Project

ENVIRONMENT, MIGRATION, DOTENV, DEFAULT = "environment", ".env.migration", ".env", "default"
_SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "WEBHOOK")


def is_secret(name: str) -> bool:
    """Values of these variables are never shown, only whether they are set."""
    upper = name.upper()
    return any(marker in upper for marker in _SECRET_MARKERS)


def layers(project: Project) -> tuple[tuple[str, dict[str, str]], ...]:
    return (
        (ENVIRONMENT, dict(project.environ)),
        (MIGRATION, read_env_file(project.migration_file)),
        (DOTENV, read_env_file(project.env_file)),
    )


def effective_environment(project: Project) -> dict[str, str]:
    """The environment the enhanced pipeline sees under the rollout precedence."""
    env: dict[str, str] = {}
    for _, values in layers(project):
        for key, value in values.items():
            env.setdefault(key, value)
    return env


@dataclass(frozen=True)
class Origin:
    name: str
    value: str | None
    source: str

    @property
    def shown(self) -> str:
        """The value fit for a terminal: secrets become set/(unset)."""
        if is_secret(self.name):
            return "set" if self.value else "(unset)"
        if self.value is None:
            return VARIABLES.get(self.name, ("(unset)", ""))[0]
        return self.value


def origin(project: Project, name: str) -> Origin:
    for source, values in layers(project):
        if name in values:
            return Origin(name, values[name], source)
    return Origin(name, None, DEFAULT)
