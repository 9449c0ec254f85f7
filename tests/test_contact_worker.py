"""The mail worker and the contact form's copies (pymap in the test process, aiosmtpd): kb's own
copy of a question is recorded once, never answered nor counted, and shown as waiting for a person;
a forged marker changes nothing."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import sqlalchemy as sa

from kb import jobs
from kb.autoreply.models import MailRecord
from kb.contact import marker
from kb.db import session_scope
from tests.conftest import TEST_SECRET
from tests.test_autoreply_worker import articles_db, mail_app, make_email, make_worker, records  # noqa: F401
from tests.test_contact import CONFIDENT, Asker


def test_the_worker_leaves_the_marked_copy_for_a_person_and_counts_it_once(mail_app, pymap_server, smtp_sink):
    asker = Asker(mail_app.test_client(), "10.2.0.1", "kari@shop.example")
    asker.answer(asker.ask(CONFIDENT, subject="Locked out"), "no")  # confident: unmarked, kb would answer it
    assert jobs.run_due(mail_app)["done"] == 1
    [copy] = smtp_sink.wait_for(1)
    pymap_server.append(copy.data)
    pymap_server.append(copy.data)  # delivered twice: still one record
    counts = make_worker(mail_app).run_once()
    assert (counts["skipped"], counts["already"], counts["replied"]) == (1, 1, 0)
    question, mailbox_copy = records(mail_app)
    assert question.channel == "web_form" and mailbox_copy.channel == "email"
    assert mailbox_copy.state == "skipped"
    assert mailbox_copy.reason == f"contact-form-copy: sent from the contact form: question #{question.id}"
    assert mailbox_copy.reply_to == "kari@shop.example" and mailbox_copy.reply_message_id is None
    flags = pymap_server.flags()
    assert "kb-needs-person" in flags[mailbox_copy.uid] and "kb-skipped" not in flags[mailbox_copy.uid]
    assert len(smtp_sink.messages) == 1  # no auto-reply to the customer, no second copy
    with session_scope(mail_app) as session:  # questions received: everything but "skipped"
        assert session.scalar(sa.select(sa.func.count()).select_from(MailRecord)
                              .where(MailRecord.state != "skipped")) == 1


def test_a_forged_marker_does_not_stop_the_worker_answering(mail_app, pymap_server, smtp_sink):
    forged = marker.make(TEST_SECRET, 1)[:-4] + "0000"
    pymap_server.append(make_email(sender="dave@customer.example", **{"X_KB_Contact_Form": forged}))
    pymap_server.append(make_email(sender="erin@customer.example",
                                   **{"X_KB_Contact_Form": marker.make("not-our-secret", 1)}))
    counts = make_worker(mail_app).run_once()
    assert counts["replied"] == 2
    sent = [message_from_bytes(m.data, policy=default_policy) for m in smtp_sink.wait_for(2)]
    assert sorted(str(m["To"]) for m in sent) == ["dave@customer.example", "erin@customer.example"]
    assert all(not r.reason.startswith(marker.COPY_REASON) for r in records(mail_app))
