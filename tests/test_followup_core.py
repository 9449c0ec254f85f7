"""The follow-up core: signals recorded once, one open case per customer, state changes recorded."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kb.db import get_db
from kb.errors import FieldError
from kb.followup import cases, signals
from kb.followup.models import Case, CaseEvent, Customer, Signal
from kb.jobs.models import Job


def count(session, model) -> int:
    """Rows of ``model``."""
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def signal(session, app, key: str, **kw):
    """Record a signal with the app's settings."""
    kw.setdefault("source", "vote")
    return signals.record_signal(session, key=key, settings=app.config, **kw)


def test_a_rolled_back_signal_leaves_nothing_behind(app):
    # On SQLite a savepoint taken outside a transaction commits on release; the case, customer,
    # signal and alert job must instead go with the caller's rollback.
    session = get_db(app).sessionmaker()
    session.scalar(sa.select(Case.id))  # a read first, as a request does
    signal(session, app, "vote:1", address="ola@example.no", words="It did not help.")
    session.rollback()
    assert [count(session, m) for m in (Customer, Case, Signal, Job)] == [0, 0, 0, 0]
    signal(session, app, "vote:1", address="ola@example.no", words="It did not help.")
    session.commit()
    assert [count(session, m) for m in (Customer, Case, Signal)] == [1, 1, 1]
    session.close()


def test_the_same_signal_twice_is_recorded_once_and_one_customer_has_one_open_case(session, app):
    first = signal(session, app, "vote:1", address="Ola@Example.no")
    again = signal(session, app, "vote:1", address="ola@example.no")
    other = signal(session, app, "mail:9:still_need_help", source="still_need_help", address="ola+shop@example.no")
    session.commit()
    assert (first.created, again.created, other.created) == (True, False, True)
    assert first.case.id == again.case.id == other.case.id
    assert count(session, Signal) == 2 and count(session, Customer) == 1
    alerts = session.scalars(sa.select(Job.key).where(Job.kind == "followup.alert")).all()
    assert sorted(alerts) == [f"signal:{first.signal.id}", f"signal:{other.signal.id}"]


def test_without_an_address_the_case_is_about_the_article(session, app, make_article):
    article = make_article(session)
    one = signal(session, app, "vote:1", article_id=article.id)
    two = signal(session, app, "vote:2", article_id=article.id)
    session.commit()
    assert one.case.id == two.case.id and one.case.customer_id is None and one.case.article_id == article.id


def test_state_changes_are_recorded_and_a_repeat_changes_nothing(session, app):
    case = signal(session, app, "vote:1", address="kari@example.no").case
    assert cases.change_state(session, case, "acknowledge", agent_id=None, note="on it")
    assert not cases.change_state(session, case, "acknowledge", agent_id=None)
    with pytest.raises(FieldError):
        cases.change_state(session, case, "resolve", agent_id=None, settings=app.config, root_cause="")
    assert cases.change_state(session, case, "resolve", agent_id=None, settings=app.config, root_cause="delivery")
    session.commit()
    assert case.state == "resolved" and case.open_key is None and case.root_cause == "delivery"
    moves = [(e.from_state, e.to_state) for e in cases.history(session, case) if e.kind == "state"]
    assert moves == [("new", "acknowledged"), ("acknowledged", "resolved")]
    assert session.scalar(sa.select(Job.key).where(Job.kind == "followup.resurvey")) == f"case:{case.id}"


def test_an_unhappy_customer_within_a_week_reopens_their_resolved_case(session, app):
    case = signal(session, app, "vote:1", address="kari@example.no").case
    cases.change_state(session, case, "resolve", agent_id=None, settings=app.config, root_cause="product")
    again = signal(session, app, "mail:5:writeback", source="writeback", address="kari@example.no")
    session.commit()
    assert again.case.id == case.id and again.case.state == "reopened" and again.case.open_key
    assert session.scalar(sa.select(sa.func.count()).where(CaseEvent.to_state == "reopened")) == 1


def test_a_case_reopened_by_hand_must_be_acknowledged_again(session, app):
    case = signal(session, app, "vote:1", address="kari@example.no").case
    cases.change_state(session, case, "resolve", agent_id=None, settings=app.config, root_cause="product")
    assert cases.change_state(session, case, "reopen", agent_id=None, settings=app.config)
    session.commit()
    keys = session.scalars(sa.select(Job.key).where(Job.kind == "followup.escalate")).all()
    assert len(keys) == 2 and any(":reopened:" in key for key in keys)
