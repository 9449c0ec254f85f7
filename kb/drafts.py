"""Unpublished changes to a live article, and what the editor's buttons do in each state.

An article is in one of four states:

- **draft** (never published, or unpublished) and **archived**: customers see nothing, so every
  save changes the article itself.
- **published**: customers see the article's own columns. "Save as draft" keeps the changes apart,
  as a *pending* revision that ``Article.pending_revision`` points to; the portal, the API,
  search and the auto-responder read only the article's columns, so they never see it.
- **published with a pending draft**: the editor opens the draft. "Publish changes" writes the
  editor's text to the article (a new revision, reindexed through the outbox) and closes the
  draft; "Discard draft" closes it unpublished. Unpublish and archive also write the editor's text
  and close the draft.

Every change is a revision with who and when, so the history shows saves, drafts, publishing,
unpublishing, archiving, restores and discards. A save names the revision it started from, and
``check_base`` refuses it when any newer revision exists (a colleague's draft included).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.articles import (CONTENT_FIELDS, ArticleDraft, combine_note, revision_content, slug_taken, status_note,
                         update_article)
from kb.errors import FieldError, ValidationError
from kb.models import Agent, Article, Revision, utcnow
from kb.revisions import add_revision, get_revision, latest_revision_number

# The status each editor button leads to; "save" keeps the current one.
EDITOR_ACTIONS = {"save": None, "publish": "published", "unpublish": "draft", "archive": "archived"}
DRAFT_NOTE = "Saved as a draft (not live)"


@dataclass(frozen=True)
class DraftState:
    """Where an article stands: its pending draft (if any) and the revision customers see."""

    pending: Revision | None
    live_number: int
    latest_number: int

    @property
    def stale(self) -> bool:
        """Whether the live article changed after the draft was saved (publishing would undo that)."""
        return self.pending is not None and self.live_number > self.pending.number


def draft_state(session: so.Session, article: Article) -> DraftState:
    """The article's pending draft, its live revision and its newest revision."""
    live = session.scalar(sa.select(sa.func.max(Revision.number))
                          .where(Revision.article_id == article.id, Revision.pending.is_(False)))
    return DraftState(pending_draft(session, article), live or 0, latest_revision_number(session, article))


def pending_draft(session: so.Session, article: Article) -> Revision | None:
    """The revision holding the article's unpublished changes, or None."""
    if article.pending_revision is None:
        return None
    return get_revision(session, article, article.pending_revision)


def editable_content(session: so.Session, article: Article) -> ArticleDraft:
    """What the editor opens: the pending draft if there is one, else the article itself."""
    pending = pending_draft(session, article)
    if pending is not None:
        return revision_content(pending, slug=pending.slug or article.slug)
    return live_content(article)


def live_content(article: Article) -> ArticleDraft:
    """The article's own (live) content."""
    return ArticleDraft(article.title, article.body_md, article.lang, article.category, list(article.tags),
                        article.slug)


def check_base(session: so.Session, article: Article, base: int | None, hint: str = "") -> None:
    """Refuse a change made from revision ``base`` when a newer one exists (None: not known, allowed)."""
    latest = latest_revision_number(session, article)
    if base is not None and base != latest:
        raise ValidationError(f"Someone else saved this article (revision {latest}) after you opened it. {hint}".strip())


def _same(a: ArticleDraft, b: ArticleDraft) -> bool:
    """Whether two clean drafts have the same content and slug."""
    return all(getattr(a, name) == getattr(b, name) for name in (*CONTENT_FIELDS, "slug"))


def save_draft(session: so.Session, article: Article, draft: ArticleDraft, *, author: Agent | None = None,
               note: str = "") -> bool:
    """Keep changes to a live article apart as a pending revision; False if nothing changed.

    The article itself, and so everything customers see, stays as it is. A draft that is back to
    the live text closes the pending draft instead.
    """
    current = editable_content(session, article)
    draft = draft.clean()
    draft = replace(draft, slug=draft.slug or current.slug)
    if draft.slug != article.slug and slug_taken(session, draft.slug, article.id):
        raise FieldError({"slug": f"The slug {draft.slug!r} is already used by another article."})
    if _same(draft, current.clean()):
        return False
    if _same(draft, live_content(article).clean()):
        discard_draft(session, article, author=author, note="Draft changed back to the live text: closed")
        return True
    revision = add_revision(session, article, author, note or DRAFT_NOTE, pending=draft)
    session.flush()
    article.pending_revision = revision.number
    return True


def apply_live(session: so.Session, article: Article, draft: ArticleDraft, *, author: Agent | None = None,
               note: str = "", status: str | None = None) -> bool:
    """Write the editor's text (and ``status``) to the article itself, closing any pending draft."""
    had_draft = article.pending_revision is not None
    article.pending_revision = None
    changed = update_article(session, article, draft, author=author, note=note, status=status)
    if had_draft and not changed:  # the draft matched the live text: still record that it was closed
        add_revision(session, article, author, note or "Closed the draft", when=utcnow())
    return changed or had_draft


def action_note(article: Article, status: str | None) -> str:
    """The history's note for an editor button pressed on the article as it is now."""
    if status is None:
        return "Edited"
    if status == "published" == article.status:
        pending = article.pending_revision
        return f"Published the draft (revision {pending})" if pending else "Published changes"
    return status_note(article.status, status)


def save_from_editor(session: so.Session, article: Article, draft: ArticleDraft, action: str, *,
                     author: Agent | None = None, note: str = "") -> bool:
    """Save, Publish, Unpublish or Archive from the editor; returns whether anything changed.

    "Save" on a published article keeps the changes as a pending draft: nothing goes live until
    an agent presses Publish.
    """
    status = EDITOR_ACTIONS[action]
    if status is None and article.status == "published":
        return save_draft(session, article, draft, author=author, note=combine_note(DRAFT_NOTE, note))
    if status is None and not (note or "").strip():
        note_text = ""  # update_article's own "Edited"
    else:
        note_text = combine_note(action_note(article, status), note)
    return apply_live(session, article, draft, author=author, note=note_text, status=status)


def publish_draft(session: so.Session, article: Article, *, author: Agent | None = None) -> bool:
    """Make the pending draft live as it is (title, text, slug...), as a new revision."""
    pending = pending_draft(session, article)
    if pending is None:
        raise ValidationError("This article has no unpublished draft to publish.")
    content = revision_content(pending, slug=pending.slug or article.slug)
    return apply_live(session, article, content, author=author, note=action_note(article, "published"),
                      status="published")


def discard_draft(session: so.Session, article: Article, *, author: Agent | None = None, note: str = "") -> Revision:
    """Close the pending draft unpublished; the history keeps it and records who discarded it."""
    number = article.pending_revision
    if number is None:
        raise ValidationError("This article has no unpublished draft to discard.")
    article.pending_revision = None
    return add_revision(session, article, author, note or f"Discarded the draft (revision {number})", when=utcnow())


def restore(session: so.Session, article: Article, number: int, *, author: Agent | None = None,
            into_draft: bool = True) -> Revision:
    """Bring back revision ``number``'s content (not its address) as a new revision.

    On a published article it goes into a draft unless ``into_draft`` is False; on any other
    article it changes the article directly, since customers do not see it.
    """
    old = get_revision(session, article, number)
    if old is None:
        raise ValidationError(f"Article {article.slug!r} has no revision {number}.")
    to_draft = into_draft and article.status == "published"
    # Restoring live also closes a pending draft, so it is "nothing to do" only without one.
    target = editable_content(session, article) if to_draft else live_content(article)
    content = revision_content(old, slug=target.slug).clean()
    if _same(content, target.clean()) and (to_draft or article.pending_revision is None):
        raise ValidationError(f"Revision {number} is the same as the current text: nothing to restore.")
    if to_draft:
        save_draft(session, article, content, author=author, note=f"Restored revision {number} into a draft (not live)")
    else:
        apply_live(session, article, content, author=author, note=f"Restored revision {number}")
    return get_revision(session, article, latest_revision_number(session, article))
