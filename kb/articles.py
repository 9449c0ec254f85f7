"""Article domain logic: plain functions over a session, shared by the web, the CLI and workers.

Every change that can affect search queues the article in ``index_changes`` in the same
transaction, so the index can never miss a committed change.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb import render_cache
from kb.errors import FieldError, ValidationError
from kb.media.store import sync_media_uses
from kb.models import STATUSES, Agent, Article, IndexChange, Revision, SlugRedirect, utcnow
from kb.render_limits import MAX_BODY_CHARS
from kb.rendering import clean_text
from kb.revisions import add_revision, get_revision

LANG_ALIASES = {"no": "nb", "nb-no": "nb", "no-no": "nb", "nn": "nb", "zh-cn": "zh", "zh-hans": "zh", "en-us": "en", "en-gb": "en"}
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CONTENT_FIELDS = ("title", "body_md", "lang", "category", "tags")
# The history's note for each status an article moves to (from archived, "draft" reads "Moved to drafts").
STATUS_NOTES = {"published": "Published", "draft": "Unpublished", "archived": "Archived"}


@dataclass
class ArticleDraft:
    """The editable content of an article, validated by ``clean``."""

    title: str
    body_md: str = ""
    lang: str = "en"
    category: str = ""
    tags: list[str] = field(default_factory=list)
    slug: str | None = None

    def clean(self) -> "ArticleDraft":
        """Normalise whitespace, language and tags; raise FieldError naming every bad field."""
        errors: dict[str, str] = {}
        title = " ".join(_text(self.title).split())
        if not title:
            errors["title"] = "The title is empty: give the article a title."
        elif len(title) > 300:
            errors["title"] = "The title is longer than 300 characters."
        body = normalise_body(self.body_md)
        if len(body) > MAX_BODY_CHARS:
            errors["body_md"] = (f"The article is {len(body):,} characters long; the most is {MAX_BODY_CHARS:,}. "
                                 "Split it into several articles.")
        slug = _text(self.slug).strip().lower() or None
        if slug and not SLUG_RE.match(slug):
            errors["slug"] = f"Slug {slug!r}: use lowercase letters, digits and single hyphens."
        try:
            lang = normalise_lang(self.lang)
        except FieldError as exc:
            errors.update(exc.errors)
        if errors:
            raise FieldError(errors)
        return ArticleDraft(title, body, lang, " ".join(_text(self.category).split()),
                            normalise_tags(self.tags), slug)


def _text(value) -> str:
    """A form or file value as text that every database stores (NUL and lone surrogates replaced)."""
    return clean_text(value)


def normalise_body(text: str | None) -> str:
    """Unix line ends, no trailing spaces, exactly one final newline (so exports round-trip).

    NUL and unpaired surrogates become U+FFFD: PostgreSQL (and the sanitiser) refuse them.
    """
    lines = clean_text(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "\n".join(line.rstrip() for line in lines).strip("\n")
    return body + "\n" if body else ""


def normalise_tags(tags) -> list[str]:
    """A list of distinct, trimmed tags from a list or a comma-separated string."""
    if isinstance(tags, str):
        tags = tags.split(",")
    seen: list[str] = []
    for tag in tags or []:
        tag = " ".join(_text(tag).split())
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def normalise_lang(lang) -> str:
    """Map language codes and aliases to kb's codes; YAML's bare ``no`` arrives as False."""
    if lang is False:
        return "nb"
    code = str(lang or "en").strip().lower().replace("_", "-")
    code = LANG_ALIASES.get(code, code)
    if not re.fullmatch(r"[a-z]{2,3}", code):
        raise FieldError({"lang": f"Language {lang!r}: use a code such as en, zh or nb."})
    return code


def slugify(text: str) -> str:
    """An ASCII slug from a title; empty if the title has no Latin letters or digits."""
    text = unicodedata.normalize("NFKD", text.replace("ø", "o").replace("Ø", "o").replace("æ", "ae").replace("Æ", "ae"))
    text = text.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:80].strip("-")


def unique_slug(session: so.Session, wanted: str) -> str:
    """``wanted`` or ``wanted-2``, ``wanted-3``... whichever no article or redirect uses."""
    base = wanted or f"article-{uuid.uuid4().hex[:8]}"
    candidate, n = base, 2
    while slug_taken(session, candidate):
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def slug_taken(session: so.Session, slug: str, article_id: int | None = None) -> bool:
    """Whether another article (or another article's old slug) already uses ``slug``."""
    owner = session.scalar(sa.select(Article.id).where(Article.slug == slug))
    if owner is None:
        owner = session.scalar(sa.select(SlugRedirect.article_id).where(SlugRedirect.old_slug == slug))
    return owner is not None and owner != article_id


def enqueue_index(session: so.Session, article_id: int) -> None:
    """Ask the indexer to bring this article's search entry up to date."""
    session.add(IndexChange(article_id=article_id))


def create_article(session: so.Session, draft: ArticleDraft, *, author: Agent | None = None,
                   status: str = "draft", note: str = "Created") -> Article:
    """Create an article with its first revision; the caller commits."""
    draft = draft.clean()
    check_status(status)
    if draft.slug and slug_taken(session, draft.slug):
        raise FieldError({"slug": f"The slug {draft.slug!r} is already used by another article."})
    slug = draft.slug or unique_slug(session, slugify(draft.title))
    now = utcnow()
    article = Article(slug=slug, title=draft.title, body_md=draft.body_md, lang=draft.lang,
                      category=draft.category, tags=draft.tags, status=status, author=author,
                      views=0, created_at=now, updated_at=now,
                      published_at=now if status == "published" else None)
    render_cache.refresh(article)  # saving renders once, so page views never have to
    session.add(article)
    session.flush()
    sync_media_uses(session, article)
    add_revision(session, article, author, note)
    enqueue_index(session, article.id)
    return article


def update_article(session: so.Session, article: Article, draft: ArticleDraft, *, author: Agent | None = None,
                   note: str = "", status: str | None = None) -> bool:
    """Save new content (and ``status``, if given) live as one new revision; False if nothing changed.

    The slug changes only when ``draft.slug`` asks for it, never because the title did;
    the old slug then redirects to the new one. A pending draft is left alone (see kb.drafts).
    """
    draft = draft.clean()
    if status is not None:
        check_status(status)
    changed = [name for name in CONTENT_FIELDS if getattr(article, name) != getattr(draft, name)]
    new_slug = draft.slug if draft.slug and draft.slug != article.slug else None
    new_status = status if status is not None and status != article.status else None
    if not changed and not new_slug and not new_status:
        return False
    if new_slug:
        rename_slug(session, article, new_slug)
    for name in changed:
        setattr(article, name, getattr(draft, name))
    default_note = status_note(article.status, new_status) if new_status else "Edited"
    if "body_md" in changed:
        render_cache.refresh(article)
    article.updated_at = utcnow()
    if new_status:
        _apply_status(article, new_status)
    if "body_md" in changed:
        sync_media_uses(session, article)
    add_revision(session, article, author, note or default_note)
    enqueue_index(session, article.id)
    return True


def status_note(old: str, new: str) -> str:
    """How the history names a move from status ``old`` to ``new``."""
    return "Moved to drafts" if (old, new) == ("archived", "draft") else STATUS_NOTES[new]


def combine_note(default: str, note: str | None) -> str:
    """The history's note: what happened, then the agent's own words if any."""
    note = _text(note).strip()
    return f"{default}: {note}" if note else default


def rename_slug(session: so.Session, article: Article, new_slug: str) -> None:
    """Give the article a new slug and keep the old one as a redirect."""
    if slug_taken(session, new_slug, article.id):
        raise FieldError({"slug": f"The slug {new_slug!r} is already used by another article."})
    session.execute(sa.delete(SlugRedirect).where(SlugRedirect.old_slug == new_slug))
    session.add(SlugRedirect(old_slug=article.slug, article_id=article.id))
    article.slug = new_slug


def check_status(status: str) -> None:
    """Refuse a status kb does not know."""
    if status not in STATUSES:
        raise ValidationError(f"Unknown status {status!r}: use one of {', '.join(STATUSES)}.")


def set_status(session: so.Session, article: Article, status: str, *, author: Agent | None = None,
               note: str = "") -> bool:
    """Publish, unpublish (back to draft) or archive, recorded in the history; returns whether anything changed."""
    check_status(status)
    if article.status == status:
        return False
    default_note = status_note(article.status, status)
    article.updated_at = utcnow()
    _apply_status(article, status)
    add_revision(session, article, author, note or default_note)
    enqueue_index(session, article.id)
    return True


def _apply_status(article: Article, status: str) -> None:
    """Set the status; publishing stamps ``published_at`` with the update time."""
    article.status = status
    if status == "published":
        article.published_at = article.updated_at


def restore_revision(session: so.Session, article: Article, number: int, *, author: Agent | None = None) -> Revision:
    """Bring back an old revision's content as a new revision."""
    old = get_revision(session, article, number)
    if old is None:
        raise ValidationError(f"Article {article.slug!r} has no revision {number}.")
    draft = revision_content(old)
    if not update_article(session, article, draft, author=author, note=f"Restored revision {number}"):
        raise ValidationError(f"Revision {number} is the same as the current text: nothing to restore.")
    return article.revisions[-1]


def revision_content(revision: Revision, slug: str | None = None) -> ArticleDraft:
    """A revision's content as a draft; the slug only if asked (restoring keeps the current address)."""
    return ArticleDraft(revision.title, revision.body_md, revision.lang, revision.category, list(revision.tags), slug)


def get_article(session: so.Session, slug: str) -> Article | None:
    """The article with this slug, whatever its status."""
    return session.scalar(sa.select(Article).where(Article.slug == slug))


def article_by_old_slug(session: so.Session, slug: str) -> Article | None:
    """The article that used ``slug`` before a rename, whatever its status."""
    return session.scalar(sa.select(Article).join(SlugRedirect, SlugRedirect.article_id == Article.id)
                          .where(SlugRedirect.old_slug == slug))


def resolve_public(session: so.Session, slug: str) -> tuple[Article | None, str | None]:
    """For a public URL: (published article, None), or (None, new slug) for an old slug, or (None, None)."""
    article = get_article(session, slug)
    if article is not None:
        return (article, None) if article.status == "published" else (None, None)
    target = article_by_old_slug(session, slug)
    if target is not None and target.status == "published":
        return None, target.slug
    return None, None


def published_articles(session: so.Session, *, lang: str | None = None, category: str | None = None,
                       limit: int | None = None) -> list[Article]:
    """Published articles, optionally of one language and category, newest first (at most ``limit``)."""
    stmt = sa.select(Article).where(Article.status == "published")
    if lang:
        stmt = stmt.where(Article.lang == lang)
    if category:
        stmt = stmt.where(Article.category == category)
    return list(session.scalars(stmt.order_by(Article.updated_at.desc(), Article.id).limit(limit)))
