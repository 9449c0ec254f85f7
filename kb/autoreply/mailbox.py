"""The support mailbox over IMAP: the only module that imports imapclient.

One ``Mailbox`` is one connection to one folder. Connection trouble of any kind (a dropped
socket, a TLS error, imapclient's ``AbortError``) becomes ``MailboxGone``, so the worker has one
thing to catch before it reconnects with backoff; a command the server refuses is ``MailboxError``.
``wait`` does IDLE without imapclient's ``idle_check`` (see ``wait`` for why).
"""

from __future__ import annotations

import imaplib
import select
import shlex
import ssl
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from imapclient import IMAPClient

from kb.config import SETTINGS
from kb.errors import ConfigError, KBError

MAX_IDLE_SECONDS = 25 * 60  # RFC 2177: servers may drop an IDLE after 29 minutes; stay well under
RECHECK_SECONDS = 0.5  # after this much of an IDLE that began right after work, look for new UIDs again
TIMEOUT_SECONDS = 60  # socket timeout of each command; IDLE waits poll the socket with their own timeout
SECURITY_MODES = ("ssl", "starttls", "none")
_DEFAULTS = {setting.name: setting.default for setting in SETTINGS}


class MailboxError(KBError):
    """The IMAP server refused a command (NO/BAD)."""


class MailboxGone(MailboxError):
    """The connection to the IMAP server is lost or could not be made; reconnect later."""


class MailboxAuthError(MailboxGone):
    """The IMAP server refused the login (wrong password, expired or missing OAuth2 token)."""


class MessageMissing(MailboxError):
    """The message was expunged (by another client) before kb could read it."""


def setting(settings: Mapping[str, Any], name: str) -> Any:
    """A setting from ``settings``, else its documented default."""
    value = settings.get(name)
    return _DEFAULTS.get(name) if value is None else value


@contextmanager
def connection_errors(action: str) -> Iterator[None]:
    """Turn transport failures into MailboxGone and server refusals into MailboxError."""
    try:
        yield
    except MailboxError:
        raise
    except (imaplib.IMAP4.abort, OSError, EOFError) as exc:  # abort: socket EOF, AbortError in IDLE
        raise MailboxGone(f"IMAP connection lost while trying to {action}: {exc}") from exc
    except imaplib.IMAP4.error as exc:
        raise MailboxError(f"The IMAP server refused to {action}: {exc}") from exc


def read_oauth2_token(settings: Mapping[str, Any]) -> str | None:
    """The OAuth2 access token from IMAP_OAUTH2_TOKEN_FILE or IMAP_OAUTH2_TOKEN_COMMAND, else None."""
    path = setting(settings, "IMAP_OAUTH2_TOKEN_FILE")
    command = setting(settings, "IMAP_OAUTH2_TOKEN_COMMAND")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MailboxAuthError(f"Cannot read the OAuth2 token file {path} (KB_IMAP_OAUTH2_TOKEN_FILE): {exc}") from exc
        source = f"the file {path}"
    elif command:
        token = _run_token_command(command)
        source = "KB_IMAP_OAUTH2_TOKEN_COMMAND"
    else:
        return None
    if not token:
        raise MailboxAuthError(f"The OAuth2 token from {source} is empty; refresh it and kb retries.")
    return token


def _run_token_command(command: str) -> str:
    """Run the configured token command (no shell) and return its first output line."""
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise MailboxAuthError(f"The OAuth2 token command failed to run ({command!r}): {exc}") from exc
    if done.returncode != 0:
        raise MailboxAuthError(f"The OAuth2 token command exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if lines else ""


class Mailbox:
    """A connection to the watched folder: list new UIDs, fetch without \\Seen, mark, append, wait."""

    def __init__(self, settings: Mapping[str, Any], *, client_factory: Callable[..., Any] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.host = setting(settings, "IMAP_HOST")
        self.port = int(setting(settings, "IMAP_PORT"))
        self.security = str(setting(settings, "IMAP_SECURITY")).lower()
        self.folder = setting(settings, "IMAP_FOLDER") or "INBOX"
        if self.security not in SECURITY_MODES:
            raise ConfigError(f"KB_IMAP_SECURITY must be ssl, starttls or none, not {self.security!r}.")
        if not self.host:
            raise ConfigError("Set KB_IMAP_HOST to the support mailbox's IMAP server.")
        self.client_factory = client_factory or IMAPClient
        self.ssl_context = ssl_context
        self.client: Any = None
        self.uidvalidity: int | None = None

    def __enter__(self) -> Mailbox:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection (with TLS as configured), log in and select the folder."""
        self.close()
        context = self.ssl_context or ssl.create_default_context()
        with connection_errors(f"connect to {self.host}:{self.port}"):
            self.client = self.client_factory(self.host, port=self.port, ssl=self.security == "ssl",
                                              ssl_context=context, timeout=TIMEOUT_SECONDS)
        try:
            with connection_errors("start TLS"):
                if self.security == "starttls":
                    self.client.starttls(context)
            self._login()
            self.select()
        except BaseException:
            self.close()
            raise

    def _login(self) -> None:
        """Log in with the OAuth2 token when one is configured, else with the password."""
        user = setting(self.settings, "IMAP_USER")
        token = read_oauth2_token(self.settings)
        try:
            with connection_errors("log in"):
                if token is not None:
                    self.client.oauth2_login(user, token)
                else:
                    self.client.login(user, setting(self.settings, "IMAP_PASSWORD"))
        except MailboxGone:
            raise
        except MailboxError as exc:  # NO/BAD to LOGIN or AUTHENTICATE: the credentials are wrong
            how = "OAuth2 token" if token is not None else "password (KB_IMAP_PASSWORD)"
            raise MailboxAuthError(f"The IMAP server refused the login of {user!r} with the {how}: "
                                   f"{exc.__cause__}") from exc

    def close(self) -> None:
        """Log out; a connection that is already broken is just closed."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # a dead connection cannot log out; still release the socket
            try:
                client.shutdown()
            except Exception:  # the socket is already gone
                pass

    def select(self) -> int:
        """Select the watched folder (read-write) and return its UIDVALIDITY."""
        with connection_errors(f"open the folder {self.folder}"):
            info = self.client.select_folder(self.folder)
        self.uidvalidity = int(info[b"UIDVALIDITY"])
        return self.uidvalidity

    @property
    def has_idle(self) -> bool:
        """True when the server supports IDLE (else the worker polls)."""
        with connection_errors("read the capabilities"):
            return bool(self.client.has_capability("IDLE"))

    def new_uids(self, after_uid: int) -> list[int]:
        """UIDs greater than ``after_uid``, ascending."""
        with connection_errors("search for new mail"):
            self.client.noop()  # lets the server announce new messages first (pymap's SEARCH sees only those)
            found = self.client.search(["UID", f"{int(after_uid) + 1}:*"])
        return sorted(uid for uid in found if uid > after_uid)  # "n:*" also matches the last UID when n > max

    def fetch(self, uid: int, max_bytes: int) -> tuple[bytes, int]:
        """(raw message, its full size), never setting \\Seen; only the first ``max_bytes`` of a huge body."""
        with connection_errors(f"read message UID {uid}"):
            size_data = self.client.fetch([uid], ["RFC822.SIZE"]).get(uid)
            if not size_data or b"RFC822.SIZE" not in size_data:
                raise MessageMissing(f"Message UID {uid} is no longer in {self.folder}.")
            size = int(size_data[b"RFC822.SIZE"])
            if size <= max_bytes:
                data = self.client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
                raw = data.get(b"BODY[]")
            else:
                part = f"BODY.PEEK[TEXT]<0.{int(max_bytes)}>"
                data = self.client.fetch([uid], ["BODY.PEEK[HEADER]", part]).get(uid, {})
                header, text = data.get(b"BODY[HEADER]"), data.get(b"BODY[TEXT]<0>")
                raw = None if header is None else header + (text or b"")
        if raw is None:
            raise MessageMissing(f"Message UID {uid} is no longer in {self.folder}.")
        return bytes(raw), size

    def mark(self, uid: int, keyword: str | None = None, move_to: str | None = None) -> None:
        """Add ``keyword`` to the message and/or move it to the folder ``move_to``."""
        if keyword:
            with connection_errors(f"set the keyword {keyword} on UID {uid}"):
                self.client.add_flags([uid], [keyword], silent=True)
        if move_to:
            self._ensure_folder(move_to)
            with connection_errors(f"move UID {uid} to {move_to}"):
                if self.client.has_capability("MOVE"):
                    self.client.move([uid], move_to)
                else:  # RFC 6851 fallback
                    self.client.copy([uid], move_to)
                    self.client.add_flags([uid], [b"\\Deleted"], silent=True)
                    # Only UID EXPUNGE (UIDPLUS) removes just this message; a plain EXPUNGE would
                    # also purge what other people flagged deleted, so without it the copy stays
                    # flagged \Deleted for the mail client to purge.
                    if self.client.has_capability("UIDPLUS"):
                        self.client.expunge([uid])

    def append(self, folder: str, message_bytes: bytes, flags: tuple = ("\\Seen",)) -> None:
        """Store a message in ``folder`` (created when missing), e.g. the copy of a reply in Sent."""
        self._ensure_folder(folder)
        with connection_errors(f"store a message in {folder}"):
            self.client.append(folder, message_bytes, flags=flags)

    def _ensure_folder(self, folder: str) -> None:
        """Create ``folder`` unless it exists."""
        with connection_errors(f"create the folder {folder}"):
            if not self.client.folder_exists(folder):
                self.client.create_folder(folder)

    def wait(self, timeout: float, after_uid: int | None = None) -> bool:
        """Wait up to ``timeout`` seconds for new mail (IDLE, else a plain sleep); True if some may have come.

        With ``after_uid``, mail past that UID is looked for before IDLE starts (it came while the
        caller was busy, and its announcement came during other commands, where it is lost), and
        once more after the first RECHECK_SECONDS: a server may miss mail that arrives just as IDLE
        starts (Dovecot then announces it only at its own 30 s check).
        """
        timeout = max(0.0, min(float(timeout), MAX_IDLE_SECONDS))
        if not self.has_idle:
            time.sleep(timeout)
            return True
        deadline = time.monotonic() + timeout
        for length in ((RECHECK_SECONDS, timeout) if after_uid is not None else (timeout,)):
            if after_uid is not None and self.new_uids(after_uid):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._idle(min(length, remaining)):
                return True
        return False

    def _idle(self, timeout: float) -> bool:
        """One IDLE of at most ``timeout`` seconds, ended at the server's first push; True if it announced mail."""
        with connection_errors("wait for new mail (IDLE)"):
            announced = self._start_idle()
            if not announced:
                _readable(self.client.socket(), timeout)
            # End IDLE at the first push and read it with idle_done, which reads blocking: imapclient's
            # idle_check reads a non-blocking socket and can split a response line, raising AbortError.
            _text, responses = self.client.idle_done()
        return announced or any(_announces_mail(item) for item in responses)

    def _start_idle(self) -> bool:
        """Send IDLE and read up to the server's go-ahead; True if it announced mail before that.

        imapclient's idle() treats any response before the "+" as an error, but a server may send
        the EXISTS of mail that has just come first (RFC 3501 allows untagged data at any time).
        """
        imap = self.client._imap  # imapclient keeps imaplib's connection here; its own idle() uses it too
        tag = self.client._idle_tag = imap._command("IDLE")
        announced = False
        while (line := imap._get_response()) is not None:  # None: the "+" continuation
            if imap.tagged_commands.get(tag):
                raise imaplib.IMAP4.error(f"IDLE refused: {imap.tagged_commands.pop(tag)}")
            announced = announced or _line_announces_mail(line)
        return announced


def _readable(sock: Any, timeout: float) -> bool:
    """Wait until the server sent something (or TLS holds decrypted bytes), at most ``timeout`` s.

    poll, not epoll: a socket closed meanwhile (Worker.interrupt from a signal handler) must end
    the wait at once (POLLNVAL), where epoll would silently forget it and sleep on."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    if not hasattr(select, "poll"):
        return bool(select.select([sock], [], [], timeout)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(timeout * 1000))


def _line_announces_mail(line: bytes) -> bool:
    """True for a raw untagged "* n EXISTS" or "* n RECENT" line."""
    parts = bytes(line).split()
    return len(parts) >= 3 and parts[0] == b"*" and parts[2].upper() in (b"EXISTS", b"RECENT")


def _announces_mail(response: Any) -> bool:
    """True for an untagged EXISTS or RECENT response."""
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")
