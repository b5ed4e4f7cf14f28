"""Run ``python3 -m knowledge_pipeline`` in-process with a clean environment, in a temp dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from knowledge_pipeline.__main__ import main
from tests.conftest import _SCRUBBED


@dataclass
class Done:
    code: int
    out: str
    err: str


Cli = Callable[..., Done]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("list", "--limit", "3", columns=200, SOURCES_DB_PATH=...)`` -> exit code, stdout, stderr."""

    def run(*args: str, columns: int = 120, **env: str) -> Done:
        for name in _SCRUBBED:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("COLUMNS", str(columns))
        monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Done(code, captured.out, captured.err)

    return run
