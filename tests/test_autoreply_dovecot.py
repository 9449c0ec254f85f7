"""Integration: the auto-responder worker against Dovecot (plain IMAP and IMAPS) and aiosmtpd."""

from __future__ import annotations

import threading
import time

import pytest

from kb.autoreply.mailbox import Mailbox
from tests.test_autoreply_worker import (OUR_HOST, articles_db, make_email, make_worker,  # noqa: F401
                                         parsed, records, seeded_app, wait_until)


@pytest.fixture
def dovecot_app(app_factory, tmp_path, articles_db, dovecot_account, smtp_sink):
    """An app wired to a fresh Dovecot mailbox and the SMTP sink, starter articles published."""
    return seeded_app(app_factory, tmp_path, articles_db, **dovecot_account.settings(), **smtp_sink.settings(),
                      IMAP_SENT_FOLDER="Sent", IMAP_MOVE_SKIPPED="kb-skipped")


def test_reply_while_idle_on_dovecot(dovecot_app, dovecot_account, smtp_sink):
    worker = make_worker(dovecot_app, wake_seconds=20)  # only IDLE's push can make it fast
    thread = threading.Thread(target=worker.run_forever, name="kb-autoreply-dovecot", daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.waiting, what="the worker to enter IDLE")
        started = time.monotonic()
        dovecot_account.append(make_email(sender="Erin <erin@customer.example>", message_id="<d1@customer.example>"))
        [mail] = smtp_sink.wait_for(1, timeout=5)
        assert time.monotonic() - started < 3
    finally:
        worker.interrupt()
        thread.join(10)
    assert not thread.is_alive()
    reply = parsed(mail)
    assert mail.rcpt_tos == ["erin@customer.example"]
    assert reply["In-Reply-To"] == "<d1@customer.example>" and reply["Auto-Submitted"] == "auto-replied"
    assert reply["Message-ID"].endswith(f"@{OUR_HOST}>")
    [record] = records(dovecot_app)
    assert record.state == "replied" and record.marked
    [uid] = dovecot_account.uids()
    assert "kb-replied" in dovecot_account.flags()[uid] and "\\Seen" not in dovecot_account.flags()[uid]
    [copy] = dovecot_account.uids("Sent")  # the Sent copy
    assert b"Auto-Submitted: auto-replied" in dovecot_account.fetch_raw(copy, "Sent")


def test_must_not_answer_and_second_once_on_dovecot(dovecot_app, dovecot_account, smtp_sink):
    dovecot_account.append(make_email(Auto_Submitted="auto-replied"))
    dovecot_account.append(make_email(List_Id="<news.customer.example>"))
    dovecot_account.append(make_email(In_Reply_To=f"<old@{OUR_HOST}>", subject="Re: password"))
    dovecot_account.append(make_email(sender="frank@customer.example"))
    counts = make_worker(dovecot_app).run_once()
    assert (counts["replied"], counts["skipped"], counts["person"]) == (1, 2, 1)
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ["frank@customer.example"]
    assert len(dovecot_account.uids("kb-skipped")) == 2  # skipped mail was moved out of the inbox
    assert len(dovecot_account.uids()) == 2
    assert sum(make_worker(dovecot_app).run_once().values()) == 0
    time.sleep(0.2)
    assert len(smtp_sink.messages) == 1
    assert {r.state for r in records(dovecot_app)} == {"replied", "skipped", "person"}


def test_worker_over_imaps_with_dovecot(app_factory, tmp_path, articles_db, dovecot_account, smtp_sink):
    settings = dovecot_account.settings(IMAP_PORT=dovecot_account.ssl_port, IMAP_SECURITY="ssl")
    app = seeded_app(app_factory, tmp_path, articles_db, **settings, **smtp_sink.settings())
    dovecot_account.append(make_email(sender="grace@customer.example"))
    context = dovecot_account.ssl_context()
    worker = make_worker(app, mailbox_factory=lambda: Mailbox(app.config, ssl_context=context))
    assert worker.run_once()["replied"] == 1
    assert smtp_sink.wait_for(1)[0].rcpt_tos == ["grace@customer.example"]


def reply_latencies(smtp_sink, appended: dict[str, float], timeout: float = 40) -> dict[str, float]:
    """Seconds from each email's APPEND (recipient -> time) to its reply at the sink."""
    latencies: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(latencies) < len(appended) and time.monotonic() < deadline:
        for mail in list(smtp_sink.messages):
            recipient = mail.rcpt_tos[0]
            if recipient in appended and recipient not in latencies:
                latencies[recipient] = time.monotonic() - appended[recipient]
        time.sleep(0.01)
    return latencies


def test_no_email_waits_for_the_wake_up_on_dovecot(dovecot_app, dovecot_account, smtp_sink):
    worker = make_worker(dovecot_app, wake_seconds=30)  # an email missed by IDLE would wait 30 s
    thread = threading.Thread(target=worker.run_forever, name="kb-autoreply-dovecot", daemon=True)
    thread.start()
    latencies: dict[str, float] = {}
    try:
        wait_until(lambda: worker.waiting, timeout=30, what="the worker to enter IDLE")
        for n in range(10):  # one at a time, each as soon as the last reply left (the worker is still busy)
            sender = f"single{n}@customer.example"
            appended = {sender: time.monotonic()}
            dovecot_account.append(make_email(sender=sender))
            latencies.update(reply_latencies(smtp_sink, appended))
        for n in range(10):  # bursts: two emails back to back
            appended = {}
            for part in "ab":
                sender = f"burst{n}{part}@customer.example"
                appended[sender] = time.monotonic()
                dovecot_account.append(make_email(sender=sender))
            latencies.update(reply_latencies(smtp_sink, appended))
    finally:
        worker.interrupt()
        thread.join(10)
    assert len(latencies) == 30, f"unanswered: {30 - len(latencies)}"
    slow = {sender: round(seconds, 1) for sender, seconds in latencies.items() if seconds >= 2}
    assert not slow, f"replies later than 2 s after their APPEND: {slow}"
