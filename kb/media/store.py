"""Uploaded images: kept in the database, shown to customers only through published articles.

Request-free: the agent pages upload through ``store_image`` and the media route asks
``find_media`` and ``is_public``. Which images an article shows is kept in ``media_uses``,
refreshed from the live text whenever it changes (kb.articles calls ``sync_media_uses``),
so a draft's images stay private until the draft is published.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.errors import MediaError
from kb.media.sniff import sniff_image
from kb.models import Agent, Article, Media, MediaUse

MEDIA_PATH = "/media/"
# 12 random bytes: 16 URL-safe characters, so a private image's address cannot be guessed.
KEY_BYTES = 12
KEY_RE = re.compile(r"/media/([A-Za-z0-9_-]{16})(?![A-Za-z0-9_-])")
MAX_ALT = 200


def store_image(session: so.Session, data: bytes, filename: str, *, uploaded_by: Agent | None = None,
                max_bytes: int, max_pixels: int) -> Media:
    """Check an upload by its content and keep it; the same bytes uploaded again give the same image."""
    if len(data) > max_bytes:
        raise MediaError(too_large_message(max_bytes))
    info = sniff_image(data, max_pixels=max_pixels)
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalar(sa.select(Media).where(Media.sha256 == digest, Media.size == len(data)))
    if existing is not None:
        return existing
    media = Media(key=secrets.token_urlsafe(KEY_BYTES), filename=safe_filename(filename, info.extension),
                  content_type=info.content_type, width=info.width, height=info.height, size=len(data),
                  sha256=digest, data=data, uploaded_by=uploaded_by)
    session.add(media)
    session.flush()
    return media


def too_large_message(max_bytes: int) -> str:
    """What an agent reads when an image is over the limit."""
    return (f"The image is larger than {human_size(max_bytes)}. "
            "Make it smaller (or save it as JPEG or WebP) and upload it again.")


def human_size(size: int) -> str:
    """A byte count as people say it: 71 bytes, 12 kB, 2.5 MB."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1e6:.1f}".removesuffix(".0") + " MB"


def safe_filename(name: str | None, extension: str) -> str:
    """An ASCII file name for URLs and Content-Disposition, with the extension of the checked type."""
    stem = re.split(r"[\\/]", str(name or ""))[-1].rsplit(".", 1)[0]
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:80].strip("-_")
    return f"{stem or 'image'}.{extension}"


def media_url(media: Media) -> str:
    """The image's path on the site (what goes into Markdown)."""
    return f"{MEDIA_PATH}{media.key}/{media.filename}"


def image_markdown(media: Media, alt: str | None = "") -> str:
    """``![alt](/media/...)`` with the description made safe for Markdown's brackets."""
    alt = " ".join(str(alt or "").replace("\x00", "").split())[:MAX_ALT]
    alt = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"![{alt}]({media_url(media)})"


def find_media(session: so.Session, key: str) -> Media | None:
    """The image with this key, or None."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{16}", key or ""):
        return None
    return session.scalar(sa.select(Media).where(Media.key == key))


def is_public(session: so.Session, media: Media) -> bool:
    """Whether a published article's live text shows the image (so customers may see it)."""
    stmt = (sa.select(MediaUse.article_id).join(Article, Article.id == MediaUse.article_id)
            .where(MediaUse.media_id == media.id, Article.status == "published").limit(1))
    return session.scalar(stmt) is not None


def sync_media_uses(session: so.Session, article: Article) -> None:
    """Record which uploaded images the article's live text shows, replacing what was recorded."""
    keys = set(KEY_RE.findall(article.body_md or ""))
    wanted = set(session.scalars(sa.select(Media.id).where(Media.key.in_(keys)))) if keys else set()
    have = set(session.scalars(sa.select(MediaUse.media_id).where(MediaUse.article_id == article.id)))
    if have - wanted:
        session.execute(sa.delete(MediaUse).where(MediaUse.article_id == article.id,
                                                  MediaUse.media_id.in_(have - wanted)))
    session.add_all(MediaUse(article_id=article.id, media_id=media_id) for media_id in wanted - have)


def recent_media(session: so.Session, limit: int = 50) -> list[Media]:
    """The newest uploads, for the agents' image list."""
    return list(session.scalars(sa.select(Media).order_by(Media.created_at.desc(), Media.id.desc()).limit(limit)))
