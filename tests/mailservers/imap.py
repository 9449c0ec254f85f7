"""IMAP test servers' shared client side, and pymap's in-memory server in the test process."""

from __future__ import annotations

import asyncio
import threading
from argparse import Namespace
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Iterator

import pytest
from imapclient import IMAPClient

from tests.servers import free_port


class ImapHelper:
    """Test-side access to a mailbox: what another mail client or the MTA would do."""

    host: str
    port: int
    user: str
    password: str

    def client(self) -> IMAPClient:
        """A logged-in imapclient connection (the caller logs out)."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def settings(self, **overrides) -> dict:
        """kb settings pointing Mailbox at this server (plain IMAP, password login)."""
        values = {"IMAP_HOST": self.host, "IMAP_PORT": self.port, "IMAP_USER": self.user,
                  "IMAP_PASSWORD": self.password, "IMAP_SECURITY": "none", "IMAP_FOLDER": "INBOX"}
        values.update(overrides)
        return values

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple = ()) -> int | None:
        """Deliver a message into ``folder`` (created when missing); its UID when the server says."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=flags)
        return _appended_uid(response)

    def uids(self, folder: str = "INBOX") -> list[int]:
        """All UIDs in ``folder``."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags (as str) of every message in ``folder``."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {uid: {f.decode() if isinstance(f, bytes) else str(f) for f in data[b"FLAGS"]}
                for uid, data in fetched.items()}

    def fetch_raw(self, uid: int, folder: str = "INBOX") -> bytes:
        """The whole message (peeked, so \\Seen is not set by the test itself)."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            return client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]

    def folders(self) -> list[str]:
        """Names of all folders of the user."""
        with self.client() as client:
            return [name for _flags, _delim, name in client.list_folders()]


def _appended_uid(response: bytes | None) -> int | None:
    """The UID from an APPENDUID response code (RFC 4315), if any."""
    text = (response or b"").decode(errors="replace")
    if "APPENDUID" not in text:
        return None
    try:
        return int(text.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
    except (IndexError, ValueError):
        return None


@dataclass
class PymapServer(ImapHelper):
    """pymap's dict backend served from a thread; ``restart`` keeps or drops the data."""

    user: str = "alice"
    password: str = "secret"
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    oauth2_token: str | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopping: asyncio.Event | None = None
    _backend: object = None

    def start(self, *, keep_data: bool = False) -> None:
        """Listen on ``port``; with ``keep_data`` the mailboxes of the last run are served again."""
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        if not keep_data:
            self._backend = None
        self._thread = threading.Thread(target=self._run, args=(ready, failure), name="pymap", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self.stop()
            raise RuntimeError(f"pymap did not start: {failure[:1]}")

    def _run(self, ready: threading.Event, failure: list) -> None:
        """The thread: serve until ``stop``; then cancel every connection and close the loop."""
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # reported to start() through ``failure``
            failure.append(exc)
            ready.set()
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        """Start pymap's IMAP service and wait for the stop signal."""
        from pymap.imap import IMAPService

        self._stopping = asyncio.Event()
        if self._backend is None:
            self._backend = await _pymap_backend(self.user, self.password, self.host, self.port, self.oauth2_token)
        service = IMAPService(self._backend, self._backend.config)
        async with AsyncExitStack() as stack:
            await service.start(stack)
            ready.set()
            await self._stopping.wait()

    def stop(self) -> None:
        """Stop serving and drop every open connection (clients see the socket close)."""
        loop, thread = self._loop, self._thread
        if thread is None or loop is None:
            return
        if self._stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stopping.set)
        thread.join(10)
        self._thread = self._loop = self._stopping = None

    def restart(self, *, keep_data: bool = True) -> None:
        """Stop, then start again on the same port (UIDs and UIDVALIDITY survive with ``keep_data``)."""
        self.stop()
        self.start(keep_data=keep_data)


async def _pymap_backend(user: str, password: str, host: str, port: int, oauth2_token: str | None):
    """A pymap dict backend with one user; XOAUTH2 accepted with ``oauth2_token`` when given."""
    from pymap.backend.dict import Config, DictBackend, Login
    from pymap.concurrent import Subsystem
    from pysasl import SASLAuth
    from pysasl.hashing import BuiltinHash
    from pysasl.creds.external import ExternalCredentials

    class TestConfig(Config):
        greeting = b"Server ready localhost"  # pymap would resolve the FQDN on every connection

        @property
        def tls_auth(self) -> SASLAuth:
            names = [b"PLAIN", b"LOGIN"] + ([b"XOAUTH2"] if oauth2_token else [])
            return SASLAuth.named(names)

    class TestLogin(Login):
        async def authenticate(self, credentials):
            if isinstance(credentials, ExternalCredentials):  # XOAUTH2: user + bearer token
                return await super().authenticate(_TokenAsPassword(credentials, oauth2_token))
            return await super().authenticate(credentials)

    _allow_keywords()
    args = Namespace(debug=False, host=host, port=port, cert=None, key=None, tls=False, passlib_cfg=None,
                     inherited_sockets=None, proxy_protocol=None, demo_data=False, demo_user=user,
                     demo_password=password)
    config = TestConfig.from_args(args, cpu_subsystem=Subsystem.for_asyncio(), reject_dnsbl=False,
                                  invalid_user_sleep=0.0, hash_context=BuiltinHash(rounds=1))  # fast logins
    login = TestLogin(config)
    await DictBackend._add_demo_user(config, login)
    return DictBackend(login, config)


def _allow_keywords() -> None:
    """Let pymap store IMAP keywords (PERMANENTFLAGS \\*), as Dovecot and Gmail do; it only knows system flags."""
    from pymap.backend.dict.mailbox import MailboxData
    from pymap.parsing.specials.flag import Recent, Wildcard, get_system_flags

    MailboxData.permanent_flags = property(lambda self: (get_system_flags() - {Recent}) | {Wildcard})


class _TokenAsPassword:
    """XOAUTH2 credentials checked like a password: the token must equal the expected one."""

    def __init__(self, credentials, expected: str | None) -> None:
        self.authcid = self.authzid = credentials.authzid  # XOAUTH2's user= field
        self._ok = expected is not None and credentials._token == expected

    def verify(self, identity) -> bool:
        return self._ok and identity is not None


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the connection tasks still running, so their sockets close before the loop does."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


@pytest.fixture
def pymap_server() -> Iterator[PymapServer]:
    """A fresh pymap IMAP server (user alice / secret, plain IMAP on loopback) for one test."""
    server = PymapServer()
    server.start()
    yield server
    server.stop()
