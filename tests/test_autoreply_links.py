"""Signed feedback links: they round-trip, and a forged or altered one is refused."""

from __future__ import annotations

import pytest
from itsdangerous import Signer, URLSafeSerializer

from kb.autoreply import links
from kb.errors import ValidationError

SECRET = "a-secret-that-is-long-enough-for-tests"


def token_of(url: str) -> str:
    """The token at the end of a feedback URL."""
    return url.rsplit("/", 1)[1]


def test_feedback_urls_sign_the_record_and_the_action():
    solved, help_ = links.make_feedback_urls("https://help.example.com/", SECRET, 42)
    assert solved.startswith("https://help.example.com/mail/feedback/")
    assert help_.startswith("https://help.example.com/mail/feedback/") and solved != help_
    assert links.read_token(SECRET, token_of(solved)) == (42, "solved")
    assert links.read_token(SECRET, token_of(help_)) == (42, "help")


@pytest.mark.parametrize("forge", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),     # altered signature
    lambda t: URLSafeSerializer(SECRET, salt="kb-mail-feedback").dumps({"r": 43, "a": "solved"})[:-1] + "x",
    lambda t: URLSafeSerializer("another-secret", salt="kb-mail-feedback").dumps({"r": 42, "a": "solved"}),
    lambda t: URLSafeSerializer(SECRET, salt="other-purpose").dumps({"r": 42, "a": "solved"}),
    lambda t: "",
    lambda t: "not.a.token",
])
def test_forged_or_altered_tokens_are_refused(forge):
    good = token_of(links.make_feedback_urls("https://h", SECRET, 42)[0])
    with pytest.raises(ValidationError, match="not valid"):
        links.read_token(SECRET, forge(good))


@pytest.mark.parametrize("payload", [{"r": 1, "a": "delete"}, {"r": "1", "a": "solved"}, [1, "solved"],
                                     {"r": True, "a": "solved"}])
def test_a_signed_but_meaningless_payload_is_refused(payload):
    token = URLSafeSerializer(SECRET, salt="kb-mail-feedback").dumps(payload)
    with pytest.raises(ValidationError):
        links.read_token(SECRET, token)


def test_links_need_a_secret_and_a_known_action():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        links.make_feedback_urls("https://h", "", 1)
    with pytest.raises(ValidationError):
        links.make_token(SECRET, 1, "delete")


# The portal route behind the links: /mail/feedback/<token>

from datetime import timedelta  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from kb.autoreply import ledger  # noqa: E402
from kb.autoreply.models import MailRecord  # noqa: E402
from kb.db import session_scope  # noqa: E402
from kb.followup.models import Case  # noqa: E402
from kb.models import utcnow  # noqa: E402
from tests.conftest import TEST_SECRET, csrf_token_from  # noqa: E402


def replied_record(app, lang="en") -> int:
    """A record kb replied to; returns its id."""
    with session_scope(app) as session:
        record = ledger.claim(session, dedupe_key="<q@x>", message_id="<q@x>", folder="INBOX", uidvalidity=1,
                              uid=1, from_addr="ann@example.org", reply_to="ann@example.org",
                              subject="Parcel", text="Where is my parcel?")
        ledger.record_decision(session, record, "reply", "confident", [], lang)
        ledger.begin_sending(session, record, "<r@kb>")
        ledger.finish_sent(session, record)
        return record.id


def path_of(url: str) -> str:
    """The path of an absolute feedback URL."""
    return "/mail/feedback/" + token_of(url)


def click(client, url: str):
    """Open the link, then press the confirm button, as a customer does."""
    page = client.get(path_of(url))
    assert page.status_code == 200
    return client.post(path_of(url), data={"csrf_token": csrf_token_from(page.text)})


def test_opening_a_link_records_nothing_until_confirmed(app, client):
    record_id = replied_record(app)
    solved, _ = links.make_feedback_urls("http://127.0.0.1:5000", TEST_SECRET, record_id)
    page = client.get(path_of(solved))
    assert page.status_code == 200 and "Yes, it is solved" in page.text
    with session_scope(app) as session:
        assert session.get(MailRecord, record_id).resolution is None  # link scanners change nothing
    assert client.post(path_of(solved)).status_code == 400  # no CSRF token: refused


def test_solved_is_recorded_once(app, client):
    record_id = replied_record(app)
    solved, _ = links.make_feedback_urls("http://127.0.0.1:5000", TEST_SECRET, record_id)
    first = click(client, solved)
    assert first.status_code == 200 and "glad the articles helped" in first.text
    again = click(client, solved)
    assert again.status_code == 200 and "already have your answer" in again.text
    with session_scope(app) as session:
        record = session.get(MailRecord, record_id)
        assert (record.resolution, record.state, record.alert_state) == ("solved", "replied", None)


def test_still_need_help_hands_the_email_to_a_person_in_its_language(app, client):
    record_id = replied_record(app, lang="nb")
    _, help_url = links.make_feedback_urls("http://127.0.0.1:5000", TEST_SECRET, record_id)
    page = client.get(path_of(help_url))
    assert "Ja, jeg trenger fortsatt hjelp" in page.text and 'lang="nb"' in page.text
    done = click(client, help_url)
    assert "En av oss svarer" in done.text
    with session_scope(app) as session:
        record = session.get(MailRecord, record_id)
        assert (record.resolution, record.state, record.alert_state) == ("still_need_help", "person", None)
        [case] = session.scalars(sa.select(Case)).all()  # the team hears of it through the case's alert
        assert (case.source, case.lang, case.thread_message_id) == ("still_need_help", "nb", "<q@x>")
    assert "allerede" in click(client, help_url).text


def test_forged_and_stale_links_get_a_clear_error_page(app, client):
    record_id = replied_record(app)
    forged = links.make_feedback_urls("http://h", "some-other-secret-key", record_id)[0]
    csrf = csrf_token_from(client.get(path_of(links.make_feedback_urls("http://h", TEST_SECRET, record_id)[0])).text)
    for response in (client.get(path_of(forged)), client.post(path_of(forged), data={"csrf_token": csrf})):
        assert response.status_code == 400 and "not valid" in response.text
        assert "Traceback" not in response.text
    with session_scope(app) as session:
        assert session.get(MailRecord, record_id).resolution is None
    gone = links.make_feedback_urls("http://h", TEST_SECRET, record_id + 100)[1]
    response = client.get(path_of(gone))
    assert response.status_code == 404 and "no longer on record" in response.text


@pytest.mark.parametrize("record_id", [0, -1, 2**31, 2**63, 2**64, 10**30])
def test_record_ids_no_database_row_can_have_are_refused(record_id):
    token = URLSafeSerializer(SECRET, salt="kb-mail-feedback").dumps({"r": record_id, "a": "solved"})
    with pytest.raises(ValidationError, match="not valid"):
        links.read_token(SECRET, token)


@pytest.mark.parametrize("payload", [b"not base64!", b"bm90IGpzb24", b"e30"])  # garbage, "not json", "{}"
def test_a_validly_signed_payload_that_is_not_ours_is_refused(payload):
    token = Signer(SECRET, salt="kb-mail-feedback").sign(payload).decode()
    with pytest.raises(ValidationError, match="not valid"):
        links.read_token(SECRET, token)


def age_record(app, record_id: int, days: float) -> None:
    """Pretend the email arrived ``days`` ago."""
    with session_scope(app) as session:
        session.get(MailRecord, record_id).created_at = utcnow() - timedelta(days=days)


def test_feedback_links_expire_after_feedback_link_days(app, client):
    record_id = replied_record(app)
    solved, _ = links.make_feedback_urls("http://h", TEST_SECRET, record_id)
    age_record(app, record_id, 29)
    assert client.get(path_of(solved)).status_code == 200
    age_record(app, record_id, 31)
    page = client.get(path_of(solved))
    assert page.status_code == 410 and "This link has expired" in page.text and "write to us again" in page.text
    csrf = csrf_token_from(client.get("/agent/login").text)
    assert client.post(path_of(solved), data={"csrf_token": csrf}).status_code == 410
    with session_scope(app) as session:
        assert session.get(MailRecord, record_id).resolution is None


def test_the_link_lifetime_is_a_setting(app_factory):
    app = app_factory(FEEDBACK_LINK_DAYS=60)
    record_id = replied_record(app)
    age_record(app, record_id, 31)
    _, help_url = links.make_feedback_urls("http://h", TEST_SECRET, record_id)
    assert app.test_client().get(path_of(help_url)).status_code == 200
