"""requirements.txt alone installs everything the runtime needs (a fresh `make run` has nothing else)."""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT


def _declared() -> list[Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]


def installed_closure() -> set[str]:
    """requirements.txt and, from the installed metadata, everything they require in turn."""
    seen: set[str] = set()
    todo = [r for r in _declared() if r.marker is None or r.marker.evaluate()]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(requirement.name) or []:
            child = Requirement(spec)
            if child.marker is None or child.marker.evaluate({"extra": ""}):
                todo.append(child)
    return seen


def test_the_runtime_needs_are_in_the_requirements_closure():
    closure = installed_closure()
    # cryptography: pypdf decrypts AES PDFs only with it; charset-normalizer: the web page charset detection
    for needed in ("cryptography", "charset-normalizer", "pypdf", "httpx", "trafilatura"):
        assert needed in closure, f"{needed} is not installed by requirements.txt"
