"""Sample follow-up data: complete and consistent, loaded once, never emailed, and removed exactly."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb import content, jobs
from kb.autoreply import ledger
from kb.autoreply.ledger_lookups import unmarked
from kb.autoreply.models import MailRecord
from kb.cli import cli, first_start
from kb.db import session_scope
from kb.followup import cases, sample
from kb.followup.customers import email_of
from kb.followup.models import (CASE_STATES, SOURCES, Case, CaseEvent, Customer, CustomerIdentity, Signal,
                                Survey)
from kb.followup.signals import record_signal
from kb.jobs.models import Job
from kb.agents import create_agent
from kb.models import Agent, Article, Vote, utcnow
from kb.capture import examples
from kb.capture.models import ExampleQuestion
from kb.insights import sample as insights_sample
from kb.recovery.models import Bound, GestureType, RecoveryEntry
from tests.conftest import TEST_SECRET

TABLES = {"customers": Customer, "identities": CustomerIdentity, "cases": Case, "signals": Signal,
          "events": CaseEvent, "surveys": Survey, "mail_records": MailRecord, "votes": Vote, "jobs": Job,
          "gesture_types": GestureType, "bounds": Bound, "ledger_rows": RecoveryEntry, "agents": Agent,
          "example_questions": ExampleQuestion}


def row_counts(session) -> Counter[str]:
    """How many rows each follow-up table (and mail records, votes, jobs) holds."""
    return Counter({name: session.scalar(sa.select(sa.func.count()).select_from(model))
                    for name, model in TABLES.items()})


@pytest.fixture
def starter(app):
    """The app with the starter articles imported, as the first `kb serve` leaves it."""
    assert content.bootstrap(app) is not None
    return app


@pytest.fixture
def starter_any(app_factory, shared_db_url):
    """``starter`` on SQLite and on PostgreSQL (whose foreign keys and deletes differ)."""
    app = app_factory(DATABASE_URL=shared_db_url)
    assert content.bootstrap(app) is not None
    return app


def load(app, now=None) -> Counter[str]:
    """Load the sample in its own transaction."""
    with session_scope(app) as session:
        return sample.load_sample(session, app.config, now=now)


def remove(app) -> Counter[str]:
    """Remove the sample in its own transaction."""
    with session_scope(app) as session:
        return sample.remove_sample(session)


def real_signal(app, key: str, address: str, **kw) -> int:
    """A real signal through the real path (jobs scheduled); returns its case id."""
    with session_scope(app) as session:
        result = record_signal(session, key=key, source=kw.pop("source", "vote"), settings=app.config,
                               address=address, words="real words", **kw)
        return result.case.id


def test_load_gives_every_state_and_source_with_consistent_times(starter):
    now = utcnow()
    counts = load(starter, now=now)
    with session_scope(starter) as session:
        all_cases = list(session.scalars(sa.select(Case)))
        assert {c.state for c in all_cases} == set(CASE_STATES)
        assert {c.source for c in all_cases} == set(SOURCES)
        assert {s.source for s in session.scalars(sa.select(Signal))} == set(SOURCES)
        assert counts["cases"] == len(all_cases) and counts["customers"] == session.scalar(
            sa.select(sa.func.count(Customer.id)))
        for case in all_cases:
            times = [case.opened_at, case.alerted_at, case.acknowledged_at, case.first_contact_at, case.resolved_at]
            present = [t for t in times if t is not None]
            assert present == sorted(present) and present[-1] <= now, case.id
            assert now - case.opened_at <= timedelta(days=45)
            assert (case.open_key is None) == (case.state == "resolved")
            assert (case.resolved_at is not None) == (case.state == "resolved")
            assert case.state != "resolved" or case.root_cause in cases.root_causes(starter.config)
            survey = session.scalar(sa.select(Survey).where(Survey.case_id == case.id))
            answered = survey is not None and survey.state == "answered"
            assert (case.score_after is not None) == answered
            assert not answered or case.score_after == survey.score
            events = cases.history(session, case)
            assert events and events[0].created_at >= case.opened_at
            assert [e.to_state for e in events if e.kind == "state"][-1:] in ([case.state], [])
        for case in all_cases:  # escalated as the job would have: unacknowledged past the 15 minutes
            clock = case.acknowledged_at or (now if case.state == "new" else None)
            late = clock is not None and clock - case.opened_at > timedelta(minutes=15)
            assert (case.escalated_at == case.opened_at + timedelta(minutes=15)) == late, case.id
        waiting = sorted((c for c in all_cases if c.state == "new"), key=lambda c: c.opened_at)
        assert [round((now - c.opened_at).total_seconds() / 60) for c in waiting] == [40, 3]
        assert waiting[0].escalated_at == waiting[0].opened_at + timedelta(minutes=15)
        assert waiting[1].escalated_at is None
        answered = sorted(s.score for s in session.scalars(sa.select(Survey).where(Survey.state == "answered")))
        assert answered == [2, 4, 4, 5]
        assert session.scalar(sa.select(sa.func.count(Survey.id)).where(Survey.state == "sent")) == 2
        survey_case = next(c for c in all_cases if c.source == "survey")
        assert survey_case.score_before == 2
        vote = session.scalar(sa.select(Signal).where(Signal.source == "vote", Signal.reason == "not_answered"))
        assert session.get(Article, session.get(Case, vote.case_id).article_id).slug == "track-order"
        assert session.scalar(sa.select(sa.func.count(Vote.id)).where(  # the insights sample's votes apart
            Vote.helpful.is_(False), ~Vote.visitor.startswith(insights_sample.KEY))) == counts["votes"] == 3
        channels = {e.channel for e in session.scalars(sa.select(CaseEvent).where(CaseEvent.kind == "note"))}
        assert {"phone", "chat", "in_person"} <= channels
        assert session.scalar(sa.select(sa.func.count()).where(CaseEvent.kind == "message")) >= 3
        mail = list(session.scalars(sa.select(MailRecord)))
        assert {m.resolution for m in mail} >= {"solved", "still_need_help"}
        assert {m.state for m in mail} == {"replied", "person"}


def test_every_sample_row_is_marked_and_reads_as_sample(starter):
    load(starter)
    with session_scope(starter) as session:
        for model in (Customer, Case, Signal, CaseEvent, Survey):
            assert session.scalar(sa.select(sa.func.count()).select_from(model).where(model.sample.is_(False))) == 0
        customers = list(session.scalars(sa.select(Customer)))
        assert len(customers) >= 8 and all(c.name.endswith(" (sample)") for c in customers)
        assert {"en", "zh", "nb"} == {c.lang for c in customers}
        domains = {email_of(session, c).rsplit("@", 1)[1] for c in customers}
        assert domains <= {"example.com", "example.net", "example.org"}
        assert session.scalar(sa.select(sa.func.count()).where(CustomerIdentity.kind == "phone")) >= 3
        assert all(m.dedupe_key.startswith("sample:") for m in session.scalars(sa.select(MailRecord)))
        assert all(v.visitor.startswith("sample:") for v in session.scalars(sa.select(Vote)))


def test_nothing_is_scheduled_or_sent_to_sample_customers(starter, smtp_sink):
    load(starter)
    starter.config.update(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, TEAM_ADDRESS="team@example.com")
    with session_scope(starter) as session:
        assert session.scalar(sa.select(sa.func.count(Job.id))) == 0
        # The auto-responder's worker finds nothing of the sample to send or mark.
        assert ledger.due_retries(session) == [] and unmarked(session) == []
    assert jobs.run_due(starter) == Counter()
    assert smtp_sink.messages == []


def test_loading_twice_changes_nothing(starter):
    first = load(starter)
    with session_scope(starter) as session:
        before = row_counts(session)
    assert load(starter) == Counter()
    with session_scope(starter) as session:
        assert row_counts(session) == before
    assert before["cases"] == first["cases"] and first["customers"] >= 8


def test_load_leaves_a_database_with_real_follow_ups_alone(starter):
    real_signal(starter, "vote:real-1", "real.person@example.com")
    assert load(starter) == Counter()
    with session_scope(starter) as session:
        assert session.scalar(sa.select(sa.func.count(Case.id)).where(Case.sample.is_(True))) == 0


def test_remove_deletes_exactly_the_sample_rows(starter_any):
    starter = starter_any
    # Before the load only mail and votes can be real: real follow-ups would stop the load.
    with session_scope(starter) as session:
        session.add(MailRecord(dedupe_key="real-mail", from_addr="real.before@example.com", state="replied"))
        session.add(Vote(article_id=session.scalar(sa.select(Article.id).limit(1)), visitor="real-visitor",
                         helpful=False))
        real_before = row_counts(session)
    loaded = load(starter)
    assert loaded["cases"] >= 6 and loaded["votes"] == 3 and loaded["mail_records"] >= 8
    real_cases = {real_signal(starter, "vote:real-1", "real.after@example.com"),
                  real_signal(starter, "manual:real-2", "", source="manual", article_id=None)}
    with session_scope(starter) as session:
        cases.add_note(session, agent_id=None, text="Real call.", channel="phone",
                       case=session.get(Case, min(real_cases)))
        examples.learn(session, session.scalar(sa.select(Article.id).limit(1)), "A real way to ask", source="editor")
    with session_scope(starter) as session:
        insights = Counter(mail_records=loaded["questions"], votes=loaded["article_votes"])  # kb.insights.sample's
        real_after = row_counts(session) - real_before - loaded - insights
        assert real_after["cases"] == 2 and real_after["events"] == 1 and real_after["jobs"] >= 2
        assert loaded["example_questions"] == 8 and real_after["example_questions"] == 1
    removed = remove(starter)
    for name in ("customers", "cases", "signals", "events", "surveys", "mail_records", "votes", "identities",
                 "gesture_types", "bounds", "ledger_rows", "agents", "example_questions"):
        assert removed[name] == loaded[name], name
    assert removed["kept_cases"] == removed["kept_customers"] == removed["jobs_cancelled"] == 0
    with session_scope(starter) as session:
        assert row_counts(session) == real_before + real_after
        assert {c.id for c in session.scalars(sa.select(Case))} == real_cases
        assert session.scalar(sa.select(MailRecord.dedupe_key)) == "real-mail"
        assert session.scalar(sa.select(Vote.visitor)) == "real-visitor"
        assert session.scalar(sa.select(sa.func.count(Job.id)).where(Job.state == "cancelled")) == 0
    assert remove(starter)["cases"] == 0  # a second remove finds nothing


def test_a_real_signal_on_a_sample_address_keeps_that_customer_and_case(starter_any):
    starter = starter_any
    load(starter)
    joined = real_signal(starter, "vote:real-sofia", "sofia.lind@example.com")
    with session_scope(starter) as session:
        case = session.get(Case, joined)
        assert case.sample and case.state == "new"  # it joined Sofia's open sample case
        customer_id, sample_signals = case.customer_id, session.scalar(
            sa.select(sa.func.count(Signal.id)).where(Signal.case_id == joined, Signal.sample.is_(True)))
    removed = remove(starter)
    assert removed["kept_cases"] == removed["kept_customers"] == 1
    with session_scope(starter) as session:
        assert [c.id for c in session.scalars(sa.select(Case))] == [joined]
        customer = session.get(Customer, customer_id)
        assert customer.name == "Sofia Lind" and not customer.sample
        assert email_of(session, customer) == "sofia.lind@example.com"
        signals = list(session.scalars(sa.select(Signal).where(Signal.case_id == joined)))
        assert len(signals) == sample_signals + 1 and not any(s.sample for s in signals)
        assert session.scalar(sa.select(sa.func.count(Customer.id))) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(CaseEvent).where(CaseEvent.sample)) == 0


def test_agents_work_on_sample_cases_goes_with_them_and_its_jobs_are_cancelled(starter_any):
    starter = starter_any
    load(starter)
    with session_scope(starter) as session:
        case = session.scalar(sa.select(Case).where(Case.state == "acknowledged"))
        assert cases.change_state(session, case, "resolve", agent_id=None, settings=starter.config,
                                  root_cause="delivery")
        cases.add_note(session, agent_id=None, text="Tried the sample.", channel="phone", case=case)
        cases.add_note(session, agent_id=None, text="On the customer.", customer_id=case.customer_id)
    removed = remove(starter)
    assert removed["jobs_cancelled"] == 1
    with session_scope(starter) as session:
        assert row_counts(session)["events"] == 0 and row_counts(session)["cases"] == 0
        assert session.scalar(sa.select(Job.state)) == "cancelled"
    assert jobs.run_due(starter) == Counter()


def test_first_start_imports_articles_then_loads_the_sample_once(app, capsys):
    first_start(app)
    out = capsys.readouterr().out
    assert "starter articles" in out
    assert "Loaded sample follow-up data (remove with `kb sample remove`)" in out
    with session_scope(app) as session:
        counts = row_counts(session)
        assert counts["cases"] >= 6 and counts["jobs"] == 0
    remove(app)
    first_start(app)  # a later start: the database is no longer empty, the sample stays removed
    assert "sample" not in capsys.readouterr().out
    with session_scope(app) as session:
        assert row_counts(session)["customers"] == 0


def test_first_start_without_sample_data(app_factory, capsys):
    app = app_factory(SAMPLE_DATA=False)
    first_start(app)
    out = capsys.readouterr().out
    assert "starter articles" in out and "sample" not in out
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count(Article.id))) > 0
        assert row_counts(session)["customers"] == 0 and row_counts(session)["cases"] == 0


def test_kb_sample_commands(runner, tmp_path, monkeypatch, app_factory):
    for name, value in {"KB_INSTANCE_DIR": str(tmp_path / "instance"), "KB_SECRET_KEY": TEST_SECRET,
                        "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
                        "KB_INDEX_DIR": str(tmp_path / "index")}.items():
        monkeypatch.setenv(name, value)
    assert "sample" in runner.invoke(cli, ["--help"]).output
    result = runner.invoke(cli, ["sample", "load"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Loaded sample follow-up data: 9 customers, 10 cases")
    assert "6 gesture types, 5 bounds, 5 ledger rows" in result.output
    again = runner.invoke(cli, ["sample", "load"])
    assert again.exit_code == 0 and "Nothing loaded" in again.output
    app = app_factory()
    with session_scope(app) as session:
        assert row_counts(session)["customers"] == 9 and row_counts(session)["votes"] == 0  # no articles here
    result = runner.invoke(cli, ["sample", "remove"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Removed sample follow-up data: 9 customers, 10 cases")
    assert "6 gesture types, 5 bounds, 5 ledger rows" in result.output and "Kept" not in result.output
    with session_scope(app) as session:
        assert sum(row_counts(session).values()) == 0


def test_an_agent_cannot_email_a_sample_customer_and_no_survey_goes_to_one(starter, smtp_sink):
    from kb.errors import ValidationError
    from kb.followup import messages
    from kb.followup.models import Case, Survey

    load(starter)
    starter.config.update(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, SMTP_SECURITY="none",
                          RESURVEY_DELAY_HOURS=0)
    with session_scope(starter) as session:
        agent = session.scalar(sa.select(Agent)) or create_agent(
            session, email="ingrid@example.com", name="Ingrid", role="admin", password="correct horse battery")
        case = session.scalar(sa.select(Case).where(Case.state == "acknowledged", Case.customer_id.is_not(None)))
        with pytest.raises(ValidationError, match="sample"):
            messages.send_message(session, case, agent, "Hello!", starter.config, nonce="n1")
        assert cases.change_state(session, case, "resolve", agent_id=agent.id, settings=starter.config,
                                  root_cause="product")
        case_id = case.id
    jobs.run_due(starter)
    with session_scope(starter) as session:
        assert session.scalar(sa.select(Survey).where(Survey.case_id == case_id)) is None
    assert smtp_sink.messages == []
