"""The web app's matcher: the auto-responder's model over today's published articles, in one place.

The agents' gaps page and the portal's contact form both ask it, so the contact form suggests
exactly what an email with the same words would get. It is kept in ``app.extensions`` and refitted
only when the published articles, their example questions or the synonym sets changed (cheap
signature queries first, as the mail worker does), so a keystroke's suggestions never refit it.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from kb.autoreply import synonym_expansion
from kb.autoreply.matcher import Matcher, ModelHolder, published_match_articles
from kb.capture import examples
from kb.models import Article

KEY = "kb.matcher"


class _Shared:
    """The holder and what it was last fitted on (articles' signature, synonyms' version)."""

    def __init__(self, default_lang: str) -> None:
        self.holder = ModelHolder(default_lang=default_lang)
        self.signature: tuple | None = None
        self.synonyms: str | None = None
        self.lock = threading.Lock()


def _signature(session: so.Session) -> tuple:
    """What changes whenever the matcher must be refitted: counts, the last edit, the examples."""
    return (*session.execute(sa.select(
        sa.func.count(Article.id).filter(Article.status == "published"),
        sa.func.max(Article.updated_at), sa.func.count(Article.id))).one(), examples.version(session))


def matcher(session: so.Session) -> Matcher:
    """The matcher over today's published articles and synonyms, refitted only when they changed."""
    shared = current_app.extensions.get(KEY)
    if shared is None:
        shared = current_app.extensions.setdefault(KEY, _Shared(current_app.config.get("DEFAULT_LANGUAGE") or "en"))
    signature = _signature(session)
    with shared.lock:  # one refit at a time; the others wait for it rather than fit the same twice
        if signature != shared.signature:
            shared.holder.refresh(published_match_articles(session))
            shared.signature = signature
        shared.synonyms = synonym_expansion.refresh(shared.holder, session, shared.synonyms)
    return shared.holder.matcher
