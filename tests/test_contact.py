"""The portal's contact form (kb.contact, kb/web/portal/contact.py): suggestions, the answer shown
first, the email to the team (aiosmtpd) through the job runner, spam and abuse limits.

One app and one SMTP sink for the module (the starter articles imported once); each test asks
from its own client address and email address, so the rate limits of one never reach another.
"""

from __future__ import annotations

import itertools
import shutil
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa

from kb import jobs
from kb.autoreply.models import MailRecord
from kb.contact import limits, marker
from kb.contact.asking import KIND
from kb.db import session_scope
from kb.insights import outcomes, searchlog
from kb.jobs.models import Job
from kb.models import utcnow
from kb.web import create_app
from tests.conftest import TEST_SECRET, close_app, csrf_token_from, make_config
from tests.mailservers.smtp import SmtpSink, module_sink  # noqa: F401 (the module-scoped "sink" fixture)
from tests.test_autoreply_worker import BASE_URL, articles_db  # noqa: F401 (a session fixture)

CONFIDENT = "I forgot my password and cannot sign in. How can I reset the password?"
VAGUE = "Do you sponsor local football clubs in Bergen?"
PER_ADDRESS, PER_CLIENT = 2, 3
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def app(tmp_path_factory, articles_db, sink):  # noqa: F811 (the imported fixture)
    """The module's app: the starter articles, small contact limits, SMTP to the sink."""
    folder = tmp_path_factory.mktemp("contact")
    shutil.copyfile(articles_db, folder / "kb.sqlite3")
    made = create_app(make_config(folder, BASE_URL=BASE_URL, CONTACT_PER_ADDRESS=PER_ADDRESS,
                                  CONTACT_PER_CLIENT=PER_CLIENT, CONTACT_MAX_CHARS=2000, **sink.settings()))
    yield made
    close_app(made)


@pytest.fixture
def asker(app):
    """A customer: their own browser, client address and email address."""
    n = next(_numbers)
    return Asker(app.test_client(), f"10.1.{n // 250}.{n % 250 + 1}", f"customer{n}@shop.example")


class Asker:
    """Posts the contact form as one browser would: CSRF token from the page, one client address."""

    def __init__(self, client, ip: str, email: str):
        self.client, self.ip, self.email = client, ip, email

    def token(self) -> str:
        return csrf_token_from(self.client.get("/en/contact", environ_base={"REMOTE_ADDR": self.ip}).text)

    def post(self, url: str, data: dict, csrf: bool = True):
        data = {**data, "csrf_token": self.token()} if csrf else data
        return self.client.post(url, data=data, environ_base={"REMOTE_ADDR": self.ip})

    def ask(self, question: str = CONFIDENT, action: str = "send", csrf: bool = True, **fields):
        data = {"name": "Kari Nordmann", "email": self.email, "subject": "", "question": question,
                "action": action, **fields}
        return self.post("/en/contact", data, csrf=csrf)

    def answer(self, page, choice: str):
        token = page.text.split('name="token" value="', 1)[1].split('"', 1)[0]
        return self.post("/en/contact/answer", {"token": token, "choice": choice, "name": "Kari Nordmann"})


def records_of(app, email: str) -> list[MailRecord]:
    """The mail records of one customer, oldest first."""
    with session_scope(app) as session:
        rows = list(session.scalars(sa.select(MailRecord).where(MailRecord.reply_to == email).order_by(MailRecord.id)))
        session.expunge_all()
    return rows


def send_jobs(app, record_id: int) -> list[Job]:
    """The contact.send jobs of one record."""
    with session_scope(app) as session:
        rows = list(session.scalars(sa.select(Job).where(Job.kind == KIND, Job.key == f"record:{record_id}")))
        session.expunge_all()
    return rows


def mails_for(sink: SmtpSink, record_id: int):
    """The emails the sink got for one question (found by their marker)."""
    wanted = marker.make(TEST_SECRET, record_id)
    found = [message_from_bytes(m.data, policy=default_policy) for m in sink.messages]
    return [m for m in found if m[marker.HEADER] == wanted]


def test_the_form_works_without_script_or_style_attributes_and_every_support_box_links_to_it(app, asker):
    page = asker.client.get("/en/contact")
    assert page.status_code == 200
    assert "style=" not in page.text and "<script>" not in page.text
    assert 'src="/static/contact.js"' in page.text and 'class="contact-trap"' in page.text
    assert 'value="suggest"' in page.text  # the no-JS way to see suggestions
    for url in ("/en/", "/en/search?q=zzzqqq"):
        assert 'href="/en/contact"' in asker.client.get(url).text, url


def test_suggestions_as_json_for_the_script_and_by_the_button_without_it(app, asker):
    token = asker.token()
    found = asker.client.post("/en/contact/suggestions", json={"subject": "", "question": "reset my password"},
                              headers={"X-CSRFToken": token})
    assert found.status_code == 200 and found.json["count"] >= 1
    assert "<details" in found.json["html"] and "How do I reset my password?" in found.json["html"]
    refused = asker.client.post("/en/contact/suggestions", json={"question": "reset my password"})
    assert refused.status_code == 400  # no CSRF token
    page = asker.ask("reset my password", action="suggest")
    assert page.status_code == 200 and "How do I reset my password?" in page.text and "<details" in page.text
    assert "reset my password</textarea>" in page.text  # the form is kept
    assert records_of(app, asker.email) == []  # looking is not asking


def test_confident_shows_the_answer_first_and_yes_records_it_solved_without_sending(app, asker, sink, monkeypatch):
    calls = []
    for name in ("question_received", "answered", "resolved"):
        monkeypatch.setattr(outcomes, name, lambda session, record, *rest, name=name: calls.append((name, record.id)))
    monkeypatch.setattr(searchlog, "mark_contacted", lambda session, visitor: calls.append(("contacted", visitor)))
    page = asker.ask()
    assert page.status_code == 200 and "Does this answer your question?" in page.text
    assert "How do I reset my password?" in page.text and "<details open" in page.text
    [record] = records_of(app, asker.email)
    assert (record.channel, record.state, record.resolution) == ("web_form", "replied", None)
    assert record.dedupe_key.startswith("web:") and record.from_addr == asker.email and record.lang == "en"
    assert record.matches and "password" in record.text and record.reason.startswith("confident")
    assert send_jobs(app, record.id) == []
    done = asker.answer(page, "yes")
    assert done.status_code == 200 and "Glad we could help" in done.text
    [record] = records_of(app, asker.email)
    assert (record.resolution, record.state) == ("solved", "replied")
    assert [c[0] for c in calls] == ["question_received", "answered", "contacted", "resolved"]
    assert all(c[1] == record.id for c in calls if c[0] != "contacted")
    assert send_jobs(app, record.id) == [] and mails_for(sink, record.id) == []
    again = asker.answer(page, "yes")
    assert "Already recorded" in again.text


def test_no_after_the_answer_sends_the_question_with_reply_to_and_the_signed_marker(app, asker, sink):
    page = asker.ask(subject="Locked out")
    done = asker.answer(page, "no")
    assert "Your question has been sent" in done.text
    [record] = records_of(app, asker.email)
    assert (record.state, record.resolution) == ("person", "still_need_help")
    assert jobs.run_due(app)["done"] >= 1
    [mail] = mails_for(sink, record.id)
    assert mail["To"] == "support@kb.example" and mail["Subject"] == "Locked out"
    assert mail["Reply-To"].addresses[0].addr_spec == asker.email
    assert mail["Reply-To"].addresses[0].display_name == "Kari Nordmann"
    assert mail["From"].addresses[0].addr_spec == "support@kb.example"
    assert marker.read(TEST_SECRET, mail[marker.HEADER]) == record.id
    assert mail["Message-ID"] == record.message_id and mail["Auto-Submitted"] is None
    text = mail.get_body(("plain",)).get_content()
    assert CONFIDENT in text and "did not answer their question" in text and "How do I reset my password?" in text


def test_not_confident_is_sent_at_once_and_says_so(app, asker, sink):
    page = asker.ask(VAGUE)
    assert "Your question has been sent" in page.text
    [record] = records_of(app, asker.email)
    assert (record.state, record.channel, record.resolution) == ("person", "web_form", None)
    assert record.reason.startswith("low-score")
    jobs.run_due(app)
    [mail] = mails_for(sink, record.id)
    assert VAGUE in mail.get_body(("plain",)).get_content()
    assert jobs.run_due(app)["done"] == 0 and len(mails_for(sink, record.id)) == 1  # sent once


def test_a_filled_honeypot_looks_sent_and_nothing_is_recorded_or_sent(app, asker):
    page = asker.ask(VAGUE, website="http://spam.example")
    assert page.status_code == 200 and "Your question has been sent" in page.text
    assert records_of(app, asker.email) == []


def test_per_address_limit_holds_across_clients_and_says_when_to_try_again(app, asker):
    for n in range(PER_ADDRESS):
        assert asker.ask(VAGUE, subject=f"q{n}").status_code == 200
    asker.ip = "10.9.9.9"  # another network, the same address (and a +tag) is still that customer
    email = asker.email
    refused = asker.ask(VAGUE, email=email.replace("@", "+again@").upper())
    assert refused.status_code == 429 and "try again in" in refused.text
    assert 3000 <= int(refused.headers["Retry-After"]) <= 3600
    assert "Do you sponsor local football clubs" in refused.text  # the form is kept
    assert len(records_of(app, email)) == PER_ADDRESS


def test_per_client_limit_holds_for_any_address(app, asker):
    statuses = [asker.ask(VAGUE, email=f"n{n}-{asker.email}").status_code for n in range(PER_CLIENT + 1)]
    assert statuses == [200] * PER_CLIENT + [429]


def test_a_window_restarts_after_an_hour_and_a_refusal_by_one_limit_costs_the_other_nothing(app):
    now = utcnow()
    settings = {**app.config, "CONTACT_PER_ADDRESS": 1, "CONTACT_PER_CLIENT": 5}
    with session_scope(app) as session:
        limits.check(session, settings, "w@shop.example", "192.0.2.7", now=now)
        with pytest.raises(limits.RateLimited) as refused:
            limits.check(session, settings, "w@shop.example", "192.0.2.7", now=now + timedelta(minutes=59))
        assert refused.value.retry_at == now + limits.WINDOW
        client = session.get(limits.RateCount, limits.client_key(TEST_SECRET, "192.0.2.7"))
        assert client.count == 1
        limits.check(session, settings, "w@shop.example", "192.0.2.7", now=now + timedelta(minutes=61))
        session.commit()


def test_size_cap_and_field_messages_keep_the_form(app, asker):
    long = asker.ask("word " * 500)  # 2,500 characters over the module's cap of 2,000
    assert long.status_code == 422 and "shorten it to at most 2000 characters" in long.text.replace(",", "")
    bad = asker.ask(VAGUE, email="not an address", name="n" * 121)
    assert bad.status_code == 422 and "name@example.com" in bad.text and "at most 120 characters" in bad.text
    assert 'aria-invalid="true"' in bad.text and "Do you sponsor local football clubs" in bad.text
    giant = asker.ask("x" * 3_000_000)
    assert giant.status_code == 413
    assert records_of(app, asker.email) == []


def test_a_post_without_csrf_token_is_refused(app, asker):
    assert asker.ask(VAGUE, csrf=False).status_code == 400
    assert records_of(app, asker.email) == []


def test_hostile_text_is_cleaned_and_escaped_in_the_page_and_the_email(app, asker, sink):
    hostile = "<script>alert(1)</script> <b>bold</b>\x00 nul\x07 bell\nsecond line"
    shown = asker.ask(hostile, action="suggest")
    assert "<script>alert" not in shown.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    page = asker.ask(hostile, subject="Hi\x00 <i>there</i>\r\nBcc: x@evil.example", name="Eve\x1b[31m")
    assert page.status_code == 200
    [record] = records_of(app, asker.email)
    assert "\x00" not in record.text and "\x07" not in record.text and "second line" in record.text
    assert record.subject == "Hi <i>there</i> Bcc: x@evil.example"
    jobs.run_due(app)
    [mail] = mails_for(sink, record.id)
    assert mail["Bcc"] is None and mail["Subject"] == "Hi <i>there</i> Bcc: x@evil.example"
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<b>bold" not in html


def test_smtp_down_keeps_the_question_and_the_job_sends_it_later(app, asker, sink):
    sink.stop()
    try:
        asker.ask(VAGUE)
        [record] = records_of(app, asker.email)
        assert jobs.run_due(app)["retry"] >= 1
        [job] = send_jobs(app, record.id)
        assert job.state == "pending" and job.attempts == 1 and "SendFailed" in job.last_error
    finally:
        sink.start()
    with session_scope(app) as session:  # the retry's time has come
        session.execute(sa.update(Job).where(Job.id == job.id).values(run_at=utcnow()))
        session.commit()
    jobs.run_due(app)
    assert len(mails_for(sink, record.id)) == 1 and send_jobs(app, record.id)[0].state == "done"


def test_forged_or_altered_markers_are_not_read():
    value = marker.make(TEST_SECRET, 42)
    assert marker.read(TEST_SECRET, value) == 42
    assert marker.read("another-secret", value) is None
    assert marker.read(TEST_SECRET, value.replace("42.", "43.")) is None
    assert marker.read(TEST_SECRET, "42.0123456789abcdef0123456789abcdef") is None
    assert marker.read(TEST_SECRET, None) is None


def test_agent_mail_shows_the_web_form_channel(app, asker):
    from tests.agent_helpers import login, make_agent

    asker.ask(VAGUE)
    [record] = records_of(app, asker.email)
    make_agent(app, "support-contact@kb.example", role="support")
    agent = app.test_client()
    assert login(agent, "support-contact@kb.example").status_code == 302
    page = agent.get("/agent/mail").text
    row = page.split(f'id="mail-{record.id}"', 1)[1].split("</tr>", 1)[0]
    assert "web form" in row and asker.email in row


@pytest.mark.postgres
def test_limits_hold_when_many_workers_count_at_once(app_factory, pg_database_url):
    from tests.concurrency import at_once

    pg = app_factory(DATABASE_URL=pg_database_url)
    now = utcnow()

    def one(session):
        try:
            limits.check(session, {**pg.config, "CONTACT_PER_ADDRESS": 3}, "race@shop.example", "192.0.2.9", now=now)
            return True
        except limits.RateLimited:
            return False

    assert sorted(at_once(pg, [one] * 8)) == [False] * 5 + [True] * 3  # the first row is created by one of them
    later = now + limits.WINDOW + timedelta(seconds=1)  # a new window: restarted by exactly one

    def next_hour(session):
        try:
            limits.check(session, {**pg.config, "CONTACT_PER_ADDRESS": 3}, "race@shop.example", "192.0.2.9", now=later)
            return True
        except limits.RateLimited:
            return False

    assert sorted(at_once(pg, [next_hour] * 6)) == [False] * 3 + [True] * 3
