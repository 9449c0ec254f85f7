"""Sending mail (auto-replies and alerts) by SMTP with ssl, starttls or none, and AUTH."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, Mapping

from kb.autoreply.mailbox import setting
from kb.errors import ConfigError, KBError

TIMEOUT_SECONDS = 30
SECURITY_MODES = ("ssl", "starttls", "none")


class SendFailed(KBError):
    """The SMTP server refused the message or could not be reached; try again later."""


class SendUncertain(KBError):
    """The connection broke after the message was handed over: it may have been delivered."""


class _DataPhase:
    """Remembers whether DATA began: after that, a broken connection may still have delivered."""

    data_started = False

    def data(self, msg):
        """Send DATA and the message (flagging the moment it starts)."""
        self.data_started = True
        return super().data(msg)


class _SMTP(_DataPhase, smtplib.SMTP):
    """Plain or STARTTLS SMTP that knows whether DATA began."""


class _SMTPSSL(_DataPhase, smtplib.SMTP_SSL):
    """Implicit-TLS SMTP that knows whether DATA began."""


def send(message: EmailMessage, settings: Mapping[str, Any], *, ssl_context: ssl.SSLContext | None = None,
         timeout: float | None = None) -> None:
    """Send ``message`` to its To/Cc recipients, envelope sender KB_SUPPORT_ADDRESS.

    SendFailed means it certainly did not leave (retry later); SendUncertain means the
    connection broke after DATA began, so it may have been delivered (do not retry).
    """
    host, port = setting(settings, "SMTP_HOST"), int(setting(settings, "SMTP_PORT"))
    security = str(setting(settings, "SMTP_SECURITY")).lower()
    if security not in SECURITY_MODES:
        raise ConfigError(f"KB_SMTP_SECURITY must be ssl, starttls or none, not {security!r}.")
    if not host:
        raise ConfigError("Set KB_SMTP_HOST to the server that sends kb's replies.")
    sender = setting(settings, "SUPPORT_ADDRESS") or ""
    recipients = [addr for _name, addr in getaddresses(message.get_all("To", []) + message.get_all("Cc", [])) if addr]
    if not recipients:
        raise SendFailed("The message has no recipient address.")
    context = ssl_context or ssl.create_default_context()
    user = setting(settings, "SMTP_USER")
    server = None
    try:
        server = _connect(host, port, security, context, timeout or TIMEOUT_SECONDS)
        try:
            if user:
                server.login(user, setting(settings, "SMTP_PASSWORD") or "")
            refused = server.send_message(message, from_addr=sender, to_addrs=recipients)
        finally:
            _close(server)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendFailed(f"The SMTP server {host}:{port} refused the login of {user!r} "
                         f"(check KB_SMTP_USER / KB_SMTP_PASSWORD): {_reply(exc)}") from exc
    except smtplib.SMTPResponseException as exc:  # the server answered no: nothing was delivered
        raise SendFailed(f"The SMTP server {host}:{port} refused the message: {_reply(exc)}") from exc
    except OSError as exc:  # smtplib's other errors too: refused connection, timeout, TLS, disconnect
        if server is not None and server.data_started:
            raise SendUncertain(f"The connection to {host}:{port} broke after the message was sent, "
                                f"before the server confirmed it: {exc}") from exc
        if isinstance(exc, smtplib.SMTPException):
            raise SendFailed(f"The SMTP server {host}:{port} refused the message: {_reply(exc)}") from exc
        raise SendFailed(f"Cannot reach the SMTP server {host}:{port}: {exc}") from exc
    if refused:
        raise SendFailed(f"The SMTP server refused some recipients: {refused}")


def _connect(host: str, port: int, security: str, context: ssl.SSLContext, timeout: float) -> smtplib.SMTP:
    """An SMTP connection after EHLO, encrypted as configured."""
    if security == "ssl":
        return _SMTPSSL(host, port, timeout=timeout, context=context)
    server = _SMTP(host, port, timeout=timeout)
    if security == "starttls":
        try:
            server.starttls(context=context)
        except BaseException:
            server.close()
            raise
    return server


def _close(server: smtplib.SMTP) -> None:
    """QUIT politely; once the message was accepted, a bad QUIT answer must not look like a failure."""
    try:
        server.quit()
    except OSError:  # smtplib's errors too: the server's QUIT reply or the socket
        server.close()


def _reply(exc: smtplib.SMTPException) -> str:
    """The server's code and text from an smtplib error, else the error itself."""
    code, text = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", None)
    if code is None:
        return str(exc)
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
