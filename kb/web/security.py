"""Security headers (a strict Content-Security-Policy), CSRF protection for every form, and what
every request must pass before a view sees it: ids the database can hold, no NUL characters in the
URL, and the client address as trusted proxies report it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import parse_qsl

from flask import Flask, Request, Response, abort, current_app, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.datastructures import MultiDict
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, ValidationError
from werkzeug.utils import cached_property

from kb.models import MAX_ID

# No inline scripts or styles anywhere: every script and stylesheet is a static file.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
NUL_IN_URL = "This address contains a NUL character, which no page of this site uses. Check the link."

csrf = CSRFProtect()
log = logging.getLogger(__name__)


class IdConverter(IntegerConverter):
    """``<int:...>`` in every kb URL: a number no id column can hold is a 404, never a database error."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):  # noqa: A002 (werkzeug's names)
        super().__init__(map, fixed_digits, min, MAX_ID if max is None else max, signed)

    def to_python(self, value: str) -> int:
        """The id, refusing digit strings too long to be one before int() has to read them."""
        if len(value) > len(str(MAX_ID)):
            raise ValidationError()
        return super().to_python(value)


class KBRequest(Request):
    """kb's request: a NUL in a query argument reads as a space, as the search box always did.

    No kb page gives NUL a meaning, and PostgreSQL refuses it in any text a query compares with,
    so without this every filter of every page would have to remember it.
    """

    @cached_property
    def args(self) -> MultiDict[str, str]:
        """The query arguments, with NUL characters turned into spaces."""
        pairs = parse_qsl(self.query_string.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
        return self.parameter_storage_class((key.replace("\x00", " "), value.replace("\x00", " "))
                                            for key, value in pairs)


def init_app(app: Flask) -> None:
    """Turn on CSRF checks and security headers; bound ids, refuse NUL, trust the configured proxies."""
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config["WTF_CSRF_SSL_STRICT"] = app.config["BASE_URL"].startswith("https://")
    app.permanent_session_lifetime = timedelta(hours=app.config["AGENT_IDLE_HOURS"])
    # Before any blueprint adds its rules: the converter is chosen when a rule is added.
    app.url_map.converters["int"] = IdConverter
    app.request_class = KBRequest
    csrf.init_app(app)
    app.before_request(_refuse_nul_in_path)
    app.after_request(_headers)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    else:
        app.extensions["kb.proxy_warned"] = False
        app.before_request(_warn_about_an_untrusted_proxy)


def _refuse_nul_in_path() -> None:
    """A NUL in the path is a 400: no page has one, and PostgreSQL refuses it in a slug it looks up."""
    if "\x00" in request.path:
        abort(400, description=NUL_IN_URL)


def _warn_about_an_untrusted_proxy() -> None:
    """Once per process: forwarded requests while KB_TRUSTED_PROXIES is 0 make all clients look alike."""
    if current_app.extensions["kb.proxy_warned"] or "X-Forwarded-For" not in request.headers:
        return
    current_app.extensions["kb.proxy_warned"] = True
    log.warning("Requests carry X-Forwarded-For but KB_TRUSTED_PROXIES is 0, so every client looks like "
                "%s: login throttling and view and vote counts treat them as one. Set KB_TRUSTED_PROXIES "
                "to the number of proxies in front of kb (see the README, Security).", request.remote_addr)


def _headers(response: Response) -> Response:
    """Add CSP and the usual hardening headers."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
