"""A test needing a system component skips without it locally, and fails in CI (KP_REQUIRE_SYSTEM_DEPS=1)."""

from __future__ import annotations

import pytest

from .conftest import require_system_dep


def test_a_missing_component_skips_with_the_reason(monkeypatch):
    monkeypatch.delenv("KP_REQUIRE_SYSTEM_DEPS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Nothing is not installed .*apt-get install -y nothing"):
        require_system_dep("Nothing", "kp-no-such-binary", "apt-get install -y nothing")


def test_a_missing_component_fails_when_ci_requires_it(monkeypatch):
    monkeypatch.setenv("KP_REQUIRE_SYSTEM_DEPS", "1")
    with pytest.raises(pytest.fail.Exception, match="KP_REQUIRE_SYSTEM_DEPS=1 but Nothing is not installed"):
        require_system_dep("Nothing", "kp-no-such-binary", "apt-get install -y nothing")


def test_a_present_component_is_found():
    assert require_system_dep("sh", "sh", "-").endswith("/sh")
