"""POSTing an alert as JSON to KB_ALERT_WEBHOOK_URL (Slack's incoming webhooks, or any HTTP endpoint).

A webhook URL is often a secret (Slack's carry their token in the path), and the body holds the
customer's words: neither appears in an error message, so neither reaches a log or a job's
last_error. Redirects are not followed: a POST that a server moves elsewhere counts as failed.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any, Mapping

from kb.errors import KBError

TIMEOUT_SECONDS = 5.0  # short: a slow endpoint must not hold the job runner (the job is retried)


class WebhookFailed(KBError):
    """The webhook did not take the POST (an error status, a timeout, no connection): try again later."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Treat a redirect as the answer it is, never as a reason to send the body elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """Follow nothing."""
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, payload: Mapping[str, Any], *, timeout: float | None = None) -> int:
    """POST ``payload`` as JSON to ``url``; returns the 2xx status, else raises WebhookFailed."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "kb-followup-alerts"})
    try:
        with _OPENER.open(request, timeout=timeout or TIMEOUT_SECONDS) as response:
            status = response.status
            response.read(10_000)  # let the server finish its answer; its content does not matter
    except urllib.error.HTTPError as exc:
        raise WebhookFailed(f"KB_ALERT_WEBHOOK_URL answered HTTP {exc.code}") from None
    except (TimeoutError, socket.timeout):
        raise WebhookFailed(f"KB_ALERT_WEBHOOK_URL did not answer within {timeout or TIMEOUT_SECONDS:g} s") from None
    except urllib.error.URLError as exc:
        raise WebhookFailed(f"Cannot reach KB_ALERT_WEBHOOK_URL: {_reason(exc.reason)}") from None
    except OSError as exc:  # a connection reset while reading the answer, say
        raise WebhookFailed(f"The connection to KB_ALERT_WEBHOOK_URL failed: {_reason(exc)}") from None
    if not 200 <= status < 300:
        raise WebhookFailed(f"KB_ALERT_WEBHOOK_URL answered HTTP {status}")
    return status


def _reason(error: object) -> str:
    """The kind of network error, without the address (strerror, never the URL)."""
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timed out"
    return getattr(error, "strerror", None) or type(error).__name__
