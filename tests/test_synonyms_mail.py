"""A synonym set makes an email matchable: the worker (pymap + aiosmtpd) uses it at its next cycle, no restart."""

from __future__ import annotations

from kb.capture import synonyms
from kb.db import session_scope
from tests.test_autoreply_worker import articles_db, mail_app, make_email, make_worker  # noqa: F401 (fixtures)


def test_a_new_set_makes_the_next_email_answerable_and_switching_it_off_hands_it_back(
        mail_app, pymap_server, smtp_sink, make_article):  # noqa: F811 (fixtures)
    make_article("Borrowing a kayak", body_md="Members borrow a kayak at the harbour for a day or a weekend.")
    worker = make_worker(mail_app)
    email = {"subject": "Canoe", "body": "Can I rent a canoe on Saturday?"}
    pymap_server.append(make_email(**email, sender="first@customer.example"))
    assert worker.run_once()["person"] == 1
    with session_scope(mail_app) as session:  # what the admin page does; the worker is not told
        row = synonyms.add_set(session, "en", "canoe, kayak")
        synonyms.add_set(session, "en", "rent => borrow")
        session.commit()
    pymap_server.append(make_email(**email, sender="second@customer.example"))
    assert worker.run_once()["replied"] == 1
    assert b"borrowing-a-kayak" in smtp_sink.wait_for(1)[0].data
    with session_scope(mail_app) as session:
        synonyms.set_active(session, row.id, False)
        session.commit()
    pymap_server.append(make_email(**email, sender="third@customer.example"))
    assert worker.run_once()["person"] == 1
