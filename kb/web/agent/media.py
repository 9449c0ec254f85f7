"""Image uploads for agents: JSON for the editor's script, a page with copyable Markdown without it."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, render_template, request, session
from werkzeug.exceptions import RequestEntityTooLarge

from kb.db import get_session
from kb.errors import MediaError
from kb.media.store import image_markdown, media_url, recent_media, store_image, too_large_message
from kb.models import Media
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.forms import ImageForm
from kb.web.errors import wants_json

# Room for the multipart envelope and the other fields around the image itself.
FORM_OVERHEAD = 64 * 1024


@bp.url_value_preprocessor
def _allow_image_sized_uploads(endpoint: str | None, _values) -> None:
    """Lift the request-size limit for a logged-in agent's upload only.

    It must happen here: URL preprocessors run before every before_request hook, and the
    app-wide CSRF hook reads the form (and so enforces the limit) before any view runs.
    """
    if endpoint == "agent.media" and request.method == "POST" and "agent_id" in session:
        request.max_content_length = current_app.config["MEDIA_MAX_BYTES"] + FORM_OVERHEAD


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge):
    """Say plainly what is too large, and what to do."""
    if request.endpoint == "agent.media":
        message = too_large_message(current_app.config["MEDIA_MAX_BYTES"])
    else:
        message = "What you sent is too large to save. Shorten it and try again."
    if wants_json():
        return {"error": message}, 413
    return render_template("error.html", code=413, name="Too large", description=message), 413


@bp.route("/media", methods=["GET", "POST"])
def media():
    """The upload form and recent images; a POST stores one image (checked by its content)."""
    form, db_session = ImageForm(), get_session()
    uploaded, status = None, 200
    if form.validate_on_submit():
        try:
            uploaded = _store(db_session, form)
            db_session.commit()
        except MediaError as exc:
            db_session.rollback()
            form.image.errors = [*form.image.errors, str(exc)]
            status = 400
        except sa.exc.IntegrityError:  # the same image uploaded twice at the same instant
            db_session.rollback()
            form.image.errors = [*form.image.errors, "The upload clashed with another one: upload it again."]
            status = 409
    elif request.method == "POST":
        status = 400
    markdown = image_markdown(uploaded, form.alt.data) if uploaded else None
    if request.method == "POST" and wants_json():
        if uploaded is None:
            return {"error": " ".join(error for field in form for error in field.errors)}, status
        return {"url": media_url(uploaded), "markdown": markdown, "width": uploaded.width,
                "height": uploaded.height, "filename": uploaded.filename}, 201
    return render_template("agent/media.html", form=form, uploaded=uploaded, markdown=markdown,
                           recent=recent_media(db_session), media_url=media_url, image_markdown=image_markdown), status


def _store(db_session, form: ImageForm) -> Media:
    """Read the uploaded file (no more than the limit allows) and keep it."""
    file = form.image.data
    if file is None or not getattr(file, "filename", ""):
        raise MediaError("Choose an image file to upload.")
    max_bytes = current_app.config["MEDIA_MAX_BYTES"]
    return store_image(db_session, file.read(max_bytes + 1), file.filename, uploaded_by=current_agent(),
                       max_bytes=max_bytes, max_pixels=current_app.config["MEDIA_MAX_PIXELS"])
