"""What the auto-responder needs before it can start: shared by `kb autoreply` and /agent/mail."""

from __future__ import annotations

from typing import Any, Mapping

from kb.errors import ConfigError

REQUIRED = {"IMAP_HOST": "the support mailbox server", "IMAP_USER": "the mailbox login"}
REQUIRED_TO_SEND = {"SMTP_HOST": "the server that sends replies", "BASE_URL": "the portal address for links"}


def check_settings(settings: Mapping[str, Any], dry_run: bool) -> None:
    """Refuse to start, saying which KB_ variable to set, when the worker cannot work."""
    needed = {**REQUIRED, **({} if dry_run else REQUIRED_TO_SEND)}
    missing = [f"KB_{name} ({what})" for name, what in needed.items() if not settings.get(name)]
    if missing:
        raise ConfigError("set " + ", ".join(missing) + " to run the auto-responder (see the README)")
    if str(settings.get("IMAP_SECURITY")).lower() not in {"ssl", "starttls", "none"}:
        raise ConfigError("KB_IMAP_SECURITY must be ssl, starttls or none")
    if not (settings.get("IMAP_PASSWORD") or settings.get("IMAP_OAUTH2_TOKEN_FILE")
            or settings.get("IMAP_OAUTH2_TOKEN_COMMAND")):
        raise ConfigError("set KB_IMAP_PASSWORD, or KB_IMAP_OAUTH2_TOKEN_FILE / KB_IMAP_OAUTH2_TOKEN_COMMAND")
