"""The read-only IMAP session against a real Dovecot: TLS, STARTTLS, clear text only on loopback, PEEK."""

from __future__ import annotations

import imaplib
import socket
import ssl
from datetime import date, datetime, timedelta, timezone

import pytest

from knowledge_pipeline.capture.imap import (
    ImapConfig,
    ImapError,
    ImapMailbox,
    _fetch_parts,
    _uid_set,
    mailbox_name,
)
from tests.capture.conftest import dovecot_binary
from tests.data import newsletters
from tests.fakes.dovecot import PASSWORD, USER, Dovecot, non_loopback_address


def config(server: Dovecot, **changes) -> ImapConfig:
    values = dict(host=server.host, port=server.imaps_port, implicit_tls=True, user=USER, password=PASSWORD,
                  ca_file=server.ca_file, timeout=5.0)
    values.update(changes)
    return ImapConfig(**values)


def error_of(cfg: ImapConfig) -> ImapError:
    mailbox = ImapMailbox(cfg)
    with pytest.raises(ImapError) as info:
        mailbox.connect()
    mailbox.close()
    return info.value


def test_implicit_tls_search_headers_and_bodies(dovecot):
    dovecot.deliver(newsletters.substack())
    dovecot.deliver(newsletters.beehiiv())
    mailbox = ImapMailbox(config(dovecot))
    try:
        mailbox.connect()
        uids = mailbox.search(None)
        headers = mailbox.headers(uids)
        assert uids == [1, 2] and [h.uid for h in headers] == [1, 2]
        assert headers[0].size == len(newsletters.substack())
        assert b"Message-ID: <20250114130501.3.5c1e8a9f0b2d4e6f@mg-d1.substack.com>" in headers[0].header
        assert b"<html" not in headers[0].header, "only the header fields, no body"
        assert mailbox.body(2, 1_000_000) == newsletters.beehiiv()
        assert mailbox.search('FROM "substack.com"') == [1]
    finally:
        mailbox.close()
    assert ", TLS," in dovecot.log()


def test_nothing_is_marked_read_and_the_folder_is_examined_not_selected(dovecot):
    dovecot.deliver(newsletters.substack())
    dovecot.deliver(newsletters.mailchimp(), seen=True)
    before = dovecot.flags()
    mailbox = ImapMailbox(config(dovecot))
    try:
        mailbox.connect()
        for uid in mailbox.search(None):
            mailbox.body(uid, 1_000_000)
        conn = mailbox._conn
        assert conn is not None and conn.is_readonly, "EXAMINE answers [READ-ONLY]"
        conn.uid("STORE", "1:*", "+FLAGS", r"(\Seen \Deleted)")  # what a bug would do: ignored read-only
        conn.select("INBOX")  # read-write, to show that the body fetch itself (PEEK) sets no flag either
        mailbox.body(1, 1_000_000)
        conn.close()
    finally:
        mailbox.close()
    assert dovecot.flags() == before and sorted(before.values()) == ["", "S"]
    check = imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port,
                              ssl_context=ssl.create_default_context(cafile=str(dovecot.ca_file)))
    check.login(USER, PASSWORD)
    check.select("INBOX", readonly=True)
    _, data = check.uid("FETCH", "1:*", "(FLAGS)")
    check.logout()
    assert [b"\\Seen" in line for line in data] == [False, True]


def test_search_window_uses_the_arrival_date(dovecot):
    old = datetime.now(timezone.utc) - timedelta(days=30)
    dovecot.deliver(newsletters.substack(), received=old)
    dovecot.deliver(newsletters.beehiiv())
    mailbox = ImapMailbox(config(dovecot))
    try:
        assert mailbox.search(None, since=date.today() - timedelta(days=7)) == [2]
        assert mailbox.headers([1])[0].internal_date == old.replace(microsecond=0)
    finally:
        mailbox.close()


def test_starttls_on_the_plain_port_is_verified_and_encrypted(dovecot):
    dovecot.deliver(newsletters.substack())
    mailbox = ImapMailbox(config(dovecot, port=dovecot.imap_port, implicit_tls=False))
    try:
        assert mailbox.search(None) == [1]
    finally:
        mailbox.close()
    assert ", TLS," in dovecot.log()
    untrusted = error_of(config(dovecot, port=dovecot.imap_port, implicit_tls=False, ca_file=None))
    assert untrusted.code == "tls_untrusted"


def test_an_untrusted_certificate_is_one_clear_line(dovecot):
    error = error_of(config(dovecot, ca_file=None))
    message = str(error)
    assert error.code == "tls_untrusted" and not error.retryable and "\n" not in message
    assert f"TLS certificate of {dovecot.host}:{dovecot.imaps_port} is not trusted" in message
    assert "EMAIL_IMAP_CA_FILE" in message
    assert "Login:" not in dovecot.log(), "no credentials were sent"


def test_a_wrong_password_is_one_clear_line_without_the_password(dovecot):
    error = error_of(config(dovecot, password="hunter2-wrong"))
    message = str(error)
    assert error.code == "auth_failed" and not error.retryable and "\n" not in message
    assert message.startswith(f"IMAP login as {USER} on {dovecot.host}:{dovecot.imaps_port} failed")
    assert "AUTHENTICATIONFAILED" in message and "app password" in message
    assert "hunter2" not in message and PASSWORD not in message


def test_a_missing_folder_is_one_line_naming_the_folders_there_are(dovecot):
    dovecot.create_folder("Newsletters")
    error = error_of(config(dovecot, folder="Newsleters"))
    message = str(error)
    assert error.code == "folder_not_found" and "\n" not in message
    assert "'Newsleters' not found" in message and "one of: INBOX, Newsletters" in message


def test_a_folder_name_with_spaces_and_accents(dovecot):
    dovecot.create_folder("Lettres d&AOk-actualit&AOk-")  # Maildir keeps names in modified UTF-7
    dovecot.deliver(newsletters.mailchimp(), folder="Lettres d&AOk-actualit&AOk-")
    mailbox = ImapMailbox(config(dovecot, folder="Lettres d\u00e9actualit\u00e9"))
    try:
        assert mailbox.search(None) == [1]
    finally:
        mailbox.close()


def test_modified_utf7_names():
    assert mailbox_name("INBOX") == '"INBOX"'
    assert mailbox_name("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    assert mailbox_name('A&B "x"') == '"A&-B \\"x\\""'


def test_implicit_tls_against_a_plain_port_says_which_port_to_use(dovecot):
    error = error_of(config(dovecot, port=dovecot.imap_port))
    assert error.code == "tls_error" and "993" in str(error) and "\n" not in str(error)


def test_a_closed_port_is_a_retryable_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = error_of(ImapConfig("127.0.0.1", port, True, USER, PASSWORD, timeout=2))
    assert error.retryable and error.code == "connection_error"


def test_a_broken_connection_is_dropped_and_the_next_call_reconnects(dovecot):
    dovecot.deliver(newsletters.substack())
    mailbox = ImapMailbox(config(dovecot))
    try:
        assert mailbox.search(None) == [1]
        mailbox._conn.sock.shutdown(socket.SHUT_RDWR)
        with pytest.raises(ImapError) as info:
            mailbox.search(None)
        assert info.value.retryable
        assert mailbox.search(None) == [1]
    finally:
        mailbox.close()


@pytest.fixture
def plain_dovecot():
    with Dovecot(dovecot_binary(), tls=False) as server:
        yield server


def test_clear_text_is_used_on_loopback_when_the_server_has_no_tls(plain_dovecot):
    plain_dovecot.deliver(newsletters.substack())
    mailbox = ImapMailbox(config(plain_dovecot, port=plain_dovecot.imap_port, implicit_tls=False))
    try:
        assert mailbox.search(None) == [1]
    finally:
        mailbox.close()
    assert "Login: user=<reader>" in plain_dovecot.log() and ", TLS," not in plain_dovecot.log()


def test_clear_text_off_loopback_is_refused_before_the_password_is_sent():
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to listen on")
    with Dovecot(dovecot_binary(), tls=False, listen=address) as server:
        error = error_of(config(server, port=server.imap_port, implicit_tls=False))
        assert error.code == "tls_required" and "\n" not in str(error)
        assert f"{address}:{server.imap_port} does not offer STARTTLS" in str(error)
        assert "Login:" not in server.log() and "auth failed" not in server.log()


def test_fetch_answers_in_any_item_order():
    data = [(b'1 (UID 7 RFC822.SIZE 10 BODY[HEADER.FIELDS (SUBJECT)] {9}', b"Subject:x"), b")",
            (b"2 (BODY[HEADER.FIELDS (SUBJECT)] {9}", b"Subject:y"), b" UID 9 RFC822.SIZE 12)",
            b"3 (FLAGS (\\Seen) UID 10)"]
    parts = list(_fetch_parts(data))
    assert parts[0] == (b"1 (UID 7 RFC822.SIZE 10 BODY[HEADER.FIELDS (SUBJECT)] {9} )", b"Subject:x")
    assert parts[1][1] == b"Subject:y" and b"UID 9" in parts[1][0]
    assert parts[2] == (b"3 (FLAGS (\\Seen) UID 10)", None)
    assert _uid_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
