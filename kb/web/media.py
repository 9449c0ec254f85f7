"""Uploaded images for everyone: customers see those of published articles, agents see them all."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

from kb.db import get_session
from kb.media.store import find_media, is_public
from kb.web.agent.auth import current_agent

bp = Blueprint("media", __name__)

# Opened on its own, an image gets no scripts, no plugins and a sandbox: should a file ever
# be read as something else, it still cannot act with the site's rights.
IMAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


@bp.get("/media/<key>")
@bp.get("/media/<key>/<name>")
def image(key: str, name: str | None = None) -> Response:
    """The image's bytes with its checked type; 404 for customers unless a published article shows it."""
    session = get_session()
    media = find_media(session, key)
    public = media is not None and is_public(session, media)
    if media is None or not (public or current_agent() is not None):
        abort(404, "There is no such image. It may belong to an article that is not published.")
    response = Response(media.data, content_type=media.content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = f'inline; filename="{media.filename}"'
    response.headers["Content-Security-Policy"] = IMAGE_CSP
    seconds = max(0, current_app.config["MEDIA_CACHE_SECONDS"])
    # Customers' copies may be shared by proxies; an agent-only image is checked on every use.
    response.headers["Cache-Control"] = f"public, max-age={seconds}" if public else "private, no-cache"
    response.vary.add("Cookie")
    response.set_etag(media.sha256)
    return response.make_conditional(request)
