"""An aiosmtpd SMTP server in the test process that keeps what it receives."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import pytest

from tests.servers import free_port


@dataclass
class ReceivedMail:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    auth_login: str | None


def _ignore_client_hangups(loop, context) -> None:
    """Clients hanging up mid-TLS (the untrusted-certificate tests) are expected, not errors."""
    if isinstance(context.get("exception"), (ConnectionResetError, BrokenPipeError, ssl.SSLError)):
        return
    loop.default_exception_handler(context)


class SmtpSink:
    """An aiosmtpd server that keeps what it receives; can require AUTH, refuse mail, or stop."""

    def __init__(self, *, user: str | None = None, password: str | None = None,
                 tls_context: ssl.SSLContext | None = None, implicit_tls: bool = False,
                 smtputf8: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user, self.password = user, password
        self.tls_context, self.implicit_tls = tls_context, implicit_tls
        self.smtputf8 = smtputf8  # announce SMTPUTF8 (aiosmtpd does not by default)
        self.messages: list[ReceivedMail] = []
        self.refuse: str | None = None  # e.g. "451 4.3.0 try later": every DATA gets this reply
        self.refuse_rcpt: str | None = None  # e.g. "550 5.1.1 no such user": every RCPT gets this reply
        self.refuse_containing: bytes | None = None  # DATA holding these bytes gets "554 5.6.0 ..." (a content filter)
        self.reply_delay = 0.0  # keep the message, then wait this long before saying 250
        self.quit_reply: str | None = None  # e.g. "250 odd": answer QUIT with this instead of 221
        self._arrived = threading.Condition()
        self._controller = None

    def settings(self, **overrides) -> dict:
        """kb settings pointing smtp.send at this sink."""
        values = {"SMTP_HOST": self.host, "SMTP_PORT": self.port, "SMTP_SECURITY": "none",
                  "SMTP_USER": self.user or "", "SMTP_PASSWORD": self.password or "",
                  "SUPPORT_ADDRESS": "support@kb.example"}
        values.update(overrides)
        return values

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        """Answer QUIT as told (aiosmtpd says 221 when this returns its MISSING marker)."""
        return self.quit_reply or "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        """Accept the recipient (as aiosmtpd does without this hook), or refuse it while ``refuse_rcpt`` is set."""
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        """Keep the message, or refuse it while ``refuse`` is set (or it holds ``refuse_containing``)."""
        if self.refuse:
            return self.refuse
        if self.refuse_containing and self.refuse_containing in (envelope.original_content or b""):
            return "554 5.6.0 Message refused by the content filter"
        if self.user and not session.authenticated:
            return "530 5.7.0 Authentication required"
        login = session.auth_data.login.decode() if getattr(session, "auth_data", None) else None
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or b"", login)
        with self._arrived:
            self.messages.append(mail)
            self._arrived.notify_all()
        if self.reply_delay:  # delivered, but the client may give up before it hears so
            await asyncio.sleep(self.reply_delay)
        return "250 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        """Accept only the configured login and password."""
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> None:
        """Listen on ``port`` (the same one after a ``stop``)."""
        from aiosmtpd.controller import Controller

        kwargs: dict = {"hostname": self.host, "port": self.port, "ready_timeout": 5,
                        "enable_SMTPUTF8": self.smtputf8}
        if self.user:
            # AUTH is enforced in handle_DATA: aiosmtpd's auth_required without TLS emits a UserWarning
            kwargs.update(authenticator=self._authenticate,
                          auth_require_tls=self.tls_context is not None and not self.implicit_tls)
        if self.tls_context is not None:
            if self.implicit_tls:
                kwargs["ssl_context"] = self.tls_context
                kwargs["server_hostname"] = "localhost"
            else:
                kwargs.update(tls_context=self.tls_context, require_starttls=True)
        loop = asyncio.new_event_loop()  # the Controller closes it when stopped
        loop.set_exception_handler(_ignore_client_hangups)
        self._controller = Controller(self, loop=loop, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until ``count`` messages arrived (or fail the test after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages at the SMTP sink, got {len(self.messages)}")
                self._arrived.wait(left)
            return list(self.messages)


def _running_sink() -> Iterator[SmtpSink]:
    """An SMTP server without AUTH, started, and stopped when the fixture ends."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


smtp_sink = pytest.fixture(_running_sink, name="smtp_sink")  # for one test
# For a whole module of tests (import it as ``sink``): alerts, questions and surveys land there.
module_sink = pytest.fixture(_running_sink, scope="module", name="sink")


@pytest.fixture
def smtp_sink_factory() -> Iterator:
    """Make sinks with AUTH or TLS: ``smtp_sink_factory(user=..., password=..., tls_context=...)``."""
    made: list[SmtpSink] = []

    def factory(**kwargs) -> SmtpSink:
        sink = SmtpSink(**kwargs)
        sink.start()
        made.append(sink)
        return sink

    yield factory
    for sink in made:
        sink.stop()
