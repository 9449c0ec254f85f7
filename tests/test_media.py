"""Image uploads: checked by content, stored in the database, served with safe headers, shown to
customers only through published articles."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from kb.db import session_scope
from kb.errors import MediaError
from kb.media.sniff import sniff_image
from kb.media.store import safe_filename
from kb.models import Media, MediaUse
from kb.rendering import render_markdown
from tests import images
from tests.agent_helpers import created_id, login, make_agent, save_edit, save_new, token

MAX_PIXELS = 25_000_000
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture
def agent_client(app, client):
    """A client logged in as an editor."""
    make_agent(app, name="Edith Editor")
    assert login(client).status_code == 302
    return client


def upload(client, data: bytes, filename: str = "screen.png", alt: str = "The settings screen", *,
           as_json: bool = True):
    """POST an image to the upload endpoint as the editor's script (JSON) or a plain form would."""
    image = FileStorage(io.BytesIO(data), filename, content_type="application/octet-stream")
    # Encoded in memory: the test client's own encoder spools large bodies to a file it never closes.
    boundary, body = encode_multipart({"image": image, "alt": alt, "csrf_token": token(client, "/agent/media")})
    headers = {"Accept": "application/json"} if as_json else {}
    return client.post("/agent/media", data=body, headers=headers, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.mark.parametrize("data, kind, size", [
    (images.png(), "png", (3, 2)), (images.JPEG_3X2, "jpeg", (3, 2)),
    (images.gif(), "gif", (1, 1)), (images.WEBP_3X2, "webp", (3, 2))])
def test_the_type_and_size_are_read_from_the_content(data, kind, size):
    info = sniff_image(data, max_pixels=MAX_PIXELS)
    assert (info.kind, (info.width, info.height), info.content_type) == (kind, size, f"image/{kind}")


@pytest.mark.parametrize("data, message", [
    (SVG, "SVG images are refused"),
    (b"\xef\xbb\xbf  <svg onload=alert(1)>", "SVG images are refused"),
    (b"<html><script>alert(1)</script></html>", "not a PNG, JPEG, GIF or WebP"),
    (b"GIF87", "not a PNG, JPEG, GIF or WebP"),
    (b"", "empty"),
    (images.png()[:20], "cut short or damaged"),
    (images.JPEG_3X2[:120], "cut short or damaged"),
    (images.gif()[:-1], "cut short or damaged"),
    (images.WEBP_3X2[:24], "cut short or damaged"),
])
def test_anything_but_a_whole_png_jpeg_gif_or_webp_is_refused(data, message):
    with pytest.raises(MediaError, match=message):
        sniff_image(data, max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("data", [
    images.png_claiming(20_000, 20_000), images.png_claiming(20_000, 1), images.png_claiming(0, 10),
    images.jpeg_claiming(8_000, 8_000), images.webp_claiming(16_000, 16_000), images.gif(1, 1, frame=(3000, 3000)),
    images.gif(65_535, 65_535)])
def test_decompression_bombs_are_refused_by_their_dimensions(data):
    with pytest.raises(MediaError, match="pixels|larger than the image itself"):
        sniff_image(data, max_pixels=MAX_PIXELS)


def test_file_names_are_made_safe():
    assert safe_filename('../../etc/"évil" name.svg.png', "png") == "evil-name-svg.png"
    assert safe_filename("C:\\Users\\me\\Скриншот.JPG", "jpg") == "image.jpg"
    assert safe_filename(None, "gif") == "image.gif"


def test_an_agent_uploads_an_image_and_gets_its_markdown(app, agent_client):
    response = upload(agent_client, images.png(), "My screen [1].png", alt="Settings ] screen")
    assert response.status_code == 201
    body = response.json
    assert re.fullmatch(r"/media/[A-Za-z0-9_-]{16}/My-screen-1\.png", body["url"])
    assert body["markdown"] == f"![Settings \\] screen]({body['url']})"
    assert (body["width"], body["height"]) == (3, 2)
    with session_scope(app) as session:
        media = session.scalar(sa.select(Media))
        assert (media.content_type, media.size, media.uploaded_by.name) == ("image/png", len(images.png()), "Edith Editor")
        assert media.data == images.png()


def test_without_javascript_the_upload_page_shows_markdown_to_copy(agent_client):
    response = upload(agent_client, images.JPEG_3X2, "photo.jpeg", alt="Our shop", as_json=False)
    assert response.status_code == 200 and response.mimetype == "text/html"
    field = re.search(r'<input id="markdown"[^>]*readonly value="([^"]+)"', response.text)
    assert field and re.fullmatch(r"!\[Our shop\]\(/media/[A-Za-z0-9_-]{16}/photo\.jpg\)", field.group(1))
    assert "Copy this Markdown" in response.text
    editor = agent_client.get("/agent/articles/new").text
    assert re.search(r'<form id="image-upload" method="post" action="/agent/media" enctype="multipart/form-data" '
                     r'target="_blank"', editor)
    assert 'form="image-upload"' in editor


def test_refused_uploads_say_why_at_the_field(agent_client):
    response = upload(agent_client, SVG, "logo.svg")
    assert response.status_code == 400 and "SVG images are refused" in response.json["error"]
    page = upload(agent_client, SVG, "logo.png", as_json=False)
    assert page.status_code == 400
    assert re.search(r'<p class="field-error" id="image-error">SVG images are refused', page.text)
    assert re.search(r'<input[^>]*aria-describedby="image-error image-help"', page.text)
    assert upload(agent_client, b"", "nothing.png").json["error"] == "The file is empty: choose an image file."
    assert upload(agent_client, b"", "").json["error"] == "Choose an image file to upload."


def test_uploads_over_the_size_limit_are_refused_with_a_clear_message(app_factory):
    app = app_factory(MEDIA_MAX_BYTES=3_000_000)
    make_agent(app)
    client = app.test_client()
    login(client)
    big = images.png_noise(1600, 1400)
    assert 2 * 1024 * 1024 < len(big) < 3_000_000  # over Flask's app-wide limit, under the image limit
    assert upload(client, big).status_code == 201
    too_big = images.png_noise(1800, 1800)
    response = upload(client, too_big)
    assert response.status_code == 413
    assert response.json["error"].startswith("The image is larger than 3 MB")
    page = upload(client, too_big, as_json=False)
    assert page.status_code == 413 and "The image is larger than 3 MB" in page.text


def test_the_size_limit_is_counted_on_the_file_itself(app_factory):
    app = app_factory(MEDIA_MAX_BYTES=50)
    make_agent(app)
    client = app.test_client()
    login(client)
    response = upload(client, images.png())
    assert response.status_code == 400
    assert response.json["error"].startswith("The image is larger than 50 bytes.")


def test_only_agents_can_upload(app, client):
    response = client.post("/agent/media", data={"image": (io.BytesIO(images.png()), "a.png")},
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert response.status_code in (400, 401)  # no CSRF token, no login: refused either way
    csrf = token(client)
    response = client.post("/agent/media", data={"image": (io.BytesIO(images.png()), "a.png"), "csrf_token": csrf},
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert response.status_code == 401
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Media)) == 0


def test_images_are_served_with_safe_headers(agent_client):
    url = upload(agent_client, images.WEBP_3X2, 'x"; filename=evil.html.webp').json["url"]
    response = agent_client.get(url)
    assert response.status_code == 200 and response.data == images.WEBP_3X2
    headers = response.headers
    assert headers["Content-Type"] == "image/webp"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert re.fullmatch(r'inline; filename="[A-Za-z0-9_-]+\.webp"', headers["Content-Disposition"])
    assert "sandbox" in headers["Content-Security-Policy"] and "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "private, no-cache"  # not yet in a published article
    assert "Cookie" in headers["Vary"]
    again = agent_client.get(url, headers={"If-None-Match": headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_customers_see_only_the_images_of_published_articles(app, agent_client):
    url = upload(agent_client, images.png()).json["url"]
    customer = app.test_client()
    assert customer.get(url).status_code == 404  # uploaded, not used yet
    article_id = created_id(save_new(agent_client, title="Settings", body_md=f"![Settings]({url})\n"))
    assert customer.get(url).status_code == 404  # used by a draft only
    save_edit(agent_client, article_id, "publish", title="Settings", body_md=f"![Settings]({url})\n")
    shown = customer.get(url)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "public, max-age=3600"
    assert f'<img alt="Settings" src="{url}">' in customer.get("/en/articles/settings").text

    other = upload(agent_client, images.gif()).json["url"]
    save_edit(agent_client, article_id, "save", title="Settings", body_md=f"![Settings]({url})\n\n![New]({other})\n")
    assert customer.get(other).status_code == 404  # in a draft of the live article: not yet public
    save_edit(agent_client, article_id, "publish", title="Settings", body_md=f"![New]({other})\n")
    assert customer.get(other).status_code == 200
    assert customer.get(url).status_code == 404  # no longer shown by any published text
    save_edit(agent_client, article_id, "unpublish", title="Settings", body_md=f"![New]({other})\n")
    assert customer.get(other).status_code == 404
    assert agent_client.get(other).status_code == 200  # agents see every image
    assert customer.get("/media/notakeyatall").status_code == 404


def test_the_same_image_uploaded_twice_is_stored_once(app, agent_client):
    first = upload(agent_client, images.png()).json["url"]
    second = upload(agent_client, images.png(), "copy.png").json["url"]
    assert first == second
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Media)) == 1


def test_image_markdown_survives_the_sanitiser():
    html = render_markdown("![The settings screen](/media/AbCdEfGhIjKlMnOp/screen.png)")
    assert '<img alt="The settings screen" src="/media/AbCdEfGhIjKlMnOp/screen.png">' in html


def test_deleting_an_article_forgets_which_images_it_showed(app, agent_client):
    url = upload(agent_client, images.png()).json["url"]
    save_new(agent_client, "publish", title="Shown", body_md=f"![x]({url})\n")
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MediaUse)) == 1
        session.execute(sa.text("DELETE FROM articles"))
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MediaUse)) == 0


@pytest.mark.postgres
def test_images_and_drafts_round_trip_on_postgres(app_factory, pg_database_url):
    app = app_factory(DATABASE_URL=pg_database_url)
    make_agent(app)
    client = app.test_client()
    login(client)
    url = upload(client, images.JPEG_3X2, "shop.jpg").json["url"]
    article_id = created_id(save_new(client, "publish", title="Our shop", body_md=f"![Shop]({url})\n"))
    save_edit(client, article_id, "save", title="Our shop", body_md=f"Draft\x00 text\n\n![Shop]({url})\n")
    customer = app.test_client()
    image = customer.get(url)
    assert image.status_code == 200 and image.data == images.JPEG_3X2  # bytes intact through bytea
    assert "Draft" not in customer.get("/en/articles/our-shop").text
    assert "Draft\ufffd text" in client.get(f"/agent/articles/{article_id}/edit").text  # NUL replaced, not lost
