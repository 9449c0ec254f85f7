"""Dovecot for the whole test session; each test takes a fresh user (see ../shared/TEST-SERVERS.md)."""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from tests.mailservers.imap import ImapHelper
from tests.mailservers.oauth2 import DOVECOT_OAUTH2_CONF, TokenIntrospection
from tests.mailservers.tls import make_certificate
from tests.servers import free_port

DOVECOT_INSTALL_HINT = "install Debian's `dovecot-imapd` (apt-get install dovecot-imapd) or run `bash scripts/test` as root"

POOL_SIZE = 1000  # Dovecot users made at start; each test takes a fresh one

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/log
info_log_path = {dir}/log
{users}
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {dir}/oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {ssl_port}
    ssl = yes
  }}
}}
"""


@dataclass
class DovecotServer:
    """A Dovecot process serving Maildirs under ``folder``: a pool of password users made at start,
    XOAUTH2 checked against a local token introspection endpoint."""

    folder: Path
    port: int = field(default_factory=free_port)
    ssl_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    _secret: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _next_user: int = 0
    _introspection: TokenIntrospection | None = None

    @property
    def ca_file(self) -> str:
        """The self-signed certificate (for 127.0.0.1 and localhost) clients trust for IMAPS."""
        return str(self.folder / "cert.pem")

    def start(self) -> None:
        """Write the config and a certificate, start ``dovecot -F`` and wait for the port."""
        make_certificate(self.folder)
        mail = self.folder / "mail"
        mail.mkdir()
        owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        os.chown(mail, owner.pw_uid, owner.pw_gid)
        (self.folder / "passwd").write_text("".join(
            f"user{n}:{{PLAIN}}pw-{self._secret}-{n}\n" for n in range(1, POOL_SIZE + 1)))
        users = "" if os.geteuid() == 0 else (f"default_internal_user = {owner.pw_name}\n"
                                              f"default_login_user = {owner.pw_name}")
        conf = DOVECOT_CONF.format(dir=self.folder, users=users, uid=owner.pw_uid, gid=owner.pw_gid,
                                   port=self.port, ssl_port=self.ssl_port)
        (self.folder / "dovecot.conf").write_text(conf)
        self._introspection = TokenIntrospection(self.owner_of_token)
        self._introspection.start()
        (self.folder / "oauth2.conf.ext").write_text(DOVECOT_OAUTH2_CONF.format(url=self._introspection.url))
        self.process = subprocess.Popen([shutil.which("dovecot"), "-F", "-c", str(self.folder / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.process, self.log_tail)

    def log_tail(self) -> str:
        """The end of Dovecot's log, for error messages."""
        log = self.folder / "log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def new_account(self) -> DovecotAccount:
        """An account whose mailbox no test used yet (users are made up front: Dovecot caches
        the passwd-file by its mtime in whole seconds, so adding users while it runs is flaky)."""
        self._next_user += 1
        if self._next_user > POOL_SIZE:
            raise RuntimeError(f"more than {POOL_SIZE} Dovecot accounts used in one session; raise POOL_SIZE")
        return DovecotAccount(self, user=f"user{self._next_user}", password=f"pw-{self._secret}-{self._next_user}")

    def owner_of_token(self, token: str) -> str | None:
        """The user an OAuth2 access token belongs to (tokens are "tok-SECRET-N" for userN)."""
        prefix = f"tok-{self._secret}-"
        number = token[len(prefix):] if token.startswith(prefix) else ""
        return f"user{number}" if number.isdigit() and 1 <= int(number) <= POOL_SIZE else None

    def stop(self) -> None:
        """SIGTERM and wait; Dovecot stops its children itself."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None
        if self._introspection is not None:
            self._introspection.stop()
            self._introspection = None


@dataclass
class DovecotAccount(ImapHelper):
    """One user of the session's Dovecot, with an empty mailbox."""

    server: DovecotServer
    user: str
    password: str
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        """The plain IMAP port (use ``ssl_port`` with ``ca_file`` for IMAPS)."""
        return self.server.port

    @property
    def ssl_port(self) -> int:
        """The IMAPS port."""
        return self.server.ssl_port

    @property
    def oauth2_token(self) -> str:
        """An access token Dovecot accepts for this user with XOAUTH2."""
        return f"tok-{self.server._secret}-{self.user.removeprefix('user')}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the server's self-signed certificate."""
        return ssl.create_default_context(cafile=self.server.ca_file)


def wait_for_port(port: int, process: subprocess.Popen, log_tail, timeout: float = 10.0) -> None:
    """Block until something accepts connections on ``port``; fail with the log if the process dies."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"the server exited with {process.returncode}:\n{err}\n{log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s:\n{log_tail()}")


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """A Dovecot IMAP server (plain and IMAPS) for the whole test session; skipped if not installed."""
    if shutil.which("dovecot") is None or shutil.which("openssl") is None:
        pytest.skip(f"Dovecot tests skipped: `dovecot` or `openssl` not found; {DOVECOT_INSTALL_HINT}")
    folder = Path(tempfile.mkdtemp(prefix="kb-dovecot-"))
    folder.chmod(0o755)  # the mail user (nobody) must reach its Maildir below
    server = DovecotServer(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def dovecot_account(dovecot_server: DovecotServer) -> DovecotAccount:
    """A fresh Dovecot user with an empty INBOX for one test."""
    return dovecot_server.new_account()
