"""Run the entry points under the project's ``.venv`` when started by an interpreter without the dependencies.

``make run`` installs the requirements into ``.venv``; the README and the
operations guide say ``python3 enrich_rss.py ...``. When that ``python3``
lacks a requirement and ``.venv/bin/python`` exists, the entry point
replaces itself (``os.execv``) with the same command under ``.venv``. An
interpreter that has everything (your own virtualenv) is left alone.

Stdlib only, and importable by old Pythons: it runs before anything else
is imported, under whatever ``python3`` the user typed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

# The import names of requirements.txt (tests/test_requirements.py keeps the two in step).
REQUIRED_MODULES = (
    "openai", "notion_client", "feedparser", "httpx", "charset_normalizer", "pypdf", "cryptography",
    "pythonjsonlogger", "tenacity", "trafilatura", "lxml_html_clean", "tqdm", "dotenv", "prometheus_client",
    "plotly", "google.auth", "anthropic", "yaml", "starlette", "uvicorn", "jinja2",
)
_GUARD = "KNOWLEDGE_PIPELINE_REEXEC"
PROJECT_DIR = Path(__file__).resolve().parent.parent


def missing_modules() -> list[str]:
    return [name for name in REQUIRED_MODULES if not _importable(name)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # the parent package of a dotted name is missing
        return False


def use_project_venv(module: str | None = None) -> None:
    """Re-run this process under ``.venv/bin/python`` if the current interpreter lacks a requirement.

    ``module`` is the ``-m`` module name when the entry point is run as one
    (for Pythons older than 3.10, which have no ``sys.orig_argv``). Without
    ``.venv`` one line on stderr says how to install, exit code 1.
    """
    missing = missing_modules()
    if not missing:
        os.environ.pop(_GUARD, None)  # children started by another interpreter may re-run themselves too
        return
    python = PROJECT_DIR / ".venv" / "bin" / "python"
    if python.exists() and not os.environ.get(_GUARD) and not _running(python):
        os.environ[_GUARD] = "1"
        os.execv(str(python), [str(python), *_arguments(module)])
    sys.stderr.write(
        f"{Path(sys.argv[0]).name}: {sys.executable} lacks {', '.join(missing)}; run `make install` in "
        f"{PROJECT_DIR} (creates .venv, which the scripts then use) or `pip install -r requirements.txt`\n"
    )
    raise SystemExit(1)


def _running(python: Path) -> bool:
    return Path(sys.prefix).resolve() == python.parent.parent.resolve()


def _arguments(module: str | None) -> list[str]:
    original = getattr(sys, "orig_argv", None)
    if original:
        return list(original[1:])
    if module:
        return ["-m", module, *sys.argv[1:]]
    return list(sys.argv)
