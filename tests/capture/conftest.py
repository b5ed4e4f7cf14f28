"""A real Dovecot per test (tests/fakes/dovecot.py), skipped with the reason when it is not installed."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.conftest import require_system_dep
from tests.fakes.dovecot import PASSWORD, USER, Dovecot

DOVECOT_INSTALL = "apt-get install -y dovecot-imapd"


def dovecot_binary() -> str:
    return require_system_dep("Dovecot", "dovecot", DOVECOT_INSTALL)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """Dovecot on loopback: implicit TLS on ``imaps_port``, STARTTLS on ``imap_port``, an empty INBOX."""
    with Dovecot(dovecot_binary()) as server:
        yield server


def imap_env(server: Dovecot, **overrides: object) -> dict[str, str]:
    """EMAIL_* settings for ``server`` over implicit TLS, trusting its CA."""
    env = {
        "EMAIL_IMAP_HOST": server.host,
        "EMAIL_IMAP_PORT": str(server.imaps_port),
        "EMAIL_IMAP_USER": USER,
        "EMAIL_IMAP_PASSWORD": PASSWORD,
        "EMAIL_IMAP_CA_FILE": str(server.ca_file),
        "EMAIL_WINDOW_DAYS": "0",
        "API_TIMEOUT": "10",
        "RETRY_ATTEMPTS": "1",
        "PARALLEL_RATE_LIMIT": "0",
    }
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env
