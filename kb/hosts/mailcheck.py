"""`kb doctor`'s mail checks: are IMAP and SMTP configured, and do their servers answer?

Reachability only: a connection, TLS where KB_*_SECURITY is ssl, and the server's greeting, each
within TIMEOUT seconds. kb never logs in here (a doctor must not count against a lockout), and no
password is ever part of a message.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, Mapping

from kb.autoreply.requirements import check_settings as autoreply_settings
from kb.errors import ConfigError
from kb.hosts.health import Check

TIMEOUT = 5.0


def greeting(host: str, port: int, security: str, timeout: float = TIMEOUT) -> bytes:
    """The first line a mail server sends after connecting (through TLS when ``security`` is ssl)."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        if security == "ssl":
            with ssl.create_default_context().wrap_socket(raw, server_hostname=host) as tls:
                return tls.recv(512)
        return raw.recv(512)


def reach(name: str, host: str, port: int, security: str, expected: tuple[bytes, ...]) -> Check:
    """A check that the server at host:port greets like an IMAP or SMTP server should."""
    where = f"{host}:{port} ({security})"
    try:
        line = greeting(host, port, security)
    except ssl.SSLError as exc:
        return Check(name, "fail", "TLS failed", f"{where}: TLS failed ({exc.reason or exc}); check "
                     f"KB_{name.upper()}_SECURITY and the server's certificate")
    except OSError as exc:
        return Check(name, "fail", "unreachable", f"{where}: {exc.strerror or type(exc).__name__}; check "
                     f"KB_{name.upper()}_HOST, KB_{name.upper()}_PORT and the firewall")
    if not line.startswith(expected):
        return Check(name, "fail", "unexpected greeting", f"{where} answered {line[:40]!r}, not as an "
                     f"{name.upper()} server does: check KB_{name.upper()}_PORT and KB_{name.upper()}_SECURITY")
    return Check(name, "ok", "", f"{where} answers")


def check_imap(settings: Mapping[str, Any]) -> Check:
    """IMAP: not configured (no auto-responder), configured incompletely, or reachable."""
    if not settings.get("IMAP_HOST"):
        return Check("imap", "ok", "", "not configured (no auto-responder)")
    try:
        autoreply_settings(settings, dry_run=False)
    except ConfigError as exc:
        return Check("imap", "fail", "incomplete", str(exc))
    # STARTTLS begins after the greeting: the plain greeting is what a server sends first.
    return reach("imap", str(settings["IMAP_HOST"]), int(settings["IMAP_PORT"]),
                 str(settings["IMAP_SECURITY"]), (b"* OK", b"* PREAUTH"))


def check_smtp(settings: Mapping[str, Any]) -> Check:
    """SMTP: not configured (nothing can be emailed) or reachable."""
    if not settings.get("SMTP_HOST"):
        return Check("smtp", "warn", "not configured", "KB_SMTP_HOST is not set: alerts, contact-form questions "
                     "and auto-replies cannot be emailed")
    return reach("smtp", str(settings["SMTP_HOST"]), int(settings["SMTP_PORT"]), str(settings["SMTP_SECURITY"]),
                 (b"220",))


def check_mail(settings: Mapping[str, Any]) -> list[Check]:
    """The IMAP and SMTP checks."""
    return [check_imap(settings), check_smtp(settings)]
