"""The mail ledger: claims, decisions, the send state machine, recovery, resolutions and cursors.

The exactly-once tests run on SQLite and on a real PostgreSQL server, with two sessions standing
in for two workers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from kb.autoreply import ledger
from kb.autoreply.matcher import Match
from kb.autoreply.models import MailRecord
from kb.db import get_db, session_scope
from kb.errors import NotFound, ValidationError
from kb.models import utcnow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request, app_factory, tmp_path):
    """An app on SQLite, or on a fresh PostgreSQL database."""
    if request.param == "postgres":
        return app_factory(DATABASE_URL=request.getfixturevalue("pg_database_url"))
    return app_factory()


@pytest.fixture
def two_sessions(db_app):
    """Two independent sessions: two workers on the same database."""
    with session_scope(db_app) as first, session_scope(db_app) as second:
        yield first, second


def claim(session, key="<a1@example.com>", sender="ann@example.com", **fields):
    """Claim an email with sensible defaults."""
    values = dict(dedupe_key=key, message_id=key, folder="INBOX", uidvalidity=7, uid=1,
                  from_addr=sender, reply_to=sender, subject="Where is my parcel?")
    values.update(fields)
    return ledger.claim(session, **values)


def age(session, record, **columns_seconds):
    """Move the record's timestamps into the past, as if time had passed."""
    values = {column: utcnow() - timedelta(seconds=s) for column, s in columns_seconds.items()}
    session.execute(sa.update(MailRecord).where(MailRecord.id == record.id).values(**values))
    session.commit()
    session.refresh(record)


def test_dedupe_key_is_the_message_id_or_a_hash_of_the_content():
    assert ledger.dedupe_key_for(b"whatever", " <x@y> ") == "<x@y>"
    crlf = ledger.dedupe_key_for(b"Subject: hi\r\n\r\nbody\r\n", "")
    assert crlf.startswith("sha256:") and crlf == ledger.dedupe_key_for(b"Subject: hi\n\nbody\n", "")
    assert crlf != ledger.dedupe_key_for(b"Subject: hi\n\nother body\n", "")
    long_id = "<" + "x" * 600 + "@y>"
    assert ledger.dedupe_key_for(b"", long_id).startswith("mid-sha256:")
    assert len(ledger.dedupe_key_for(b"", long_id)) <= 500


def test_an_email_is_claimed_once_by_two_workers(two_sessions):
    first, second = two_sessions
    record = claim(first)
    assert record.state == "new" and record.id
    assert claim(second) is None
    assert claim(first) is None  # the same worker reading it again (restart, second --once)
    assert second.scalar(sa.select(sa.func.count()).select_from(MailRecord)) == 1


def test_only_one_worker_wins_the_right_to_send(two_sessions):
    first, second = two_sessions
    record = claim(first)
    ledger.record_decision(first, record, "reply", "confident", [], "en")
    theirs = second.get(MailRecord, record.id)
    assert ledger.begin_sending(first, record, "<r1@kb.example>")
    assert not ledger.begin_sending(second, theirs, "<r2@kb.example>")
    assert theirs.state == "sending" and theirs.reply_message_id == "<r1@kb.example>"
    assert ledger.finish_sent(first, record)
    assert record.state == "replied"
    assert not ledger.begin_sending(second, theirs, "<r3@kb.example>")  # a replied email is never resent


def test_reply_message_ids_are_unique_in_the_database(session):
    one, two = claim(session, "<1@x>"), claim(session, "<2@x>")
    assert ledger.begin_sending(session, one, "<same@kb>")
    with pytest.raises(sa.exc.IntegrityError):
        ledger.begin_sending(session, two, "<same@kb>")
    session.rollback()


def test_decisions_set_the_state_and_keep_the_matches(session, make_article):
    article = make_article("Track your parcel")
    skipped, person, reply = (claim(session, f"<{n}@x>", f"{n}@example.com") for n in "abc")
    ledger.record_decision(session, skipped, "skip", "auto-submitted: auto-replied")
    ledger.record_decision(session, person, "person", "low-score: 0.1")
    ledger.record_decision(session, reply, "reply", "confident", [Match(str(article.id), 0.61, ["parcel"])], "en")
    assert (skipped.state, skipped.reason) == ("skipped", "auto-submitted: auto-replied")
    assert person.state == "person"
    assert reply.state == "new" and reply.lang == "en"
    assert reply.matches == [{"article_id": str(article.id), "slug": article.slug, "title": "Track your parcel",
                              "score": pytest.approx(0.61), "terms": ["parcel"]}]
    with pytest.raises(ValidationError):
        ledger.record_decision(session, reply, "maybe", "?")


def test_the_sender_cap_hands_a_second_email_to_a_person(session):
    first = claim(session, "<1@x>", "Ann@Example.com")
    ledger.record_decision(session, first, "reply", "confident")
    assert ledger.begin_sending(session, first, "<r1@kb>") and ledger.finish_sent(session, first)
    second = claim(session, "<2@x>", "ann@example.com")
    ledger.record_decision(session, second, "reply", "confident", sender_cap=1, window_hours=24)
    assert second.state == "person" and second.reason.startswith("sender-cap: ann@example.com")
    other = claim(session, "<3@x>", "bob@example.com")
    assert ledger.record_decision(session, other, "reply", "confident").state == "new"
    age(session, first, sending_since=25 * 3600)
    third = claim(session, "<4@x>", "ann@example.com")
    assert ledger.record_decision(session, third, "reply", "confident", window_hours=24).state == "new"
    fourth = claim(session, "<5@x>", "ann@example.com")
    assert ledger.record_decision(session, fourth, "reply", "confident", sender_cap=2).state == "new"


def test_a_refused_send_is_retried_with_backoff(session):
    record = claim(session)
    ledger.record_decision(session, record, "reply", "confident")
    assert ledger.begin_sending(session, record, "<r1@kb>")
    before = utcnow()
    assert ledger.fail_send(session, record, "451 try later", backoff_base=60)
    assert record.state == "retry" and record.attempts == 1 and "451 try later" in record.reason
    assert before + timedelta(seconds=59) < record.next_attempt_at < utcnow() + timedelta(seconds=61)
    assert ledger.due_retries(session) == []
    assert ledger.due_retries(session, utcnow() + timedelta(seconds=61)) == [record]

    assert ledger.begin_sending(session, record, "<r2@kb>")
    ledger.fail_send(session, record, "451 again", backoff_base=60)
    assert record.attempts == 2
    assert record.next_attempt_at > utcnow() + timedelta(seconds=110)  # doubled
    assert not ledger.fail_send(session, record, "not sending")  # only a send in hand can fail
    age(session, record, next_attempt_at=1)
    assert ledger.begin_sending(session, record, "<r3@kb>") and ledger.finish_sent(session, record)
    assert record.state == "replied" and ledger.due_retries(session, utcnow() + timedelta(days=1)) == []


def test_backoff_is_capped(session):
    record = claim(session)
    ledger.record_decision(session, record, "reply", "confident")
    for _ in range(3):
        assert ledger.begin_sending(session, record, f"<r{record.attempts}@kb>")
        ledger.fail_send(session, record, "down", backoff_base=60, backoff_max=90)
    assert record.attempts == 3
    assert record.next_attempt_at < utcnow() + timedelta(seconds=91)


def test_a_send_interrupted_for_long_goes_to_a_person_not_resent(two_sessions):
    first, second = two_sessions
    record = claim(first)
    ledger.record_decision(first, record, "reply", "confident")
    assert ledger.begin_sending(first, record, "<r1@kb>")
    assert ledger.recover_interrupted(second, older_than_seconds=120) == 0  # still fresh: maybe in hand
    age(first, record, sending_since=121)
    assert ledger.recover_interrupted(second, older_than_seconds=120) == 1
    first.refresh(record)
    assert record.state == "person" and record.reason.startswith("unknown-if-sent")
    assert not ledger.begin_sending(first, record, "<r2@kb>")
    assert ledger.finish_sent(first, record)  # the slow send did finish after all: say so
    assert record.state == "replied"


def test_a_claim_abandoned_before_sending_is_taken_over(two_sessions):
    first, second = two_sessions
    record = claim(first)
    assert claim(second) is None  # the claimer may still be working on it
    age(first, record, updated_at=ledger.RECLAIM_AFTER_SECONDS + 5)
    taken = claim(second)
    assert taken is not None and taken.id == record.id
    assert claim(first) is None  # only one taker
    ledger.record_decision(second, taken, "reply", "confident")
    assert ledger.begin_sending(second, taken, "<r@kb>")
    age(second, taken, updated_at=1000)
    assert claim(first) is None  # a reply under way is never taken over


def test_our_message_ids_and_marking(session):
    replied, skipped = claim(session, "<1@x>"), claim(session, "<2@x>", "b@example.com")
    ledger.record_decision(session, replied, "reply", "confident")
    assert ledger.unmarked(session) == []  # undecided and to-be-sent mail is not marked yet
    ledger.begin_sending(session, replied, "<r1@kb>")
    ledger.finish_sent(session, replied)
    ledger.record_decision(session, skipped, "skip", "list-id: a list")
    assert ledger.our_message_ids(session) == {"<r1@kb>"}
    assert ledger.unmarked(session) == [replied, skipped]
    ledger.set_marked(session, replied)
    assert ledger.unmarked(session) == [skipped]


def test_resolutions_are_recorded_once_and_help_hands_the_email_to_a_person(session):
    record = claim(session)
    ledger.record_decision(session, record, "reply", "confident")
    ledger.begin_sending(session, record, "<r1@kb>")
    ledger.finish_sent(session, record)
    ledger.set_marked(session, record)

    assert ledger.resolve(session, record.id, "solved") == (record, True)
    assert ledger.resolve(session, record.id, "solved") == (record, False)
    assert record.resolution == "solved" and record.resolved_at is not None

    assert ledger.resolve(session, record.id, "help") == (record, True)  # changed their mind
    # The team hears of it through the follow-up case the portal opens (tests/test_followup_signals.py),
    # no longer through an alert of the mail worker: nothing is queued for one.
    assert (record.state, record.resolution, record.alert_state) == ("person", "still_need_help", None)
    assert record.reply_message_id == "<r1@kb>" and not record.marked  # re-marked as needing a person
    assert ledger.resolve(session, record.id, "still_need_help")[1] is False
    assert ledger.resolve(session, record.id, "solved")[1] is False

    with pytest.raises(NotFound):
        ledger.resolve(session, 9999, "solved")
    with pytest.raises(ValidationError):
        ledger.resolve(session, record.id, "delete")


def test_the_cursor_moves_forward_and_resets_with_uidvalidity(two_sessions):
    first, second = two_sessions
    assert ledger.get_cursor(first, "INBOX") is None
    ledger.save_cursor(first, "INBOX", 7, 10)
    ledger.save_cursor(second, "INBOX", 7, 5)  # a slower worker never moves it back
    assert (ledger.get_cursor(first, "INBOX").uidvalidity, ledger.get_cursor(first, "INBOX").last_uid) == (7, 10)
    cursor = ledger.save_cursor(second, "INBOX", 8, 3)
    assert (cursor.uidvalidity, cursor.last_uid) == (8, 3)
    assert ledger.get_cursor(second, "Archive") is None


def test_list_records_newest_first_and_by_state(session):
    a, b = claim(session, "<1@x>"), claim(session, "<2@x>", "b@example.com")
    ledger.record_decision(session, a, "skip", "list mail")
    assert ledger.list_records(session) == [b, a]
    assert ledger.list_records(session, "skipped") == [a]
    assert ledger.list_records(session, "replied") == []


def test_the_migration_creates_the_mail_tables(db_app):
    tables = set(sa.inspect(get_db(db_app).engine).get_table_names())
    assert {"mail_records", "mail_cursors"} <= tables


def test_the_cleaned_text_is_kept_capped(session):
    record = claim(session, text="Where is it?")
    assert record.text == "Where is it?"
    ledger.record_decision(session, record, "person", "low-score", text="x" * (ledger.MAX_TEXT + 50))
    assert len(record.text) == ledger.MAX_TEXT
    ledger.record_decision(session, claim(session, "<2@x>", text="kept"), "skip", "list")
    assert ledger.list_records(session, "skipped")[0].text == "kept"  # no text given: unchanged


@pytest.mark.parametrize("address, key", [
    ("victim@example.com", "victim@example.com"),
    ("victim+1@example.com", "victim@example.com"),
    ("Victim+news+2@EXAMPLE.com", "victim@example.com"),
    ("victim@example.com.", "victim@example.com"),
    ('"victim+3"@example.com', "victim@example.com"),
    ("first.last@example.com", "first.last@example.com"),  # dots matter at most providers
    ("First.Last+x@gmail.com", "firstlast@gmail.com"),  # not at Gmail
    ("first.last@googlemail.com", "firstlast@gmail.com"),
    ("jürgen@exämple.com", "jürgen@xn--exmple-cua.com"),
    ("jürgen@xn--exmple-cua.com", "jürgen@xn--exmple-cua.com"),
    ("+only@example.com", "+only@example.com"),  # nothing before the tag: the address itself
    ("", ""),
    ("no-at-sign", "no-at-sign"),
    ("\udcff@example.com", None),
])
def test_sender_key_folds_plus_tags_case_and_gmail_dots(address, key):
    from kb.autoreply.addresses import sender_key

    result = sender_key(address)
    if key is None:  # undecodable bytes: any stable key that the database can store
        assert result == sender_key(address) and result.encode("utf-8")
    else:
        assert result == key


def test_the_sender_cap_holds_across_plus_tags_and_case(db_app):
    with session_scope(db_app) as session:
        first = claim(session, "<0@x>", "victim@example.com")
        ledger.record_decision(session, first, "reply", "confident")
        assert ledger.begin_sending(session, first, "<r0@kb>") and ledger.finish_sent(session, first)
        for n, sender in enumerate(["victim+1@example.com", "Victim@EXAMPLE.com", "victim+abc@Example.COM"], 1):
            record = claim(session, f"<{n}@x>", sender)
            ledger.record_decision(session, record, "reply", "confident")
            assert record.state == "person" and record.reason.startswith("sender-cap: "), sender
        other = claim(session, "<9@x>", "victim2@example.com")
        assert ledger.record_decision(session, other, "reply", "confident").state == "new"


def sending(session, key="<a1@example.com>", sender="ann@example.com"):
    """A claimed email whose reply is being sent."""
    record = claim(session, key, sender)
    ledger.record_decision(session, record, "reply", "confident: best score 0.500")
    assert ledger.begin_sending(session, record, f"<r-{key.strip('<>')}>")
    return record


def test_a_permanent_refusal_goes_to_a_person_with_the_servers_answer(session):
    record = sending(session)
    assert ledger.refuse_send(session, record, "The SMTP server refused the recipient: 550 5.1.1 no such user")
    assert record.state == "person" and record.next_attempt_at is None
    assert record.reason.startswith("send-refused: ") and "550 5.1.1 no such user" in record.reason
    assert ledger.due_retries(session, utcnow() + timedelta(days=1)) == []
    # Nothing reached the customer, so the refusal does not use up their auto-reply.
    later = claim(session, "<a2@example.com>", "ann@example.com")
    assert ledger.record_decision(session, later, "reply", "confident").state == "new"


def test_retries_have_a_limit_then_a_person_takes_the_email(session):
    record = sending(session)
    for attempt in range(1, 4):
        ledger.fail_send(session, record, f"451 busy {attempt}", backoff_base=60, max_attempts=3)
        if attempt < 3:
            assert record.state == "retry"
            age(session, record, next_attempt_at=1)
            assert ledger.begin_sending(session, record, record.reply_message_id)
    assert record.state == "person" and record.attempts == 3 and record.next_attempt_at is None
    assert record.reason.startswith("send-failed: gave up after 3 attempts") and "451 busy 3" in record.reason


def test_a_later_success_clears_the_failure_text(session):
    record = sending(session)
    ledger.fail_send(session, record, "451 4.3.0 try again later", backoff_base=60)
    ledger.fail_send(session, record, "x")  # not sending: ignored
    age(session, record, next_attempt_at=1)
    assert ledger.begin_sending(session, record, record.reply_message_id)
    ledger.fail_send(session, record, "421 4.3.2 closing", backoff_base=60)
    assert "421" in record.reason and "451" not in record.reason  # only the latest failure is kept
    age(session, record, next_attempt_at=1)
    assert ledger.begin_sending(session, record, record.reply_message_id) and ledger.finish_sent(session, record)
    assert record.state == "replied" and record.reason == "confident: best score 0.500"


def test_the_migration_gives_existing_records_their_sender_key(db_app):
    from alembic import command

    from tests.test_postgres import alembic_config

    engine = get_db(db_app).engine
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
        conn.execute(sa.text(
            "INSERT INTO mail_records (dedupe_key, message_id, folder, from_addr, reply_to, subject, lang, text, "
            "state, reason, matches, attempts, marked, created_at, updated_at, reply_message_id, sending_since) "
            "VALUES (:key, '', 'INBOX', :addr, :addr, '', '', '', 'replied', '', '[]', 0, :no, :now, :now, "
            ":reply, :now)"), [{"key": f"<{n}@x>", "addr": addr, "no": False, "now": utcnow().replace(tzinfo=None),
                                "reply": f"<r{n}@kb>"}
                               for n, addr in enumerate(["victim+old@example.com", "bob@example.com"])])
        command.upgrade(alembic_config(conn), "head")
    with session_scope(db_app) as session:
        keys = dict(session.execute(sa.select(MailRecord.reply_to, MailRecord.sender_key)).all())
        assert keys == {"victim+old@example.com": "victim@example.com", "bob@example.com": "bob@example.com"}
        later = claim(session, "<new@x>", "victim@example.com")  # the cap sees the reply sent before the upgrade
        assert ledger.record_decision(session, later, "reply", "confident").state == "person"
@pytest.fixture
def db_session(db_app):
    """A session on SQLite or PostgreSQL (the parametrised ``db_app``)."""
    with session_scope(db_app) as session:
        yield session


def surrogates(raw: bytes) -> str:
    """Bytes as the email package hands on 8-bit header bytes: ASCII with surrogate escapes."""
    return raw.decode("ascii", "surrogateescape")


def test_what_an_email_holds_never_breaks_the_first_write_on_either_database(db_session):
    idn = surrogates("用户@例子.广告".encode())
    record = claim(db_session, "<nul\x00@x>", idn, message_id="<nul\x00@x>", reply_to=surrogates(b"carol\xff@x"),
                   subject="Where\x00 is my parcel?", text="body\x00 with a NUL")
    db_session.expire_all()
    stored = db_session.get(MailRecord, record.id)
    assert stored.from_addr == "用户@例子.广告"  # the raw UTF-8 read as UTF-8, not dropped
    assert stored.reply_to == "carol\ufffd@x" and stored.subject == "Where\ufffd is my parcel?"
    assert stored.text == "body\ufffd with a NUL" and "\x00" not in stored.message_id
    assert "\x00" not in stored.dedupe_key and claim(db_session, "<nul\x00@x>") is None  # still one email
    ledger.record_decision(db_session, stored, "person", "low-score: 'x\x00'", [{"title": "\x00", "terms": [idn]}])
    assert stored.reason == "low-score: 'x\ufffd'" and stored.matches == [{"title": "\ufffd", "terms": ["用户@例子.广告"]}]


def test_a_shadow_mode_key_past_the_column_is_hashed_and_keys_stay_unique(db_session):
    near_limit = "<" + "m" * 490 + "@customer.example>"
    first = claim(db_session, ledger.DRY_RUN_KEY + near_limit + "1", message_id=near_limit)
    second = claim(db_session, ledger.DRY_RUN_KEY + near_limit + "2", message_id=near_limit)
    assert first and second and first.id != second.id  # cut to the same 500 characters, they would be one
    assert first.dedupe_key.startswith(ledger.DRY_RUN_KEY) and len(first.dedupe_key) <= ledger.KEY_LENGTH
    assert claim(db_session, ledger.DRY_RUN_KEY + near_limit + "1") is None


def test_an_email_whose_handling_never_finishes_goes_to_a_person_after_the_attempt_limit(two_sessions):
    first, second = two_sessions
    record = claim(first, max_attempts=3)
    assert (record.handling_attempts, record.state) == (1, "new") and record.handling_started_at
    for attempt in (2, 3):  # the worker died each time; the next start takes it over
        age(first, record, updated_at=ledger.RECLAIM_AFTER_SECONDS + 5)
        taken = claim(second, max_attempts=3)
        assert taken.handling_attempts == attempt and taken.state == "new"
        first.refresh(record)
    age(first, record, updated_at=ledger.RECLAIM_AFTER_SECONDS + 5)
    handed = claim(second, max_attempts=3)
    assert handed.state == "person" and handed.reason.startswith("unfinished: processing did not finish in 3 attempt")
    assert claim(first, max_attempts=3) is None


def test_an_email_given_back_on_stop_is_taken_over_at_once_without_counting(two_sessions):
    first, second = two_sessions
    record = claim(first)
    assert ledger.release(first, record)
    taken = claim(second)  # no waiting for RECLAIM_AFTER_SECONDS: its worker said it stopped
    assert taken.id == record.id and taken.handling_attempts == 1


def test_a_bare_row_records_an_email_that_could_not_be_stored(db_session):
    bare = ledger.claim_unrecordable(db_session, dedupe_key="<x@y>", folder="INBOX", uidvalidity=7, uid=3,
                                     error="DataError: refused")
    assert bare.state == "person" and "could not be stored (DataError: refused)" in bare.reason
    assert "UID 3" in bare.reason
    assert ledger.claim_unrecordable(db_session, dedupe_key="<x@y>", folder="INBOX", uidvalidity=7, uid=3,
                                     error="again") is None


def test_marking_that_keeps_breaking_the_connection_is_given_up(session):
    record = claim(session)
    ledger.record_decision(session, record, "person", "low-score")
    assert not ledger.mark_failed(session, record, max_attempts=2) and ledger.unmarked(session) == [record]
    assert ledger.mark_failed(session, record, max_attempts=2) and ledger.unmarked(session) == []
