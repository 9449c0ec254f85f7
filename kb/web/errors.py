"""Error pages: real 404s, JSON errors under /api, and no tracebacks for users."""

from __future__ import annotations

from flask import Flask, render_template, request
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


def _http_error(exc: HTTPException):
    """Render an HTTP error as JSON or as a page with the site's layout."""
    if wants_json():
        return {"error": exc.description or exc.name}, exc.code
    return render_template("error.html", code=exc.code, name=exc.name, description=exc.description), exc.code


def _csrf_error(exc: CSRFError):
    """A form without a valid CSRF token: say what to do."""
    message = "The form expired or was sent from another site. Reload the page and try again."
    if wants_json():
        return {"error": message}, 400
    return render_template("error.html", code=400, name="Form expired", description=message), 400
