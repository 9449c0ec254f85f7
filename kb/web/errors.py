"""Error pages: real 404s, JSON errors under /api, and no tracebacks for users, in the visitor's language."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


def wants_json() -> bool:
    """Whether the client expects JSON rather than a page."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def init_app(app: Flask) -> None:
    """Register the handlers."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def error_texts(code: int | None) -> tuple[str, str]:
    """(title, explanation) of an HTTP error for a person, in the current language."""
    texts = {
        400: (_("Bad request"), _("We could not read what was sent. Check the address or the form and try again.")),
        403: (_("Not allowed"), _("You do not have access to this page.")),
        404: (_("Page not found"), _("We could not find this page. It may have moved, or the address may be mistyped.")),
        405: (_("Not possible"), _("This page cannot be used that way. Go back and try again.")),
        413: (_("Too large"), _("What you sent is larger than we accept. Send less and try again.")),
        429: (_("Too many requests"), _("You sent many requests in a short time. Wait a minute and try again.")),
        503: (_("Temporarily unavailable"), _("The help centre is busy or being updated. Try again in a minute.")),
    }
    if code in texts:
        return texts[code]
    if code and code < 500:
        return _("Request not completed"), _("Check what you sent and try again.")
    return _("Something went wrong"), _("Sorry, something went wrong on our side. Try again in a minute.")


def _http_error(exc: HTTPException):
    """Render an HTTP error as JSON or as a page with the site's layout."""
    name, description = error_texts(exc.code)
    # A view's own description says more than the generic one; Werkzeug's defaults are English only.
    if exc.description and exc.description != type(exc).description:
        description = exc.description
    if wants_json():
        return {"error": description}, exc.code
    return render_template("error.html", code=exc.code, name=name, description=description), exc.code


def _csrf_error(exc: CSRFError):
    """A form without a valid CSRF token: say what to do."""
    message = _("The form expired or was sent from another site. Reload the page and try again.")
    if wants_json():
        return {"error": message}, 400
    return render_template("error.html", code=400, name=_("Form expired"), description=message), 400
