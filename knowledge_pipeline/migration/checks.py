"""Checks run as a list: each gives one line, passed (✓), failed (✗) or skipped.

A :class:`Check` is a name and a function returning the detail shown on
success; it raises :class:`CheckFailed` (or anything else) to fail and
:class:`CheckSkipped` to skip. Commands build their list from the functions
below, so tests can run any list, including ones with failing checks.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..config import Settings

MIN_PYTHON = (3, 11)
# distribution name (normalised) -> import name, where they differ
MODULE_NAMES: dict[str, str] = {
    "python-dotenv": "dotenv",
    "python-json-logger": "pythonjsonlogger",
    "notion-client": "notion_client",
    "lxml-html-clean": "lxml_html_clean",
    "prometheus-client": "prometheus_client",
    "pyyaml": "yaml",
    "beautifulsoup4": "bs4",
    "pillow": "PIL",
    "pytest-timeout": "pytest_timeout",
}
SCRIPT_MODULES: tuple[str, ...] = (
    "enrich",
    "enrich_rss",
    "enrich_enhanced",
    "enrich_rss_enhanced",
    "parallel_enricher",
    "structured_logging",
    "migrate_to_parallel",
)


class CheckFailed(Exception):
    """The check failed; the message is the one-line reason."""


class CheckSkipped(Exception):
    """The check does not apply; the message says why."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool | None  # None: skipped
    detail: str


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], str]


def run_checks(checks: Iterable[Check], secrets: Sequence[str] = ()) -> tuple[CheckResult, ...]:
    """Run every check (a failure does not stop the others); secrets are blanked from reasons."""
    results = []
    for check in checks:
        try:
            results.append(CheckResult(check.name, True, check.run()))
        except CheckSkipped as exc:
            results.append(CheckResult(check.name, None, _clean(str(exc), secrets)))
        except CheckFailed as exc:
            results.append(CheckResult(check.name, False, _clean(str(exc), secrets)))
        except Exception as exc:  # a check's own bug or an unexpected library error is a failure too
            results.append(CheckResult(check.name, False, _clean(f"{type(exc).__name__}: {exc}", secrets)))
    return tuple(results)


def _clean(text: str, secrets: Sequence[str]) -> str:
    line = " ".join(text.split())
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line[:500]


def python_version(minimum: tuple[int, int] = MIN_PYTHON) -> Check:
    def run() -> str:
        found = sys.version_info[:3]
        shown = ".".join(map(str, found))
        if found[:2] < minimum:
            raise CheckFailed(f"Python {shown} found, {minimum[0]}.{minimum[1]} or newer needed")
        return f"Python {shown}"

    return Check("python version", run)


def requirement_names(path: Path) -> list[str]:
    """Distribution names in a requirements file (following ``-r`` includes)."""
    names: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            names.extend(requirement_names(path.parent / line.split(None, 1)[1]))
            continue
        if line.startswith("-"):
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match:
            names.append(match.group(0))
    return list(dict.fromkeys(names))


def module_name(distribution: str) -> str:
    normalised = re.sub(r"[-_.]+", "-", distribution).lower()
    if normalised in MODULE_NAMES:
        return MODULE_NAMES[normalised]
    try:
        top = importlib.metadata.distribution(distribution).read_text("top_level.txt")
    except importlib.metadata.PackageNotFoundError:
        top = None
    if top and top.split():
        return top.split()[0]
    return normalised.replace("-", "_")


def dependencies(requirements: Path) -> Check:
    def run() -> str:
        try:
            names = requirement_names(requirements)
        except OSError as exc:
            raise CheckFailed(f"cannot read {requirements} ({exc.strerror})") from None
        missing = []
        for name in names:
            module = module_name(name)
            try:
                importlib.import_module(module)
            except Exception as exc:  # ImportError, or a broken install raising anything
                missing.append(f"{name} (import {module}: {type(exc).__name__}: {exc})")
        if missing:
            raise CheckFailed(
                f"not importable: {'; '.join(missing)}; install with: pip install -r {requirements.name}"
            )
        return f"{len(names)} packages from {requirements.name} importable"

    return Check("dependencies", run)


def configuration(load: Callable[[], Settings]) -> Check:
    def run() -> str:
        from ..errors import ConfigError

        try:
            settings = load()
        except ConfigError as exc:
            raise CheckFailed(str(exc)) from None
        return f"valid (store {settings.sources_backend}, enricher {settings.enricher})"

    return Check("configuration", run)


def writable_dir(label: str, path: Path) -> Check:
    def run() -> str:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise CheckFailed(f"{path} is not writable ({exc.strerror or exc})") from None
        return f"{path} writable"

    return Check(f"{label} writable", run)


def package_imports(package: str = "knowledge_pipeline") -> Check:
    def run() -> str:
        root = importlib.import_module(package)
        names = [package] + [
            m.name for m in pkgutil.walk_packages(root.__path__, package + ".") if not m.name.endswith("__main__")
        ]
        failed = []
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name} ({type(exc).__name__}: {exc})")
        if failed:
            raise CheckFailed("cannot import " + "; ".join(failed))
        return f"{len(names)} modules import"

    return Check(f"import {package}", run)


def script_import(root: Path, module: str) -> Check:
    """Import a top-level script as a module: its ``__main__`` block does not run."""

    def run() -> str:
        path = root / f"{module}.py"
        if not path.is_file():
            raise CheckFailed(f"{path.name} not found in {root}")
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise CheckFailed(f"{type(exc).__name__}: {exc}") from None
        return "imports"

    return Check(f"import {module}.py", run)


def script_imports(root: Path, modules: Iterable[str] = SCRIPT_MODULES) -> list[Check]:
    return [script_import(root, m) for m in modules]

