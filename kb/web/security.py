"""Security headers (a strict Content-Security-Policy) and CSRF protection for every form."""

from __future__ import annotations

from flask import Flask, Response
from flask_wtf.csrf import CSRFProtect

# No inline scripts or styles anywhere: every script and stylesheet is a static file.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Turn on CSRF checks for every POST and add the security headers to every response."""
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config["WTF_CSRF_SSL_STRICT"] = app.config["BASE_URL"].startswith("https://")
    csrf.init_app(app)
    app.after_request(_headers)


def _headers(response: Response) -> Response:
    """Add CSP and the usual hardening headers."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
