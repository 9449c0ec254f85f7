"""kb.autoreply.mailbox against real IMAP servers: pymap in-process and Dovecot."""

from __future__ import annotations

import threading
import time

import pytest

from kb.autoreply.mailbox import Mailbox, MailboxAuthError, MailboxGone, MessageMissing, read_oauth2_token
from kb.errors import ConfigError


def make_mail(n: int, body: str = "My printer does not print.") -> bytes:
    """A small customer email."""
    return (f"From: Customer {n} <c{n}@example.com>\r\nTo: support@kb.example\r\n"
            f"Subject: Question {n}\r\nMessage-ID: <q{n}@example.com>\r\n\r\n{body}\r\n").encode()


@pytest.fixture(params=["pymap", "dovecot"])
def imap_server(request):
    """The same tests on both servers."""
    return request.getfixturevalue("pymap_server" if request.param == "pymap" else "dovecot_account")


@pytest.fixture
def mailbox(imap_server):
    """A connected Mailbox on the server's INBOX."""
    with Mailbox(imap_server.settings()) as box:
        yield box


def test_select_reports_uidvalidity_that_survives_reconnect(imap_server):
    with Mailbox(imap_server.settings()) as box:
        first = box.uidvalidity
        assert isinstance(first, int) and first > 0
    with Mailbox(imap_server.settings()) as box:
        assert box.select() == first


def test_new_uids_lists_only_uids_after_the_cursor(imap_server, mailbox):
    assert mailbox.new_uids(0) == []
    for n in range(3):
        imap_server.append(make_mail(n))
    uids = imap_server.uids()
    assert mailbox.new_uids(0) == uids
    assert mailbox.new_uids(uids[0]) == uids[1:]
    assert mailbox.new_uids(uids[-1]) == []  # "n:*" would still match the last message
    assert mailbox.new_uids(uids[-1] + 100) == []


def test_fetch_peeks_without_setting_seen(imap_server, mailbox):
    imap_server.append(make_mail(1))
    [uid] = mailbox.new_uids(0)
    raw, size = mailbox.fetch(uid, max_bytes=1_000_000)
    assert b"Message-ID: <q1@example.com>" in raw and b"My printer does not print." in raw
    assert size == len(raw)
    assert "\\Seen" not in imap_server.flags()[uid]


def test_fetch_of_a_large_message_reads_headers_and_the_start_of_the_body(imap_server, mailbox):
    imap_server.append(make_mail(2, body="start of the question " + "x" * 50_000))
    [uid] = mailbox.new_uids(0)
    raw, size = mailbox.fetch(uid, max_bytes=1000)
    assert size > 50_000
    assert raw.startswith(b"From: Customer 2")
    assert b"Subject: Question 2" in raw and b"start of the question" in raw
    assert 1000 < len(raw) < 1400  # headers + 1000 bytes of body
    assert "\\Seen" not in imap_server.flags()[uid]


def test_fetch_of_an_expunged_message_raises_message_missing(imap_server, mailbox):
    imap_server.append(make_mail(3))
    [uid] = mailbox.new_uids(0)
    with imap_server.client() as other:
        other.select_folder("INBOX")
        other.delete_messages([uid])
        other.expunge()
    mailbox.client.noop()
    with pytest.raises(MessageMissing):
        mailbox.fetch(uid, max_bytes=1000)


def test_mark_sets_a_keyword(imap_server, mailbox):
    imap_server.append(make_mail(4))
    [uid] = mailbox.new_uids(0)
    mailbox.mark(uid, keyword="kb-replied")
    assert "kb-replied" in imap_server.flags()[uid]


def test_mark_moves_to_a_new_folder_with_the_keyword(imap_server, mailbox):
    imap_server.append(make_mail(5))
    imap_server.append(make_mail(6))
    first, second = mailbox.new_uids(0)
    mailbox.mark(first, keyword="kb-skipped", move_to="kb/Skipped")
    assert imap_server.uids("INBOX") == [second]
    moved = imap_server.flags("kb/Skipped")
    assert len(moved) == 1 and "kb-skipped" in next(iter(moved.values()))
    assert b"Question 5" in imap_server.fetch_raw(next(iter(moved)), "kb/Skipped")


def test_mark_moves_with_copy_and_expunge_without_move_capability(imap_server, mailbox):
    imap_server.append(make_mail(7))
    imap_server.append(make_mail(8))
    first, second = mailbox.new_uids(0)
    original = mailbox.client.has_capability
    mailbox.client.has_capability = lambda name: False if name.upper() == "MOVE" else original(name)
    mailbox.mark(first, move_to="Person")
    assert imap_server.uids("INBOX") == [second]
    assert len(imap_server.uids("Person")) == 1


def test_mark_without_move_or_uidplus_never_expunges_other_deleted_mail(imap_server, mailbox):
    imap_server.append(make_mail(11))
    imap_server.append(make_mail(12))
    first, second = mailbox.new_uids(0)
    mailbox.client.add_flags([second], [b"\\Deleted"])  # a person deleted it; their client purges later
    original = mailbox.client.has_capability
    mailbox.client.has_capability = lambda name: False if name.upper() in ("MOVE", "UIDPLUS") else original(name)
    mailbox.mark(first, move_to="Person")
    assert imap_server.uids("INBOX") == [first, second]  # nothing expunged, theirs included
    assert "\\Deleted" in imap_server.flags("INBOX")[first]
    assert len(imap_server.uids("Person")) == 1


def test_append_stores_a_seen_copy_in_a_new_folder(imap_server, mailbox):
    mailbox.append("Sent", make_mail(9))
    flags = imap_server.flags("Sent")
    assert len(flags) == 1 and "\\Seen" in next(iter(flags.values()))
    assert mailbox.new_uids(0) == []  # the watched INBOX is untouched


def test_wait_returns_soon_after_another_client_appends(imap_server, mailbox):
    assert mailbox.has_idle
    timer = threading.Timer(0.3, imap_server.append, args=(make_mail(10),))
    started = time.monotonic()
    timer.start()
    try:
        assert mailbox.wait(10) is True
    finally:
        timer.join()
    assert time.monotonic() - started < 3
    assert len(mailbox.new_uids(0)) == 1  # the connection is usable after IDLE


def test_wait_times_out_without_news(mailbox):
    started = time.monotonic()
    assert mailbox.wait(0.5) is False
    assert 0.4 < time.monotonic() - started < 3
    assert mailbox.new_uids(0) == []


def test_wait_polls_when_the_server_has_no_idle(mailbox):
    original = mailbox.client.has_capability
    mailbox.client.has_capability = lambda name: False if name.upper() == "IDLE" else original(name)
    started = time.monotonic()
    assert mailbox.wait(0.3) is True  # without IDLE every poll may have brought mail
    assert time.monotonic() - started >= 0.3


def test_wrong_password_raises_auth_error(imap_server):
    with pytest.raises(MailboxAuthError, match="refused the login"):
        Mailbox(imap_server.settings(IMAP_PASSWORD="wrong")).connect()


def test_unreachable_server_raises_gone(imap_server):
    from tests.servers import free_port

    with pytest.raises(MailboxGone):
        Mailbox(imap_server.settings(IMAP_PORT=free_port())).connect()


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="KB_IMAP_SECURITY"):
        Mailbox({"IMAP_HOST": "localhost", "IMAP_SECURITY": "tls"})
    with pytest.raises(ConfigError, match="KB_IMAP_HOST"):
        Mailbox({})


def test_server_going_away_raises_gone_and_reconnect_works(pymap_server):
    pymap_server.append(make_mail(11))
    box = Mailbox(pymap_server.settings())
    box.connect()
    try:
        validity = box.uidvalidity
        pymap_server.restart(keep_data=True)
        with pytest.raises(MailboxGone):
            box.new_uids(0)
        box.connect()
        assert box.uidvalidity == validity and len(box.new_uids(0)) == 1
    finally:
        box.close()


def test_server_stopping_during_idle_raises_gone(pymap_server):
    with Mailbox(pymap_server.settings()) as box:
        timer = threading.Timer(0.3, pymap_server.stop)
        timer.start()
        try:
            with pytest.raises(MailboxGone):
                box.wait(10)
        finally:
            timer.join()


def test_flag_change_by_another_client_during_idle_is_not_new_mail(pymap_server):
    """pymap's flag push once made imapclient's idle_check raise AbortError; wait() must not trip on it."""
    pymap_server.append(make_mail(12))
    with Mailbox(pymap_server.settings()) as box:
        [uid] = box.new_uids(0)

        def flag_it() -> None:
            with pymap_server.client() as other:
                other.select_folder("INBOX")
                other.add_flags([uid], ["\\Flagged"])

        timer = threading.Timer(0.2, flag_it)
        timer.start()
        try:
            assert box.wait(1) is False
        finally:
            timer.join()
        assert box.new_uids(0) == [uid]


def test_repeated_idle_pushes_are_all_read_cleanly(pymap_server):
    """New-mail pushes (EXISTS, RECENT, FETCH FLAGS) arrive split across reads; none may abort the connection."""
    with Mailbox(pymap_server.settings()) as box:
        for n in range(5):
            timer = threading.Timer(0.05, pymap_server.append, args=(make_mail(20 + n),))
            timer.start()
            try:
                assert box.wait(5) is True
            finally:
                timer.join()
            assert len(box.new_uids(0)) == n + 1


# --- TLS (Dovecot's self-signed certificate) ---------------------------------------------------

def test_ssl_connection_with_the_trusted_certificate(dovecot_account):
    dovecot_account.append(make_mail(13))
    settings = dovecot_account.settings(IMAP_SECURITY="ssl", IMAP_PORT=dovecot_account.ssl_port)
    with Mailbox(settings, ssl_context=dovecot_account.ssl_context()) as box:
        assert box.client.socket().version().startswith("TLS")
        assert len(box.new_uids(0)) == 1


def test_starttls_upgrades_the_plain_port(dovecot_account):
    with Mailbox(dovecot_account.settings(IMAP_SECURITY="starttls"), ssl_context=dovecot_account.ssl_context()) as box:
        assert box.client.socket().version().startswith("TLS")
        assert box.new_uids(0) == []


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_untrusted_certificate_is_refused(dovecot_account, security):
    port = dovecot_account.ssl_port if security == "ssl" else dovecot_account.port
    with pytest.raises(MailboxGone, match="certificate verify failed"):
        Mailbox(dovecot_account.settings(IMAP_SECURITY=security, IMAP_PORT=port)).connect()


# --- OAuth2 (XOAUTH2, served by pymap with a known token) ---------------------------------------

@pytest.fixture
def oauth2_server():
    """pymap offering AUTH=XOAUTH2 that accepts the bearer token "ya29.test-token"."""
    from tests.mailservers import PymapServer

    server = PymapServer(oauth2_token="ya29.test-token")
    server.start()
    yield server
    server.stop()


def test_xoauth2_login_with_the_token_from_a_file(oauth2_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("ya29.test-token\n")
    settings = oauth2_server.settings(IMAP_PASSWORD="", IMAP_OAUTH2_TOKEN_FILE=str(token_file))
    with Mailbox(settings) as box:
        assert box.uidvalidity > 0
    token_file.write_text("ya29.expired\n")  # re-read at each connect: a refreshed file is picked up
    with pytest.raises(MailboxAuthError, match="OAuth2 token"):
        Mailbox(settings).connect()


def test_xoauth2_login_with_the_token_from_a_command(oauth2_server, tmp_path):
    import sys

    command = f"{sys.executable} -c \"print('ya29.test-token')\""
    with Mailbox(oauth2_server.settings(IMAP_PASSWORD="", IMAP_OAUTH2_TOKEN_COMMAND=command)) as box:
        assert box.new_uids(0) == []


def test_token_command_failure_is_an_auth_error_with_its_message(tmp_path):
    import sys

    command = f"{sys.executable} -c \"import sys; sys.exit('refresh token revoked')\""
    with pytest.raises(MailboxAuthError, match="refresh token revoked"):
        read_oauth2_token({"IMAP_OAUTH2_TOKEN_COMMAND": command})
    with pytest.raises(MailboxAuthError, match="Cannot read the OAuth2 token file"):
        read_oauth2_token({"IMAP_OAUTH2_TOKEN_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(MailboxAuthError, match="empty"):
        read_oauth2_token({"IMAP_OAUTH2_TOKEN_FILE": str(tmp_path / "empty")})
    assert read_oauth2_token({}) is None


def test_xoauth2_on_dovecot_checks_the_token_with_the_provider(dovecot_server, tmp_path):
    """Dovecot's oauth2 passdb asks a (local) introspection endpoint, as with a real provider."""
    alice, bob = dovecot_server.new_account(), dovecot_server.new_account()
    alice.append(make_mail(14))
    token_file = tmp_path / "token"
    token_file.write_text(alice.oauth2_token)
    settings = alice.settings(IMAP_PASSWORD="", IMAP_SECURITY="starttls", IMAP_OAUTH2_TOKEN_FILE=str(token_file))
    with Mailbox(settings, ssl_context=alice.ssl_context()) as box:
        assert len(box.new_uids(0)) == 1
    token_file.write_text(bob.oauth2_token)  # a valid token, but of another user
    with pytest.raises(MailboxAuthError, match="OAuth2 token"):
        Mailbox(settings, ssl_context=alice.ssl_context()).connect()
