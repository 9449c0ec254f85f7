"""Counting views and votes on the portal so that scripts cannot inflate "most viewed" and "most helpful".

A view counts through an invisible image on the article page, not the page itself: link
previewers, mail scanners, prefetches and HEAD requests fetch the page but not the image, and the
image request must bring back the session cookie the page set, which scripts without cookie
support never do. Votes and views then count a bounded number of times per client and day
(kb.visitors), and self-declared bots and HTTP libraries never count.
"""

from __future__ import annotations

import base64
import logging

import sqlalchemy as sa
from flask import Response, abort, current_app, request

from kb import articles as kb_articles
from kb import catalog, feedback, visitors
from kb.db import get_session, relax_durability
from kb.followup import sources
from kb.insights import searchlog
from kb.models import Article, parse_id, parse_whole
from kb.web.portal import bp
from kb.web.i18n import current_language
from kb.web.params import arg
from kb.web.portal.context import visitor_id

# A transparent 1x1 GIF: what the view counter answers, counted or not.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NOT_A_PERSON = "Automated requests cannot vote. If you are a person, use a web browser."
log = logging.getLogger(__name__)


def client_key() -> str:
    """This request's client, as a keyed hash of its address that changes every day."""
    return visitors.client_key(current_app.config["SECRET_KEY"], request.remote_addr, visitors.today())


def _session_key(visitor: str) -> str:
    """This browser session, as a keyed hash that changes every day."""
    return visitors.keyed_hash(current_app.config["SECRET_KEY"], f"session-{visitors.today()}", visitor)


def _published(slug: str) -> Article | None:
    """The published article for ``slug`` (following a renamed slug), or None."""
    session = get_session()
    article, new_slug = kb_articles.resolve_public(session, slug)
    return kb_articles.get_article(session, new_slug) if new_slug else article


@bp.get("/articles/<slug>/seen")
def article_seen(slug: str):
    """The view counter image of an article page: counts a person's view, answers a pixel either way."""
    article = _published(slug)
    if article is None:
        abort(404)
    visitor = visitor_id()
    if visitor and visitors.automation_reason(request.method, request.headers) is None:
        session = get_session()
        relax_durability(session.connection())  # counts: a power cut may take back the last ones
        if catalog.count_view(session, article, visitor=_session_key(visitor), client=client_key(),
                              limit=current_app.config["PORTAL_COUNTS_PER_CLIENT"]):
            searchlog.count_article_day(session, article.id)  # the same views, per day, for the insights pages
        searchlog.record_visit(session, visitor, current_language(), viewed=True)
        session.commit()
    return Response(PIXEL, mimetype="image/gif", headers={"Cache-Control": "no-store"})


def record_vote(article: Article, helpful: bool, comment: str, *, reason: str = "", address: str = "",
                lang: str = "") -> str:
    """Record this visitor's vote within the client's daily limit; one of kb.feedback's outcomes.

    A recorded "No" records its follow-up signal in the same transaction (kb.followup.sources).
    """
    if visitors.automation_reason(request.method, request.headers) is not None:
        abort(403, description=NOT_A_PERSON)
    session, visitor = get_session(), visitor_id(create=True)
    outcome = feedback.vote_once(session, article, visitor=visitor, client=client_key(),
                                 limit=current_app.config["PORTAL_COUNTS_PER_CLIENT"],
                                 helpful=helpful, comment=comment, reason=reason)
    if outcome == feedback.RECORDED and not helpful:
        sources.from_vote(session, feedback.vote_of(session, article, visitor), address, current_app.config, lang)
    session.commit()
    return outcome


def note_search(query: str, lang: str, results: int, page: int) -> int | None:
    """Log a portal search and the visitor's day (searched) in one commit; the log row's id, None if logging failed.

    The visitor is the random visitor-cookie value (never an address): their typing collapses into
    one logged search (kb.insights.searchlog). One made by this request has no rows yet, so none
    are looked for. Analytics: whatever breaks in them never fails the customer's search.
    """
    known = visitor_id()
    visitor, session = visitor_id(create=True), get_session()
    try:
        relax_durability(session.connection())  # a log: a power cut may take back the last rows
        search_id = searchlog.log_search(session, visitor=visitor, query=query, lang=lang, results=results,
                                         settings=current_app.config, page=page, new_visitor=known is None)
        searchlog.record_visit(session, visitor, current_language(), searched=True, new_visitor=known is None)
        session.commit()
        return search_id
    except Exception:  # noqa: BLE001 - as kb.search's own log: never fail a search for its analytics
        session.rollback()
        log.warning("could not write the search log", exc_info=True)
        return None


def record_click(article: Article) -> None:
    """Note that this visitor opened ``article`` from their search (``?search=&pos=``); people only, first click."""
    # a mangled click link still opens the article: a bad number is no click, never a 400
    search_id, position = parse_id(arg("search")), parse_whole(arg("pos"), 1, searchlog.MAX_POSITION)
    if not search_id or not position or visitors.automation_reason(request.method, request.headers) is not None:
        return
    session = get_session()
    try:
        relax_durability(session.connection())  # a count: a power cut may take back the last ones
        searchlog.record_click(session, search_id=search_id, visitor=visitor_id(), article_id=article.id,
                               position=position)
        session.commit()
    except sa.exc.SQLAlchemyError:
        session.rollback()
        log.warning("could not record the search click", exc_info=True)

