"""Sending mail (auto-replies and alerts) by SMTP with ssl, starttls or none, and AUTH.

Three outcomes besides success: SendRefused (a 5xx answer to the recipient or the message:
sending again cannot help, a person must look), SendFailed (a 4xx answer, an unreachable server,
a refused login: worth a later retry) and SendUncertain (the connection broke after DATA began:
it may have been delivered, so it must never be sent again).
"""

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
MAX_ANSWER_CHARS = 500  # of a server's answer quoted in a reason (multi-line answers can be long)


class SendFailed(KBError):
    """The SMTP server refused the message or could not be reached; try again later."""


class SendRefused(SendFailed):
    """The SMTP server refused the recipient or the message for good (a 5xx answer); do not retry."""


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
    recipients = _recipients(message)
    if not recipients:
        raise SendFailed("The message has no recipient address.")
    context = ssl_context or ssl.create_default_context()
    user = setting(settings, "SMTP_USER")
    where = f"{host}:{port}"
    server = None
    try:
        server = _connect(host, port, security, context, timeout or TIMEOUT_SECONDS)
        try:
            if user:
                server.login(user, setting(settings, "SMTP_PASSWORD") or "")
            _check_smtputf8(server, [sender, *recipients], where)
            refused = server.send_message(message, from_addr=sender, to_addrs=recipients)
        finally:
            _close(server)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendFailed(f"The SMTP server {where} refused the login of {user!r} "
                         f"(check KB_SMTP_USER / KB_SMTP_PASSWORD): {_reply(exc)}") from exc
    except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused at RCPT
        answers = "; ".join(f"{addr}: {_answer(code, text)}" for addr, (code, text) in exc.recipients.items())
        final = all(code >= 500 for code, _text in exc.recipients.values())
        raise (SendRefused if final else SendFailed)(
            f"The SMTP server {where} refused the recipient ({answers})") from exc
    except smtplib.SMTPSenderRefused as exc:  # MAIL FROM: kb's own address, or 552 for the size
        error = SendRefused if exc.smtp_code == 552 else SendFailed
        raise error(f"The SMTP server {where} refused the sender {sender!r} (check KB_SUPPORT_ADDRESS): "
                    f"{_reply(exc)}") from exc
    except smtplib.SMTPDataError as exc:  # the answer to the message itself
        error = SendRefused if exc.smtp_code >= 500 else SendFailed
        raise error(f"The SMTP server {where} refused the message: {_reply(exc)}") from exc
    except smtplib.SMTPResponseException as exc:  # the server answered no: nothing was delivered
        raise SendFailed(f"The SMTP server {where} refused the message: {_reply(exc)}") from exc
    except OSError as exc:  # smtplib's other errors too: refused connection, timeout, TLS, disconnect
        if server is not None and server.data_started:
            raise SendUncertain(f"The connection to {where} broke after the message was sent, "
                                f"before the server confirmed it: {exc}") from exc
        if isinstance(exc, smtplib.SMTPException):
            raise SendFailed(f"The SMTP server {where} refused the message: {_reply(exc)}") from exc
        raise SendFailed(f"Cannot reach the SMTP server {where}: {exc}") from exc
    if refused:  # delivered to some recipients: sending again would duplicate it for them
        answers = "; ".join(f"{addr}: {_answer(code, text)}" for addr, (code, text) in refused.items())
        raise SendRefused(f"The SMTP server {where} refused some recipients ({answers}); the others got it")


def _recipients(message: EmailMessage) -> list[str]:
    """The To and Cc addresses, from the email package's address objects where the headers have them."""
    found = []
    for header in message.get_all("To", []) + message.get_all("Cc", []):
        addresses = getattr(header, "addresses", None)
        pairs = [(a.display_name, a.addr_spec) for a in addresses] if addresses is not None \
            else getaddresses([str(header)])
        found += [addr for _name, addr in pairs if addr and addr != "<>"]
    return found


def _check_smtputf8(server: smtplib.SMTP, addresses: list[str], where: str) -> None:
    """Refuse, before MAIL FROM, an address only an SMTPUTF8 server takes when this one does not say so."""
    wide = [addr for addr in addresses if not addr.isascii()]
    if not wide:
        return
    server.ehlo_or_helo_if_needed()
    if not server.has_extn("smtputf8"):
        raise SendRefused(f"The address {wide[0]} has non-ASCII letters before the @, and the SMTP server "
                          f"{where} does not announce SMTPUTF8, so it cannot carry it: a person must answer "
                          "(or use a server that supports SMTPUTF8).")


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
    return _answer(code, text)


def _answer(code: int, text: bytes | str | None) -> str:
    """"550 5.1.1 no such user": the server's answer on one line, of a length fit for a reason."""
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text or "")
    return f"{code} {' '.join(text.split())}"[:MAX_ANSWER_CHARS]
