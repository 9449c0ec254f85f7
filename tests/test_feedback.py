"""Helpful votes: one per visitor and article, comments cleaned, counts right."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kb import feedback
from kb.db import session_scope
from kb.errors import ValidationError
from kb.models import Vote


def test_a_vote_is_stored_with_its_comment(session, make_article):
    article = make_article("Reset your password")
    vote = feedback.record_vote(session, article, "visitor-1", False, "  Step 3 is unclear.  ")
    session.commit()
    assert vote is not None
    stored = session.scalars(sa.select(Vote)).one()
    assert (stored.article_id, stored.visitor, stored.helpful, stored.comment) == (article.id, "visitor-1", False, "Step 3 is unclear.")


def test_second_vote_from_the_same_visitor_changes_nothing(session, make_article):
    article = make_article("Reset your password")
    assert feedback.record_vote(session, article, "visitor-1", True) is not None
    session.commit()
    assert feedback.has_voted(session, article, "visitor-1")
    assert feedback.record_vote(session, article, "visitor-1", False, "changed my mind") is None
    session.commit()
    votes = session.scalars(sa.select(Vote)).all()
    assert [(v.helpful, v.comment) for v in votes] == [(True, "")]


def test_visitors_and_articles_are_counted_separately(session, make_article):
    first, second = make_article("First"), make_article("Second")
    for visitor, helpful in [("a", True), ("b", True), ("c", False)]:
        assert feedback.record_vote(session, first, visitor, helpful) is not None
    assert feedback.record_vote(session, second, "a", False) is not None
    session.commit()
    stats = feedback.helpful_stats(session, first)
    assert (stats.yes, stats.no, stats.total) == (2, 1, 3)
    assert stats.share == pytest.approx(2 / 3)
    assert feedback.helpful_stats(session, second).share == 0.0
    assert feedback.helpful_stats(session, make_article("Third")).share is None
    assert not feedback.has_voted(session, second, "b")
    assert not feedback.has_voted(session, second, None)


def test_comment_is_cleaned_and_capped(session, make_article):
    article = make_article()
    feedback.record_vote(session, article, "v", True, "bad\x00byte\r\nnext line" + "x" * 5000)
    session.commit()
    comment = session.scalar(sa.select(Vote.comment))
    assert "\x00" not in comment and "\r" not in comment
    assert comment.startswith("badbyte\nnext line")
    assert len(comment) == feedback.MAX_COMMENT_LENGTH


@pytest.mark.parametrize("visitor", ["", "x" * 65])
def test_a_vote_needs_a_sane_visitor_id(session, make_article, visitor):
    with pytest.raises(ValidationError):
        feedback.record_vote(session, make_article(), visitor, True)


def test_a_refused_duplicate_keeps_the_rest_of_the_transaction(session, make_article):
    """A flushed duplicate is caught before the insert; the caller's other work survives."""
    article = make_article()
    session.add(Vote(article_id=article.id, visitor="v", helpful=True))
    session.flush()
    other = make_article("Other")
    assert feedback.record_vote(session, other, "v", False) is not None
    assert feedback.record_vote(session, article, "v", False) is None
    session.commit()
    assert session.scalar(sa.select(sa.func.count(Vote.id))) == 2


def test_a_racing_double_submit_is_refused_by_the_database(app, session, make_article, monkeypatch):
    """Another request commits the same vote between our check and our insert (a double-click)."""
    article = make_article()
    raced = []

    def checked_then_raced(_session, _article, visitor):
        # Our check sees no vote; the other request's vote commits right after it.
        if not raced:
            raced.append(True)
            with session_scope(app) as racer:
                racer.add(Vote(article_id=article.id, visitor=visitor, helpful=True))
        return False

    monkeypatch.setattr(feedback, "has_voted", checked_then_raced)
    assert feedback.record_vote(session, article, "v", False) is None
    assert raced, "the racing insert never ran"
    session.commit()
    rows = session.execute(sa.select(Vote.visitor, Vote.helpful)).all()
    assert rows == [("v", True)]
